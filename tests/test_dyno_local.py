"""bin/dyno on a freshly baked project with nothing configured, the way a newcomer runs it.

No DATABASE_URL, no DJANGO_SECRET_KEY: bin/dyno starts PostgreSQL (and Redis or memcached where the answers
chose them) under .dyno/, generates the secret, runs the release phase on the first start, serves plain
http on loopback, runs one-off commands against the same add-ons, and stops everything with the dyno.
Started as root it runs the whole dyno as an unprivileged user. Real processes throughout, in the
module's own network namespace and /tmp (realstack.StackNamespace).
"""

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

import realstack as rs
from conftest import figure, run


def local_env(user, venv, **extra):
    """A newcomer's environment: nothing configured, and DJANGO_LOCAL_HTTP left to bin/dyno."""
    env = rs.base_env(user, venv, **extra)
    del env["DJANGO_LOCAL_HTTP"]
    return env


def dyno_command(user, project, env, *args, timeout=300):
    return rs.run_as(user, [project / "bin" / "dyno", *args], env=env, cwd=project, check=False, timeout=timeout)


def plain_get(port, path="/"):
    try:
        return rs.http_request(port, "GET", path, timeout=10)
    except OSError:
        return None, {}, b""


def wait_plain_200(dyno, port, timeout=240):
    """The first start builds, creates the cluster and migrates before the web dyno serves."""
    dyno.wait_for(lambda: plain_get(port)[0] == 200, f"GET / over plain http on {port}", timeout=timeout)


def addon_processes(project):
    """Pids of PostgreSQL, Redis or memcached still running from this project's .dyno/."""
    state = str(project / ".dyno")
    return {
        pid: cmd
        for pid, (_ppid, _session, _uid, cmd) in rs.process_table().items()
        if state in cmd or (cmd.startswith(("redis-server", "memcached")) and _cwd(pid).startswith(state))
    }


def _cwd(pid):
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def psql(user, port, password, query, role="app", database="app"):
    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"}
    argv = ["psql", "-X", "-At", "-h", "127.0.0.1", "-p", port, "-U", role, "-d", database, "-c", query]
    return rs.run_as(user, argv, env=env, check=False, timeout=60)


def csrf_form(port, fields):
    """GET / as a browser would, then the form's body and headers for POST /tasks/example/."""
    status, headers, body = rs.http_request(port, "GET", "/")
    assert status == 200, body[:300]
    cookie = next(c for c in headers["set-cookie"] if c.startswith("csrftoken="))
    assert "secure" not in cookie.lower(), f"a Secure cookie would never come back over plain http: {cookie}"
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)[1].decode()
    post_headers = {
        "Cookie": cookie.split(";")[0],
        "Origin": f"http://127.0.0.1:{port}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "text/html",
    }
    return urlencode({**fields, "csrfmiddlewaretoken": token}).encode(), post_headers


# --- the default bake (gunicorn, ORM broker): PostgreSQL only ----------------------------------------------


@pytest.fixture(scope="module")
def fresh(bake_once, baked_venv, user, workdir):
    """A fresh checkout: not built, no .dyno/, nothing configured."""
    return rs.prepare_project(bake_once(), workdir / "fresh", user, baked_venv, build=False)


def test_web_with_nothing_configured(fresh, baked_venv, user, workdir):
    """First start: build, PostgreSQL, secret, release phase, plain http; a one-off beside it; all stopped
    with the dyno; the data still there at the next start; `bin/dyno reset` deletes it."""
    port = rs.free_port()
    env = local_env(user, baked_venv, PORT=port)
    state = fresh / ".dyno"
    with rs.Dyno(fresh, "web", env, user, workdir / "fresh-web.log") as web:
        wait_plain_200(web, port)
        output = web.output
        assert "first start on this database: running the release phase" in output
        assert "Applying example.0001_initial... OK" in output
        assert "no staticfiles/ yet: running collectstatic" in output

        # Plain http on loopback: no redirect to https, no HSTS, cookies a browser sends back over http.
        status, headers, body = plain_get(port)
        assert status == 200 and b"It works" in body and "strict-transport-security" not in headers
        environ = web.app_environ()
        assert environ["DJANGO_LOCAL_HTTP"] == "true" and environ["DYNO"] == "web.1"
        assert environ["DATABASE_URL"].startswith("postgres://app:") and environ["DATABASE_URL"].endswith(
            "@127.0.0.1:6000/db1"
        ), "the app must reach bin/dyno's PostgreSQL through PgBouncer"
        secret = state / "config" / "DJANGO_SECRET_KEY"
        assert environ["DJANGO_SECRET_KEY"] == secret.read_text().strip() and len(environ["DJANGO_SECRET_KEY"]) == 64
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and stat.S_IMODE(state.stat().st_mode) == 0o700

        # PostgreSQL: loopback TCP only, no unix socket, SCRAM, the app's role not a superuser.
        pg = state / "postgresql"
        pg_port, password = (pg / "port").read_text(), (pg / "password").read_text().strip()
        shown = psql(user, pg_port, password, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert shown.returncode == 0 and shown.stdout.split() == ["f"], shown.stderr
        superuser = (pg / "superuser-password").read_text().strip()
        settings = psql(
            user,
            pg_port,
            superuser,
            "SELECT current_setting('listen_addresses'), current_setting('unix_socket_directories'), "
            "(SELECT substr(rolpassword, 1, 14) FROM pg_authid WHERE rolname = 'app')",
            role="postgres",
            database="postgres",
        )
        assert settings.stdout.strip() == "127.0.0.1||SCRAM-SHA-256$", settings.stdout + settings.stderr
        hba = [line.split() for line in (pg / "data" / "pg_hba.conf").read_text().splitlines() if line[:1].isalpha()]
        assert hba and {line[-1] for line in hba} == {"scram-sha-256"}, hba
        refused = psql(user, pg_port, "wrong-password", "SELECT 1")
        assert refused.returncode != 0 and "password authentication failed" in refused.stderr

        # A one-off dyno beside the web dyno: the same PostgreSQL, straight (no PgBouncer), DYNO=run.1.
        script = (
            "import os; from example.models import ExampleResult; "
            "ExampleResult.objects.create(key='kept-between-runs', digest='d'); "
            "print('ONEOFF', os.environ['DYNO'], os.environ['DATABASE_URL'].rsplit('@', 1)[1])"
        )
        oneoff = dyno_command(user, fresh, env, "run", "python", "manage.py", "shell", "-c", script)
        assert oneoff.returncode == 0, oneoff.stdout[-3000:] + oneoff.stderr[-3000:]
        assert f"ONEOFF run.1 127.0.0.1:{pg_port}/app" in oneoff.stdout
        assert "postgresql: using the one another bin/dyno of this project runs" in oneoff.stdout
        assert "stopping postgresql" not in oneoff.stdout, "the one-off stopped the web dyno's database"
        busy = dyno_command(user, fresh, env, "reset")
        assert busy.returncode == 2 and "a bin/dyno of this project is running: stop it first" in busy.stderr
        record = web.stop()
    assert record["returncode"] == 0 and not record["leftovers"], record
    assert "stopping postgresql" in web.output and not addon_processes(fresh)

    # Second start: the data is still there, and the release phase does not run again.
    with rs.Dyno(fresh, "web", env, user, workdir / "fresh-web-2.log") as again:
        wait_plain_200(again, port, timeout=120)
        assert b"1 example result stored" in plain_get(port)[2]
        assert "release phase" not in again.output and "creating a PostgreSQL cluster" not in again.output
        record = again.stop()
    assert record["returncode"] == 0 and not record["leftovers"] and not addon_processes(fresh), record

    reset = dyno_command(user, fresh, env, "reset")
    assert reset.returncode == 0 and not state.exists(), reset.stdout + reset.stderr


def test_oneoff_exit_status_and_no_leftovers(fresh, baked_venv, user):
    """`bin/dyno run` exits with the command's status and stops the add-ons it started."""
    env = local_env(user, baked_venv)
    result = dyno_command(user, fresh, env, "run", "python", "-c", "import sys; sys.exit(7)")
    assert result.returncode == 7, result.stdout[-2000:] + result.stderr[-2000:]
    assert "starting postgresql" in result.stdout and "stopping postgresql" in result.stdout
    assert not addon_processes(fresh)


def test_configured_services_win_and_dotenv_is_read(fresh, baked_venv, user):
    """.env is read like `heroku local` (your environment wins over it); a set DATABASE_URL means no local
    PostgreSQL; a bad line in .env is a plain error with its line number."""
    dotenv = fresh / ".env"
    dotenv.write_text(
        "# local settings\n"
        "\n"
        "DATABASE_URL=postgres://mine:secret@127.0.0.1:5433/mydb\n"
        'export FROM_DOTENV="two words"\n'
        "QUOTED='kept $as written'\n"
        "BOTH=from-the-file\n"
    )
    try:
        env = local_env(user, baked_venv, BOTH="from-the-environment")
        result = dyno_command(user, fresh, env, "--dry-run", "web")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert "dyno: read 4 variables from .env (BOTH set in your environment, which wins)" in lines
        assert "env FROM_DOTENV=two words" in lines and "env QUOTED=kept $as written" in lines
        assert not any(line.startswith("env BOTH=") for line in lines), "the file overrode the environment"
        assert "dyno: DATABASE_URL is set: no local postgresql" in lines
        assert "db1= host=127.0.0.1 dbname=mydb port=5433" in lines
        assert "env DJANGO_LOCAL_HTTP=true" in lines
        assert "env DJANGO_SECRET_KEY=(generated at start)" in lines  # app.json's generator
        empty = dyno_command(user, fresh, dict(env, DJANGO_SECRET_KEY=""), "--dry-run", "web")
        assert not any("DJANGO_SECRET_KEY" in line for line in empty.stdout.splitlines()), "an empty key was replaced"
        assert "starting" not in result.stdout, "a dry run started something"

        dotenv.write_text("GOOD=1\nthis line is not an assignment\n")
        bad = dyno_command(user, fresh, env, "--dry-run", "web")
        assert bad.returncode == 2 and ".env, line 2: expected NAME=value" in bad.stderr
    finally:
        dotenv.unlink()


def test_database_that_answers_nowhere_is_named_before_anything_starts(fresh, baked_venv, user):
    """A well-formed DATABASE_URL with nothing at its host and port: bin/dyno names them within seconds and
    starts nothing, rather than the app failing its first query through PgBouncer."""
    port = rs.free_port()
    env = local_env(user, baked_venv, DATABASE_URL=f"postgres://app:secret@127.0.0.1:{port}/app")
    started = time.monotonic()
    result = dyno_command(user, fresh, env, "web", timeout=60)
    took = time.monotonic() - started
    figure("unreachable DATABASE_URL refused", f"after {took:.1f} s")
    assert result.returncode != 0 and took < 10, (took, result.stdout[-2000:], result.stderr[-2000:])
    assert f"DATABASE_URL points at 127.0.0.1 port {port}" in result.stderr, result.stderr
    assert "starting" not in result.stdout and not addon_processes(fresh), result.stdout


def test_pgbouncer_port_in_use_says_what_it_is_and_what_to_do(fresh, baked_venv, user):
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 6000))
        taken.listen()
        result = dyno_command(user, fresh, local_env(user, baked_venv, PORT=rs.free_port()), "web", timeout=60)
    assert result.returncode != 0, result.stdout[-2000:]
    message = result.stderr
    assert "port 6000 is in use" in message and "pgbouncer buildpack" in message, message
    assert "stop the other bin/dyno or heroku local" in message and "ss -ltnp 'sport = :6000'" in message, message
    assert "starting" not in result.stdout and not addon_processes(fresh), result.stdout


def test_empty_database_url_is_a_clear_error(bake_once, venv_python):
    """Set but empty is not unset: a sentence that says so, not dj-database-url's {} and a KeyError."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "DATABASE_URL": ""}
    result = run([venv_python, "manage.py", "check"], cwd=bake_once(), env=env, check=False, timeout=120)
    assert result.returncode != 0 and "KeyError" not in result.stderr, result.stderr[-2000:]
    assert "DATABASE_URL is set but empty" in result.stderr, result.stderr[-2000:]


def test_a_404_is_logged_once(bake_once, venv_python, tmp_path):
    """With DEBUG on (runserver), Django's "django" logger would print to a console handler of its own and to
    the root logger's: each line twice."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    script = (
        "import django; django.setup(); from django.test import Client; "
        "print(Client(HTTP_HOST='localhost').get('/no-such-page/').status_code)"
    )
    env["DJANGO_SETTINGS_MODULE"] = "my_heroku_app.settings"
    result = run([venv_python, "-c", script], cwd=bake_once(), env=env, timeout=120)
    assert result.stdout.split() == ["404"], result.stdout
    assert result.stderr.count("Not Found: /no-such-page/") == 1, result.stderr


def test_s3_bake_runs_locally_as_docs_s3_media_says(bake_once, baked_venv, user, workdir):
    """docs/s3-media.md's local run: moto's S3 server (the one the tests install) in place of its first two
    lines, then its .env lines and bucket as written, and bin/dyno web serves; an upload lands in the bucket."""
    import boto3

    project = rs.prepare_project(bake_once(use_s3_media=True), workdir / "s3", user, baked_venv, build=False)
    doc = (project / "docs/s3-media.md").read_text().split("## Locally", 1)[1].split("\n## ", 1)[0]
    lines = re.search(r"```bash\n(.*?)```", doc, re.S)[1].replace("\\\n", "").splitlines()
    assert "moto[server]" in lines[0] and "moto_server -H 127.0.0.1 -p 9000" in lines[1], lines
    moto_log = open(workdir / "s3-moto.log", "wb")
    moto = subprocess.Popen(
        [Path(sys.executable).with_name("moto_server"), "-H", "127.0.0.1", "-p", "9000"],
        stdout=moto_log,
        stderr=subprocess.STDOUT,
    )
    env = local_env(user, baked_venv, PORT=rs.free_port())
    try:
        deadline = time.monotonic() + 30
        while not plain_get(9000)[0]:
            assert time.monotonic() < deadline and moto.poll() is None, "moto_server did not start"
            time.sleep(0.2)
        for line in lines[2:-1]:
            result = rs.run_as(user, ["bash", "-c", line], env=env, cwd=project, check=False, timeout=300)
            assert result.returncode == 0, (line, result.stdout[-2000:], result.stderr[-2000:])
        assert lines[-1] == "bin/dyno web"
        with rs.Dyno(project, "web", env, user, workdir / "s3-web.log") as web:
            wait_plain_200(web, env["PORT"])
            script = (
                "from django.core.files.base import ContentFile; "
                "from django.core.files.storage import default_storage; "
                "print('SAVED', default_storage.save('local.txt', ContentFile(b'from bin/dyno')))"
            )
            upload = dyno_command(user, project, env, "run", "python", "manage.py", "shell", "-c", script)
            assert upload.returncode == 0 and "SAVED local" in upload.stdout, upload.stdout[-2000:] + upload.stderr
            record = web.stop()
        assert record["returncode"] == 0 and not record["leftovers"], record
        s3 = boto3.client(
            "s3",
            endpoint_url="http://127.0.0.1:9000",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        assert [item["Key"] for item in s3.list_objects_v2(Bucket="media")["Contents"]] == ["local.txt"]
    finally:
        moto.terminate()
        moto.wait(30)
        moto_log.close()


def test_missing_packages_are_named(bake_once, monkeypatch):
    """Each add-on's server, when not installed, is named with the Debian package that provides it."""
    bin_dir = str(bake_once(cache="memcached") / "bin")
    monkeypatch.syspath_prepend(bin_dir)
    for name in [name for name in sys.modules if name == "dynolib" or name.startswith("dynolib.")]:
        monkeypatch.delitem(sys.modules, name)
    from dynolib import addons

    monkeypatch.setattr(addons.shutil, "which", lambda *args, **kwargs: None)
    monkeypatch.setattr(addons.glob, "glob", lambda pattern: [])
    messages = {addon.name: addon.missing() for addon in addons.ADDONS}
    assert "apt-get install postgresql" in messages["postgresql"]
    assert "apt-get install redis-server" in messages["redis"] and "REDIS_URL" in messages["redis"]
    assert "apt-get install memcached" in messages["memcached"]
    with pytest.raises(addons.Fail, match="apt-get install postgresql.*\n.*apt-get install memcached"):
        addons.start({}, supervisor=None)
    for name in [name for name in sys.modules if name == "dynolib" or name.startswith("dynolib.")]:
        del sys.modules[name]


# --- started as root ----------------------------------------------------------------------------------------

ROOT_USER = rs.User("root", 0, 0, "/root")


def root_owned_dir(workdir, name, mode=0o755):
    """A directory of root's below the module's work directory (the dyno user's, which it can traverse)."""
    path = workdir / name
    path.mkdir(mode=mode)
    path.chmod(mode)
    return path


@pytest.fixture
def root_project(bake_once, workdir, request):
    """A checkout owned by root in a directory every user can read, as in a container."""
    project = root_owned_dir(workdir, f"root-{request.node.name[:20]}") / "app"
    shutil.copytree(bake_once(), project, symlinks=True)
    return project


def real_uids(pid):
    """The real, effective, saved and filesystem uids from /proc/PID/status (its files' owner is root for
    a process that changed its uid itself, such as bin/dyno after dropping root)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {int(uid) for uid in re.search(r"^Uid:\s+(.*)$", status, re.MULTILINE)[1].split()}


def test_root_runs_the_dyno_as_an_unprivileged_user(root_project, baked_venv, user, tmp_path):
    if os.geteuid() != 0:  # an ordinary user: bin/dyno runs as that user and says nothing about root
        result = dyno_command(user, root_project, local_env(user, baked_venv), "run", "id", "-u")
        assert result.returncode == 0 and str(os.geteuid()) in result.stdout.splitlines()
        assert "running as root" not in result.stdout
        return
    port = rs.free_port()
    env = local_env(ROOT_USER, baked_venv, PORT=port)
    with rs.Dyno(root_project, "web", env, ROOT_USER, tmp_path / "root-web.log") as web:
        wait_plain_200(web, port)
        assert f"running as root: the dyno runs as the unprivileged user {user.name} (uid {user.uid})" in web.output
        table = rs.process_table()
        processes = {pid: table[pid] for pid in web.dyno_pids() if pid in table}
        commands = " ".join(cmd for _p, _s, _u, cmd in processes.values())
        for expected in ("bin/dyno web", "nginx: master", "pgbouncer", "gunicorn", "postgres -D"):
            assert expected in commands, f"{expected!r} not among the dyno's processes: {commands}"
        as_root = {pid: cmd for pid, (_p, _s, _u, cmd) in processes.items() if real_uids(pid) != {user.uid}}
        assert not as_root, f"processes not run as {user.name}: {as_root}"
        assert (root_project / ".dyno").stat().st_uid == user.uid
        record = web.stop()
    assert record["returncode"] == 0 and not record["leftovers"] and not addon_processes(root_project), record


def test_root_refuses_what_the_dyno_user_cannot_reach(bake_once, baked_venv, user, workdir):
    """As root, a checkout the dyno's user cannot read, or a virtualenv whose Python only root can run
    (pyenv under /root), is refused with what to do instead; nothing is started."""
    if os.geteuid() != 0:
        assert os.geteuid() == user.uid  # nothing to refuse: bin/dyno runs as this user
        return
    hidden = root_owned_dir(workdir, "hidden", mode=0o700)
    root_only = Path(tempfile.mkdtemp(prefix="heroku-django-python-", dir="/root"))
    try:
        project = hidden / "app"
        shutil.copytree(bake_once(), project, symlinks=True)
        env = local_env(ROOT_USER, baked_venv, PORT=rs.free_port())
        result = dyno_command(ROOT_USER, project, env, "run", "true")
        assert result.returncode == 2 and f"{user.name} cannot read {project}" in result.stderr, result.stderr
        assert "not under /root" in result.stderr

        readable = root_owned_dir(workdir, "root-only-venv")
        project = readable / "app"
        shutil.copytree(bake_once(), project, symlinks=True)
        python = root_only / "python3"
        python.write_text('#!/bin/sh\nexec /usr/bin/python3 "$@"\n')
        python.chmod(0o755)
        (project / ".venv" / "bin").mkdir(parents=True)
        (project / ".venv" / "bin" / "python").symlink_to(python)
        result = dyno_command(ROOT_USER, project, env, "run", "true")
        assert result.returncode == 2 and f"{user.name} cannot run .venv/bin/python" in result.stderr, result.stderr
        assert "/usr/bin/python3 -m venv .venv" in result.stderr
        assert not (project / ".dyno" / "postgresql").exists()
    finally:
        shutil.rmtree(hidden, ignore_errors=True)
        shutil.rmtree(root_only, ignore_errors=True)


# --- the Redis and memcached options ----------------------------------------------------------------------


def redis_answer(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request)
        return connection.recv(200)


def test_redis_broker_form_works_and_the_worker_runs_the_task(bake_once, baked_venv, user, workdir):
    """task_broker=redis, cache=redis, nothing configured: bin/dyno starts Redis with a password; the index
    form posted over plain http enqueues (no 500); after the web dyno stops, the worker dyno finds the
    task in Redis's saved data and runs it."""
    project = rs.prepare_project(
        bake_once(task_broker="redis", cache="redis"), workdir / "redis", user, baked_venv, build=False
    )
    port = rs.free_port()
    env = local_env(user, baked_venv, PORT=port, Q_POLL="0.2")
    key = "from-the-local-form"
    with rs.Dyno(project, "web", env, user, workdir / "redis-web.log") as web:
        wait_plain_200(web, port)
        url = web.app_environ()["REDIS_URL"]
        match = re.fullmatch(r"redis://:([A-Za-z0-9_-]+)@127\.0\.0\.1:(\d+)/0", url)
        assert match, url
        redis_port = int(match[2])
        assert redis_answer(redis_port, b"PING\r\n").startswith(b"-NOAUTH"), "Redis answered without a password"
        assert "heroku-redis" in (project / "app.json").read_text()  # why bin/dyno started Redis

        body, headers = csrf_form(port, {"key": key})
        status, response_headers, response = rs.http_request(port, "POST", "/tasks/example/", headers, body)
        assert status == 302 and response_headers["location"] == ["/"], (status, response[:500])
        queued = web.run_in_dyno(
            [
                f"{baked_venv}/bin/python",
                "manage.py",
                "shell",
                "-c",
                "from django_q.brokers import get_broker; print('QUEUED', get_broker().queue_size())",
            ]
        )
        assert "QUEUED 1" in queued.stdout, queued.stdout
        assert web.stop()["returncode"] == 0
    assert "stopping redis" in web.output and not addon_processes(project)

    query = (
        f"from example.models import ExampleResult; print('ROWS', ExampleResult.objects.filter(key='{key}').count())"
    )
    with rs.Dyno(project, "worker", env, user, workdir / "redis-worker.log") as worker:

        def task_ran():
            try:
                result = worker.run_in_dyno(
                    [f"{baked_venv}/bin/python", "manage.py", "shell", "-c", query], check=False
                )
            except rs.StackError:  # the worker's app has not started yet (its add-ons start first)
                return False
            return "ROWS 1" in result.stdout

        worker.wait_for(task_ran, "the worker to run the task the web dyno enqueued", timeout=120, interval=2)
        record = worker.stop()
    assert record["returncode"] == 0 and not record["leftovers"] and not addon_processes(project), record


def test_memcached_cache_for_a_oneoff(bake_once, baked_venv, user, workdir):
    project = rs.prepare_project(bake_once(cache="memcached"), workdir / "memcached", user, baked_venv, build=False)
    script = (
        "import os; from django.conf import settings; from django.core.cache import cache; cache.set('k', 'v'); "
        "print('CACHE', settings.CACHES['default']['BACKEND'], cache.get('k'), os.environ['MEMCACHIER_SERVERS'])"
    )
    env = local_env(user, baked_venv)
    result = dyno_command(user, project, env, "run", "python", "manage.py", "shell", "-c", script)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("CACHE "))
    backend, value, servers = line.split()[1:]
    assert (backend, value) == ("django_bmemcached.memcached.BMemcached", "v")
    assert re.fullmatch(r"127\.0\.0\.1:\d+", servers)
    assert "stopping memcached" in result.stdout and not addon_processes(project)
    assert json.loads((project / "app.json").read_text())["addons"][-1]["plan"].startswith("memcachier")
