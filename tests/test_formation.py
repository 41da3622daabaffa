"""The whole formation on this machine, as Heroku runs it: `bin/dyno` with no process type, `bin/dyno web` and
`bin/dyno worker` side by side, and the Procfile run unchanged by the Heroku CLI's `heroku local` (its
bin/start-nginx and bin/start-pgbouncer are the bake's local stand-ins). Each dyno has its own PgBouncer;
the add-ons are shared. A task enqueued from the web page in headless Chromium is run by the worker dyno.
Also: the app started before its PgBouncer accepts answers 200 or 503 with Retry-After, never 500; and
bin/dyno started as root refuses a Python the dyno user cannot run. Real processes throughout, in the
module's own network namespace and /tmp (realstack.StackNamespace). Needs the Heroku CLI from the npm
registry (`sudo npm install -g heroku`, as the baked README and .ci/run install it).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from itertools import groupby
from pathlib import Path

import pytest
from test_browser import start_chromium
from test_dyno_local import (
    ROOT_USER,
    addon_processes,
    csrf_form,
    dyno_command,
    local_env,
    plain_get,
    real_uids,
    root_owned_dir,
)

import realstack as rs

KILL_AFTER = 30  # a dyno's SIGTERM-to-SIGKILL time, bin/dynolib/supervisor.py's KILL_AFTER

HEROKU = shutil.which("heroku") or "/usr/bin/heroku"


class Command(rs.Dyno):
    """A command of the project (bin/dyno with any arguments, `heroku local ...`) as a dyno-like process:
    its own session, its output in a log; stop() sends what a terminal's Ctrl-C sends (SIGINT to the whole
    foreground process group) and records leftovers as rs.Dyno does."""

    def __init__(self, project, argv, env, user, log_path):
        super().__init__(project, " ".join(map(str, argv)), env, user, log_path)
        self.argv = argv

    def interrupt(self, timeout=60):
        """Ctrl-C: SIGINT to the process group; the record of rs.Dyno.stop once everything has exited (or
        `timeout` s have passed: what is left then is a leftover)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        # The CLI exits at once; its foreman and the dynos finish stopping after it, as in a terminal.
        deadline = time.monotonic() + timeout
        while self.dyno_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.elapsed_all = timeout - (deadline - time.monotonic())
        return self.stop(timeout)


def project_env(user, venv, **extra):
    env = local_env(user, venv, Q_POLL="0.2", **extra)
    env["PATH"] = f"{env['PATH']}:/usr/bin"
    return env


def recent_keys(port):
    status, _headers, body = plain_get(port)
    return body.decode(errors="replace") if status == 200 else ""


def enqueue(port, key):
    """POST the index page's task form as a browser would; the answer's status."""
    body, headers = csrf_form(port, {"key": key})
    return rs.http_request(port, "POST", "/tasks/example/", headers, body)[0]


def worker_ran(dyno, port, key, timeout=120):
    dyno.wait_for(lambda: key in recent_keys(port), f"the worker dyno to run the task {key!r}", timeout, interval=1)


@pytest.fixture(scope="module")
def project(bake_once, baked_venv, user, workdir):
    """The default bake (gunicorn, ORM broker, the worker), not built, nothing configured."""
    return rs.prepare_project(bake_once(), workdir / "formation", user, baked_venv, build=False)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def test_the_readme_shows_these_commands(project):
    """What this module runs is what the README tells a user to run."""
    from test_readme import code_spans

    shown = code_spans((project / "README.md").read_text())
    lines = [line.strip() for span in shown for line in span.splitlines()]
    for command in ("bin/dyno", "heroku local", "sudo npm install -g heroku"):
        assert any(line.startswith(command) for line in lines), f"the README does not show `{command}`"
    for stand_in in ("bin/start-nginx", "bin/start-pgbouncer"):
        assert stand_in in shown and "Heroku's build replaces this file" in (project / stand_in).read_text()


def test_formation_runs_a_task_enqueued_from_the_browser(project, baked_venv, user, workdir, browser):
    """`bin/dyno`: web and worker each with its own PgBouncer, one PostgreSQL; the form submitted in Chromium
    is queued by the web dyno and run by the worker dyno while the web dyno serves; Ctrl-C stops the dynos,
    then the add-ons."""
    from selenium.webdriver.common.by import By

    port = rs.free_port()
    env = project_env(user, baked_venv, PORT=port)
    with Command(project, [project / "bin" / "dyno"], env, user, workdir / "formation.log") as formation:
        formation.wait_for(lambda: plain_get(port)[0] == 200, f"GET / on {port}", timeout=300)
        formation.wait_for(lambda: "Q Cluster" in formation.output and "running." in formation.output,
                           "the worker dyno's cluster to run", timeout=120)  # fmt: skip
        ini = {name: (project / ".dyno" / f"{name}.1" / "pgbouncer.ini").read_text() for name in ("web", "worker")}
        assert "listen_port = 6000" in ini["web"] and "listen_port = 6001" in ini["worker"], ini
        assert re.search(r"^web\.1 +\| ", formation.output, re.M) and re.search(
            r"^worker\.1 +\| ", formation.output, re.M
        )

        url = f"http://127.0.0.1:{port}/"
        browser.get(url)
        browser.find_element(By.NAME, "key").send_keys("from-the-formation")
        browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        assert browser.current_url == url
        deadline = time.monotonic() + 120
        while "from-the-formation" not in browser.page_source and time.monotonic() < deadline:
            time.sleep(1)
            browser.get(url)
        assert "from-the-formation" in browser.page_source, "the worker dyno did not run the task"
        record = formation.interrupt()
    assert record["returncode"] == 0 and not record["leftovers"], record
    output = formation.output
    assert output.index("sending SIGTERM to web.1, worker.1") < output.index("stopping postgresql"), output[-3000:]
    assert not addon_processes(project)


def test_web_and_worker_in_two_terminals(project, baked_venv, user, workdir):
    """`bin/dyno web` then `bin/dyno worker` beside it: the second uses the first's PostgreSQL and a PgBouncer
    of its own; a task the web dyno queues is run by the worker dyno."""
    port = rs.free_port()
    env = project_env(user, baked_venv, PORT=port)
    with rs.Dyno(project, "web", env, user, workdir / "two-web.log") as web:
        web.wait_for(lambda: plain_get(port)[0] == 200, f"GET / on {port}", timeout=300)
        with rs.Dyno(project, "worker", env, user, workdir / "two-worker.log") as worker:
            worker.wait_for(lambda: "running." in worker.output, "the worker's cluster", timeout=120)
            assert "postgresql: using the one another bin/dyno of this project runs" in worker.output
            assert worker.app_environ()["DATABASE_URL"].endswith("@127.0.0.1:6001/db1")
            assert web.app_environ()["DATABASE_URL"].endswith("@127.0.0.1:6000/db1")
            assert enqueue(port, "from-two-terminals") == 302
            worker_ran(worker, port, "from-two-terminals")
            # Not worker.stop(): its leftovers are the user's processes in the project, the web dyno's too.
            worker.process.send_signal(signal.SIGTERM)
            assert worker.process.wait(45) == 0, worker.output[-3000:]
            session = [pid for pid, (_p, sid, _u, _c) in rs.process_table().items() if sid == worker.process.pid]
            assert not session, f"left by the worker dyno: {session}"
            worker.stopped = {"returncode": 0, "leftovers": {}}  # stopped: nothing for rs.Dyno's exit to do
        assert plain_get(port)[0] == 200, "stopping the worker dyno stopped the web dyno"
        record = web.stop()
    assert record["returncode"] == 0 and not record["leftovers"] and not addon_processes(project), record


def delayed_pgbouncer(directory, seconds):
    """A `pgbouncer` first on PATH that starts the real one `seconds` late (--version answers at once)."""
    directory.mkdir(exist_ok=True)
    shim = directory / "pgbouncer"
    real = shutil.which("pgbouncer", path="/usr/local/sbin:/usr/sbin:/sbin:/usr/bin")
    shim.write_text(f'#!/bin/sh\ncase "$1" in --version) ;; *) sleep {seconds};; esac\nexec {real} "$@"\n')
    shim.chmod(0o755)
    return directory


def test_app_started_before_pgbouncer_accepts_answers_503_never_500(project, baked_venv, user, workdir):
    """As bin/start-pgbouncer does, the app starts without waiting for PgBouncer; here PgBouncer is 20 s late.
    nginx starts once the app is ready (looked for once a second), and until PgBouncer listens every request
    is answered 503 with Retry-After, then 200: never a 500."""
    shims = delayed_pgbouncer(workdir / "late-pgbouncer", 20)
    port = rs.free_port()
    env = project_env(user, baked_venv, PORT=port)
    env["PATH"] = f"{shims}:{env['PATH']}"
    answers = []
    with rs.Dyno(project, "web", env, user, workdir / "late-web.log") as web:

        def served_200():
            status, headers, _body = plain_get(port)
            if status is not None:
                answers.append((status, headers.get("retry-after")))
            return status == 200

        web.wait_for(lambda: "starting nginx on port" in web.output, "nginx to start", timeout=300, interval=0.1)
        web.wait_for(served_200, "GET / to answer 200 once PgBouncer listens", timeout=120, interval=0.2)
        record = web.stop()
    statuses = [status for status, _retry in answers]
    print(f"[formation] PgBouncer 20 s late, answers in order: {[(s, len(list(g))) for s, g in groupby(statuses)]}")
    assert statuses and statuses[-1] == 200 and 500 not in statuses, answers
    unavailable = [retry for status, retry in answers if status == 503]
    assert unavailable and all(unavailable), f"no 503 with Retry-After before PgBouncer listened: {answers}"
    assert record["returncode"] == 0 and not record["leftovers"], record


# --- heroku local: the Procfile unchanged, the stand-ins handing their line to bin/dyno ----------------------


def heroku_local(project, env, user, log, *types):
    if not os.access(HEROKU, os.X_OK):
        pytest.fail("the Heroku CLI is not installed: sudo npm install -g heroku (as .ci/run does)")
    return Command(project, [HEROKU, "local", *types], env, user, log)


def cli_env(user, venv, port):
    env = project_env(user, venv, PORT=port)
    # The CLI's own files (its cache and config) in the user's home; no update check or analytics here.
    env.update(HEROKU_SKIP_NEW_VERSION_CHECK="true", HEROKU_DISABLE_AUTOUPDATE="1", DISABLE_TELEMETRY="1")
    return env


def local_run(project, user, venv, log, types, task_key=None):
    """`heroku local TYPES` until what they run is seen working, then Ctrl-C; returns the record and output."""
    port = rs.free_port()
    env = cli_env(user, venv, port)
    with heroku_local(project, env, user, log, *types) as local:
        if "worker" in types or not types:
            local.wait_for(lambda: "running." in local.output, "the worker's cluster to run", timeout=300)
        if "web" in types or not types:
            local.wait_for(lambda: plain_get(port)[0] == 200, f"GET / on {port}", timeout=300)
        if task_key:
            assert enqueue(port, task_key) == 302
            local.wait_for(lambda: task_key in recent_keys(port), "the worker to run the task", 120, interval=1)
        record = local.interrupt()
    return record, local.output


@pytest.mark.parametrize("types", [("web",), ("worker",), ()], ids=["web", "worker", "all"])
def test_heroku_local_as_an_ordinary_user(project, baked_venv, user, workdir, types):
    name = "-".join(types) or "all"
    record, output = local_run(
        project, user, baked_venv, workdir / f"local-{name}.log", types, task_key=None if types else "from-heroku-local"
    )
    assert "not found" not in output and "dyno: starting app:" in output, output[-3000:]
    assert "second signal" not in output and "SIGKILL to what is left" not in output, "Ctrl-C did not stop in order"
    assert not record["leftovers"], record
    assert not addon_processes(project), output[-3000:]
    for process_type, pgbouncer_port in (("web", 6000), ("worker", 6001)):
        if process_type in types or not types:
            ini = (project / ".dyno" / f"{process_type}.1" / "pgbouncer.ini").read_text()
            assert f"listen_port = {pgbouncer_port}" in ini


def test_heroku_local_stops_every_type_when_one_exits(project, baked_venv, user, workdir):
    """The worker's app dies: its dyno exits 1, `heroku local` stops the web dyno too (it signals only the
    web line's shell, which waits for its command: bin/dyno sees its runner stopping) and exits."""
    port = rs.free_port()
    with heroku_local(project, cli_env(user, baked_venv, port), user, workdir / "local-one-exits.log") as local:
        local.wait_for(lambda: plain_get(port)[0] == 200, f"GET / on {port}", timeout=300)
        local.wait_for(lambda: "running." in local.output, "the worker's cluster to run", timeout=120)
        table, session = rs.process_table(), local.dyno_pids()
        dynos = {
            pid for pid in session if "bin/dyno --stand-in bin/start-pgbouncer" in table.get(pid, (0, 0, 0, ""))[3]
        }
        apps = [pid for pid, (ppid, _s, _u, cmd) in table.items() if ppid in dynos and "manage.py qcluster" in cmd]
        assert len(apps) == 1, (dynos, apps)
        os.kill(apps[0], signal.SIGKILL)
        try:
            local.process.wait(60)
        except subprocess.TimeoutExpired:
            local.fail("heroku local still runs 60 s after the worker's app died")
        deadline = time.monotonic() + 45
        while local.dyno_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        record = local.stop()
    assert "the Procfile runner is stopping" in local.output, local.output[-3000:]
    assert not record["leftovers"] and not addon_processes(project), record


def settle(command, project, seconds):
    """Wait up to `seconds` for every process of `command` and every add-on of the project to be gone;
    what is left then."""
    deadline = time.monotonic() + seconds
    while (command.dyno_pids() or addon_processes(project)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return {pid: rs.process_table().get(pid) for pid in command.dyno_pids() | set(addon_processes(project))}


def test_heroku_local_exits_when_web_cannot_take_pgbouncers_port(project, baked_venv, user, workdir):
    """Port 6000 (web.1's PgBouncer) is taken: web.1 says so and exits at once, before worker.1 may have seen
    its shell; worker.1 learns it from the word web.1 leaves, stops (or does not start), and `heroku local`
    exits with nothing of the project left running."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 6000))
        taken.listen()
        env = cli_env(user, baked_venv, rs.free_port())
        with heroku_local(project, env, user, workdir / "local-port-taken.log") as local:
            try:
                local.process.wait(60)
            except subprocess.TimeoutExpired:
                local.fail("heroku local still runs 60 s after web.1 could not take port 6000")
            left = settle(local, project, KILL_AFTER)
            record = local.stop()
    assert "port 6000 is in use" in local.output, local.output[-3000:]
    assert "the Procfile runner is stopping" in local.output, local.output[-3000:]
    assert not left and not record["leftovers"], (left, record)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm-to-the-group"])
def test_heroku_local_stops_the_addons_once_after_every_dyno(project, baked_venv, user, workdir, signum):
    """Ctrl-C (SIGINT to the terminal's process group), or SIGTERM to the CLI's process group (a process
    manager, an IDE's stop button; the CLI and its foreman die at once): both dynos stop, then PostgreSQL,
    once, stopped by whichever bin/dyno stops last, so that no PgBouncer's server connection is cut
    (PostgreSQL would log `terminating connection due to administrator command`); nothing of the project
    runs 30 s (a dyno's SIGTERM-to-SIGKILL time) after the signal."""
    log = project / ".dyno" / "postgresql" / "postgresql.log"
    port = rs.free_port()
    name = signal.Signals(signum).name
    with heroku_local(project, cli_env(user, baked_venv, port), user, workdir / f"local-stop-{name}.log") as local:
        local.wait_for(lambda: plain_get(port)[0] == 200, f"GET / on {port}", timeout=300)
        local.wait_for(lambda: "running." in local.output, "the worker's cluster to run", timeout=120)
        logged = log.stat().st_size
        os.killpg(local.process.pid, signum)
        left = settle(local, project, KILL_AFTER)
        record = local.stop()
    assert not left and not record["leftovers"], (left, record)
    with open(log, errors="replace") as stream:
        stream.seek(logged)
        this_run = stream.read()
    assert this_run.count("received fast shutdown request") == 1, this_run
    assert "terminating connection due to administrator command" not in this_run, this_run
    if signum == signal.SIGINT:  # after SIGTERM the foreman that printed the dynos' lines is gone
        output = local.output
        assert output.count("dyno: stopping postgresql") == 1, output[-4000:]
        assert "server conn crashed?" not in output, output[-4000:]
        # Stopped by whichever dyno stops last (either may have started it), once the other has stopped.
        stopping = re.search(r"^.*\b(web|worker)\.1 +\|  dyno: stopping postgresql", output, re.M)
        other = "worker" if stopping[1] == "web" else "web"
        stopped = re.search(rf"^.*\b{other}\.1 +\|  dyno: stopped \(exit status", output, re.M)
        assert stopped and stopped.start() < stopping.start(), output[-4000:]


def test_a_closed_output_stops_the_dyno_and_its_addons(project, baked_venv, user, workdir):
    """`bin/dyno web | sed '/postgresql ready/q'` (as `| head` would, once PostgreSQL is up): the reader has
    gone when bin/dyno says a next line, and bin/dyno stops as when its terminal closes (PostgreSQL included)
    instead of dying with PostgreSQL left running for the next run to take for another bin/dyno's."""
    env = project_env(user, baked_venv, PORT=rs.free_port())
    with Command(
        project, ["bash", "-c", "bin/dyno web | sed '/postgresql ready/q'"], env, user, workdir / "piped.log"
    ) as piped:
        try:
            piped.process.wait(60)
        except subprocess.TimeoutExpired:
            piped.fail("bin/dyno web with its output closed still runs 60 s later")
        left = settle(piped, project, KILL_AFTER)
        record = piped.stop()
    shown = [line for line in piped.output.splitlines() if line.startswith("dyno: ")]  # PgBouncer logs to stderr
    assert shown and "postgresql ready" in shown[-1], piped.output
    assert not left and not record["leftovers"], (left, record)
    again = dyno_command(user, project, env, "run", "true")
    assert again.returncode == 0 and "starting postgresql" in again.stdout, again.stdout[-3000:]


def test_addons_a_killed_bin_dyno_left_are_used_then_stopped(project, baked_venv, user, workdir):
    """bin/dyno killed (SIGKILL) leaves its PostgreSQL running: the next bin/dyno says so, uses it, and, the
    last to stop, stops it; `bin/dyno reset` refuses while a bin/dyno runs."""
    env = project_env(user, baked_venv)
    with Command(project, [project / "bin" / "dyno", "run", "sleep", "600"], env, user, workdir / "killed.log") as run:
        run.wait_for(lambda: "running run.1" in run.output, "the one-off to run", timeout=300)
        busy = dyno_command(user, project, env, "reset")
        assert busy.returncode == 2 and "a bin/dyno of this project is running: stop it first" in busy.stderr
        os.killpg(run.process.pid, signal.SIGKILL)  # bin/dyno and the sleep; PostgreSQL has a group of its own
        run.process.wait(10)
        run.stopped = {"returncode": -9, "leftovers": {}}
    pid = int((project / ".dyno" / "postgresql" / "data" / "postmaster.pid").read_text().split()[0])
    assert pid in addon_processes(project)
    again = dyno_command(user, project, env, "run", "true")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    left_by = "postgresql: using the one left running by a bin/dyno of this project that was stopped before it"
    assert f"{left_by} could stop it (pid {pid})" in again.stdout, again.stdout[-3000:]
    assert f"stopping postgresql (pid {pid}, started by another bin/dyno of this project)" in again.stdout
    assert not addon_processes(project), again.stdout[-3000:]


def test_heroku_local_as_root_runs_as_the_dyno_user(bake_once, baked_venv, user, workdir):
    """As root (a container): every process of the formation runs as the unprivileged user, and a task
    enqueued on the web dyno is run by the worker dyno."""
    if os.geteuid() != 0:
        assert os.geteuid() == user.uid  # an ordinary user: the test above is this case
        return
    project = root_owned_dir(workdir, "heroku-local-root") / "app"
    shutil.copytree(bake_once(), project, symlinks=True)
    (project / ".venv").symlink_to(baked_venv)
    port = rs.free_port()
    env = cli_env(ROOT_USER, baked_venv, port)
    with heroku_local(project, env, ROOT_USER, workdir / "local-root.log") as local:
        local.wait_for(lambda: plain_get(port)[0] == 200, f"GET / on {port}", timeout=300)
        local.wait_for(lambda: "running." in local.output, "the worker's cluster to run", timeout=120)
        table = rs.process_table()
        ours = {pid: table[pid] for pid in local.dyno_pids() if pid in table}
        # The CLI, its foreman and the `sh -c LINE` it starts are root's; from bin/dyno on, all is the user's.
        dyno_side = {
            pid: cmd
            for pid, (_p, _s, _u, cmd) in ours.items()
            if re.search(r"bin/dyno|pgbouncer |gunicorn|qcluster|nginx: |postgres", cmd)
            and not cmd.startswith("/bin/sh")
        }
        commands = " ".join(dyno_side.values())
        stand_ins = ("bin/dyno --stand-in bin/start-nginx", "bin/dyno --stand-in bin/start-pgbouncer")
        for expected in (*stand_ins, "nginx: master", "pgbouncer", "gunicorn", "qcluster", "postgres -D"):
            assert expected in commands, f"{expected!r} not among the processes: {commands}"
        as_root = {pid: cmd for pid, cmd in dyno_side.items() if real_uids(pid) != {user.uid}}
        assert not as_root, f"processes not run as {user.name}: {as_root}"
        assert enqueue(port, "from-heroku-local-as-root") == 302
        local.wait_for(lambda: "from-heroku-local-as-root" in recent_keys(port), "the worker to run the task", 120)
        record = local.interrupt()
    assert f"running as root: the dyno runs as the unprivileged user {user.name}" in local.output
    assert not record["leftovers"] and not addon_processes(project), record


# --- a Python the dyno user cannot run ------------------------------------------------------------------


@pytest.fixture(scope="module")
def python_under_root():
    """A Python installed under /root with its standard library, as pyenv installs one (a fresh machine has
    none): Debian's interpreter and stdlib copied to /root/<tmp>/{bin,lib}, where it finds its prefix."""
    if os.geteuid() != 0:
        yield None
        return
    prefix = Path(tempfile.mkdtemp(prefix="heroku-django-pyenv-", dir="/root"))
    try:
        version = Path(os.path.realpath("/usr/bin/python3")).name  # python3.11 on Debian 12
        (prefix / "bin").mkdir()
        shutil.copy2(Path("/usr/bin") / version, prefix / "bin" / "python3")
        shutil.copytree(Path("/usr/lib") / version, prefix / "lib" / version, symlinks=True)
        python = prefix / "bin" / "python3"
        found = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
        assert found.stdout.strip() == str(prefix), found
        yield python
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.mark.parametrize("cache", ["none", "redis", "memcached"])
def test_root_refuses_a_python_the_dyno_user_cannot_run(bake_once, baked_venv, user, workdir, cache, python_under_root):
    """bin/dyno run with a Python installed under /root (as pyenv installs one and a .python-version selects
    it): refused before anything starts, with the fix in one line, for every answer's add-ons (Redis's and
    memcached's checks would otherwise crash with `LookupError: unknown encoding: idna` once root is
    dropped, the standard library being under /root too)."""
    if os.geteuid() != 0:
        assert os.geteuid() == user.uid  # nothing to refuse: bin/dyno runs as the user who started it
        return
    pyenv = [python_under_root]
    project = root_owned_dir(workdir, f"pyenv-{cache}") / "app"
    shutil.copytree(bake_once(cache=cache), project, symlinks=True)
    (project / ".venv").symlink_to(baked_venv)
    env = local_env(ROOT_USER, baked_venv, PORT=rs.free_port())
    for args in (["web"], ["run", "true"], []):
        result = rs.run_as(ROOT_USER, [pyenv[-1], project / "bin" / "dyno", *args], env=env, cwd=project, check=False)
        problems = [line for line in result.stderr.splitlines() if "cannot run the Python bin/dyno runs under" in line]
        assert result.returncode == 2 and len(problems) == 1, result.stdout[-2000:] + result.stderr[-2000:]
        assert f"{user.name} cannot run" in problems[0] and "/usr/bin/python3 bin/dyno" in problems[0]
        assert "Traceback" not in result.stderr
        assert not any((project / ".dyno" / name).exists() for name in ("postgresql", "redis", "memcached"))
    works = rs.run_as(ROOT_USER, ["/usr/bin/python3", project / "bin" / "dyno", "run", "true"], env=env, cwd=project,
                      check=False, timeout=300)  # fmt: skip
    assert works.returncode == 0, works.stdout[-3000:] + works.stderr[-3000:]
    assert not addon_processes(project)
