"""The real stack on the production Python: nginx, PgBouncer, each WSGI server and the worker on the Python
of the bake's .python-version (what Heroku installs), not Debian 12's.

Per server, the bake's formation runs as a user runs it locally, `bin/dyno` (app.json's formation: a
`bin/dyno web` and a `bin/dyno worker`, each with its own PgBouncer, sharing bin/dyno's PostgreSQL), inside
tests/sidroot.py's stack root: Debian unstable's python3.14 with unstable's nginx, pgbouncer, ruby (erb)
and postgresql, the venv made by that Python from requirements.txt as Heroku's build does. bin/dyno starts
as root there and drops to the root's user `dyno`. The module's network namespace (the workdir fixture)
holds it all, so bin/dyno's fixed ports (nginx on 5000, PgBouncer on 6000 and 6001) are its own; the
requests come from the test through that network, the way Heroku's router comes in: through nginx to the
server on /tmp/nginx.socket, and from there through PgBouncer to PostgreSQL. SIGTERM to bin/dyno stops
everything, and nothing of the dyno is left in the root's PID namespace afterwards.

Time it adds, measured on 2 cores shared with other test runs (load average 5 to 12): the first run on a
machine builds the stack root, about 6.5 minutes (debootstrap of unstable with python3.14, 4 min 15 s, the
root tests/test_project.py uses, built once for both; then a copy of it and apt-get install, 2 min 15 s,
about 1.1 GB on disk); every run, root cached, 2.5 to 4.5 minutes for the module's three servers (2 min 26 s
with the suite's `-n 2`, 4 min 14 s with `-n 0`): per server a venv from pip's cache (uWSGI's wheel
included), 15 to 80 s, the formation's first start to /health/ (build, initdb, release phase), 12 to 25 s, and
SIGTERM to exit, 3.5 to 8 s.
"""

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import realstack as rs
import sidroot
from conftest import SERVERS, TEST_DIR, figure, open_dir

PORT = 5000  # bin/dyno's default $PORT, free in the module's own network
HTTPS = {"X-Forwarded-Proto": "https", "Host": "localhost"}  # what Heroku's router adds
# What runs the dyno's processes, as the root's /proc/PID/maps name them from here.
DYNO_WORDS = ("nginx", "pgbouncer", "postgres", "gunicorn", "uwsgi", "waitress", "qcluster", "bin/dyno", "tail ")
LEFT = "left-in-the-root: "


@pytest.fixture(scope="module")
def stack_root(workdir):
    """sidroot.stack_root, built on the first run on a machine; the module's directory opened to the root's
    `dyno` user (its uid need not be this machine's)."""
    if os.geteuid() != 0:
        pytest.fail("the production Python lives in a Debian root of its own, which needs root: sudo bash .ci/run")
    started = time.monotonic()
    with rs.host_network():  # debootstrap and apt-get need the Debian archive
        root = sidroot.stack_root(open_dir(TEST_DIR))
    figure(
        f"Python {sidroot.VERSION} stack root ready (debootstrap and apt-get when not cached)",
        f"{time.monotonic() - started:.0f} s",
    )
    os.chmod(workdir, 0o755)
    return root


def descendants(pid):
    """{pid: command line} of every process below `pid` (the chroot's namespace is below ours)."""
    table = rs.process_table()
    found, frontier = {}, {pid}
    while frontier:
        frontier = {child for child, (ppid, *_rest) in table.items() if ppid in frontier and child not in found}
        found.update({child: table[child][3] for child in frontier})
    return found


def pythons(pid):
    """The Python versions mapped into `pid` (its executable or, for uWSGI, libpython)."""
    try:
        maps = open(f"/proc/{pid}/maps").read()
    except OSError:
        return set()
    return set(re.findall(r"python(3\.\d+)", maps))


def get(path, headers=None):
    return rs.http_request(PORT, "GET", path, {**HTTPS, **(headers or {})})


def wait(process, predicate, what, log, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        if process.poll() is not None:
            pytest.fail(f"bin/dyno ended ({process.returncode}) while waiting for {what}\n{log.read_text()[-6000:]}")
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}\n{log.read_text()[-6000:]}")


def enqueue(key):
    """The index page's form, CSRF and all, as a browser posts it; JSON back."""
    post_headers, form = rs.task_form(get("/"), {"key": key})
    return rs.http_request(PORT, "POST", "/tasks/example/", post_headers, form)


def app_connections():
    """Accepted connections on the app's socket, from this network namespace's /proc/net/unix (state 03:
    connected; the listening socket is 01)."""
    lines = Path("/proc/thread-self/net/unix").read_text().splitlines()[1:]
    return [line for line in lines if line.split()[5:6] == ["03"] and line.endswith(" /tmp/nginx.socket")]


@pytest.mark.parametrize("server", SERVERS)
def test_formation_on_the_production_python(bake_once, stack_root, workdir, server):
    """bin/dyno's web and worker dynos on 3.14: /health/ and / answer 200 through nginx, the form on / enqueues
    a task through the web dyno's PgBouncer, the worker runs it through its own, / lists its result, and
    SIGTERM stops every process within Heroku's 30 s."""
    project = workdir / f"project-{SERVERS.index(server)}"  # a path that names no server: processes are found by name
    shutil.copytree(
        bake_once(wsgi_server=server, use_worker=True, task_broker="orm"),
        project,
        ignore=shutil.ignore_patterns(".venv", "staticfiles", "__pycache__", "*.sqlite3", ".dyno"),
    )
    started = time.monotonic()
    with rs.host_network():  # pip needs PyPI
        sidroot.run(
            stack_root,
            f"{sidroot.PYTHON} -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check "
            "-r requirements.txt",
            binds=[workdir],
            cwd=project,
            timeout=1800,
        )
    venv_seconds = time.monotonic() - started

    # A user with the venv activated, in the project: `bin/dyno` (its shebang finds the venv's python3).
    command = (
        f"cd {shlex.quote(str(project))} && export PATH={shlex.quote(str(project))}/.venv/bin:$PATH "
        "DJANGO_LOCAL_HTTP=false LANG=C.UTF-8; bin/dyno; code=$?; "
        f'for p in /proc/[0-9]*; do echo "{LEFT}$(tr "\\0" " " < $p/cmdline 2>/dev/null)"; done; exit $code'
    )
    log = workdir / f"{server}.log"
    argv = sidroot.freshroot.root_command(stack_root, command, tmpfs=["/tmp"], binds=[workdir])
    with open(log, "wb") as output:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={"PATH": sidroot.freshroot.SBIN_PATH, "LANG": "C.UTF-8"},
        )
    try:
        started = time.monotonic()
        status, _, body = wait(
            process, lambda: (r := get("/health/"))[0] == 200 and r, "/health/ to answer 200", log, 300
        )
        first_start = time.monotonic() - started
        assert json.loads(body) == {"status": "ok", "database": "postgresql"}
        assert "running as root: the dyno runs as the unprivileged user dyno" in log.read_text()

        key = f"py314-{uuid.uuid4().hex[:12]}"
        status, _, body = enqueue(key)
        assert status == 202 and json.loads(body)["key"] == key, body[:500]
        digest = hashlib.sha256(key.encode()).hexdigest()
        listed = f"<code>{key}</code> {digest[:15]}".encode()
        wait(
            process,
            lambda: (r := get("/"))[0] == 200 and listed in r[2],
            f"the worker to run the task for {key}",
            log,
            120,
        )

        # No connection to the app outlives its response: nginx 1.29.7 and later keep upstream connections open
        # unless told (config/nginx.conf.erb), which would hold waitress's connection places. An idle kept
        # connection would stay for nginx's keepalive_timeout (60 s); a closed one is gone at once.
        deadline = time.monotonic() + 2
        while app_connections() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not app_connections(), "nginx keeps connections to the app open"

        # Every Python of the dyno is the production one; each dyno's app talks to its own PgBouncer.
        processes = descendants(process.pid)
        apps = {pid: cmd for pid, cmd in processes.items() if server in cmd or "qcluster" in cmd}
        assert any("qcluster" in cmd for cmd in apps.values()) and any(server in cmd for cmd in apps.values()), apps
        versions = {pid: pythons(pid) for pid in processes if pythons(pid)}
        assert set().union(*versions.values()) == {sidroot.VERSION}, versions
        assert set(apps) <= set(versions), (apps, versions)
        for pid, cmd in apps.items():
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            url = next(item for item in environ if item.startswith(b"DATABASE_URL=")).decode()
            assert url.rsplit("@", 1)[1].startswith("127.0.0.1:6001/" if "qcluster" in cmd else "127.0.0.1:6000/"), (
                cmd,
                url,
            )

        formation = [pid for pid, cmd in processes.items() if cmd.split()[-1].endswith("bin/dyno")]
        assert len(formation) == 1, processes
        stopping = time.monotonic()
        os.kill(formation[0], signal.SIGTERM)
        process.wait(60)
        stopped = time.monotonic() - stopping
    finally:
        if process.poll() is None:  # unshare's --kill-child takes the whole namespace with it
            process.kill()
            process.wait(10)
    output = log.read_text()
    # The namespace's own shells (their command lines hold this command, marker included) are not the dyno's.
    remaining = [line.removeprefix(LEFT) for line in output.splitlines() if line.startswith(LEFT)]
    left = [cmd for cmd in remaining if LEFT not in cmd and any(word in cmd for word in DYNO_WORDS)]
    assert remaining, "the namespace's processes were not listed"
    assert process.returncode == 0, output[-6000:]
    assert stopped < 30 and "sending SIGKILL" not in output, output[-6000:]
    assert not left, left
    # uWSGI's sys.executable is the uwsgi binary; multiprocessing must not start its helpers with it.
    for complaint in ("unable to load configuration from", "resource_tracker: process died"):
        assert complaint not in output, output[-6000:]
    # nginx retries a GET whose upstream connection failed, so a failing connection shows only here (a POST
    # gets the 502): uWSGI closing a connection nginx meant to reuse (config/uwsgi.ini, add-header).
    errors = (project / ".dyno/web.1/logs/nginx/error.log").read_text()
    assert not re.search(r"upstream prematurely closed|reset by peer|while reading response header", errors), errors
    # Each dyno's app reached PostgreSQL through its own PgBouncer, which logs every client login.
    for dyno in ("web.1", "worker.1"):
        assert re.search(rf"^{re.escape(dyno)} .*login attempt: db=\w+ user=app", output, re.M), output[-6000:]
    figure(
        f"production Python stack, {server}",
        f"venv {venv_seconds:.0f} s, first start to /health/ {first_start:.0f} s, SIGTERM to exit {stopped:.1f} s",
    )
