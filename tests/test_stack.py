"""The baked project on the real stack: bin/dyno runs nginx, PgBouncer, each WSGI server and the worker
against a throwaway PostgreSQL 15, as an ordinary user, the way Heroku's buildpacks run them on a dyno.

One stack (bake, build, release phase, web dyno, then worker dyno) per combination in COMBINATIONS;
the tests of a combination share it, in file order. The module runs in its own network namespace and
/tmp (realstack.StackNamespace): bin/dyno's fixed /tmp/nginx.socket and port 6000 are its own. Needs
nginx, pgbouncer, ruby (erb) and PostgreSQL's server programs; a missing one fails the tests with the
package to install.
"""

import csv
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from types import SimpleNamespace

import pytest

import realstack as rs
from conftest import SERVERS, answers_id

COMBINATIONS = [{"wsgi_server": server, "pgbouncer_pool_mode": "transaction"} for server in SERVERS]
# Session mode with the threaded server: every thread holds its own connection, the hardest case for it.
COMBINATIONS.append({"wsgi_server": "waitress", "pgbouncer_pool_mode": "session"})
SECRET_KEY = "stack-test-" + "k" * 60  # check --deploy wants 50 characters or more
BODY_LIMIT = "1k"
HTTPS = {"X-Forwarded-Proto": "https", "Host": "localhost"}  # what Heroku's router adds


# --- fixtures -------------------------------------------------------------------------------------------


def stack_env(user, venv, **config_vars):
    # CI is set on purpose: a dyno has no CI variable and bin/dyno must drop it.
    return rs.base_env(user, venv, DJANGO_SECRET_KEY=SECRET_KEY, CI="true", **config_vars)


@pytest.fixture(scope="module", params=COMBINATIONS, ids=answers_id)
def stack(request, bake_once, baked_venv, user, workdir, postgres):
    """Bake, build, run the release phase, then start the web dyno; yields everything the tests need."""
    answers = request.param
    name = f"{answers['wsgi_server']}_{answers['pgbouncer_pool_mode']}"
    project = rs.prepare_project(bake_once(**answers), workdir / name, user, baked_venv)
    database = f"app_{name}"
    url = postgres.create_database(database)
    # A second database (seed 002), pooled too because PGBOUNCER_URLS names it.
    second_url = postgres.create_database(f"{database}_red")
    # The config vars a Deploy Button would set from app.json, plus the ones this stack needs.
    app_json = json.loads((project / "app.json").read_text())
    config_vars = {key: spec["value"] for key, spec in app_json["env"].items() if "value" in spec}
    port = rs.free_port()
    env = stack_env(
        user,
        baked_venv,
        DATABASE_URL=url,
        HEROKU_POSTGRESQL_RED_URL=second_url,
        PGBOUNCER_URLS="DATABASE_URL HEROKU_POSTGRESQL_RED_URL",
        PORT=port,
        NGINX_CLIENT_MAX_BODY_SIZE=BODY_LIMIT,
        **config_vars,
    )
    s = SimpleNamespace(
        answers=answers,
        mode=answers["pgbouncer_pool_mode"],
        project=project,
        env=env,
        port=port,
        url=url,
        database=database,
        user=user,
        postgres=postgres,
        venv=baked_venv,
        workdir=workdir / name,
    )
    # Release phase: the Procfile line has no wrapper, so bin/dyno starts no PgBouncer for it.
    with rs.Dyno(project, "release", env, user, s.workdir / "release.log", postgres) as release:
        release.wait_for(lambda: release.process.poll() is not None, "the release phase to finish", timeout=180)
        s.release_output, s.release_status = release.output, release.process.returncode
    assert s.release_status == 0, f"release phase failed:\n{s.release_output[-4000:]}"
    s.web = rs.Dyno(project, "web", env, user, s.workdir / "web.log", postgres).__enter__()
    try:
        s.web.wait_http(port)
        s.worker_stop = None
        yield s
    finally:
        s.web.__exit__(None, None, None)


def pgbouncer_show(user, what, port=6000):
    """SHOW <what> on PgBouncer's admin console, reached as the dyno's user over the unix socket."""
    result = rs.run_as(
        user,
        ["psql", "-X", "--csv", "-h", "/tmp", "-p", str(port), "-U", "pgbouncer", "pgbouncer", "-c", f"SHOW {what}"],
    )
    return list(csv.DictReader(io.StringIO(result.stdout)))


def assert_postgres_sees_only_pgbouncer(s, pgbouncer_port=6000):
    """Every client backend of the app's database is a server connection of PgBouncer (by local port)."""
    servers = pgbouncer_show(s.user, "SERVERS", pgbouncer_port)
    server_ports = {int(row["local_port"]) for row in servers if row["database"] == "db1"}
    backends = s.postgres.sql(
        "SELECT client_addr, client_port FROM pg_stat_activity "
        f"WHERE datname = '{s.database}' AND backend_type = 'client backend'"
    )
    assert backends, "no connection to PostgreSQL from the dyno at all"
    assert {int(port) for _addr, port in backends} <= server_ports, (
        f"PostgreSQL has connections that are not PgBouncer's: {backends}, PgBouncer's ports {server_ports}"
    )


def test_a_second_database_is_pooled_too(stack):
    """Every variable PGBOUNCER_URLS names gets its own dbN alias on the dyno's PgBouncer."""
    environ = stack.web.app_environ()
    assert environ["DATABASE_URL"].endswith("@127.0.0.1:6000/db1")
    assert environ["HEROKU_POSTGRESQL_RED_URL"].endswith("@127.0.0.1:6000/db2")
    code = (
        "import os, psycopg; connection = psycopg.connect(os.environ['HEROKU_POSTGRESQL_RED_URL']); "
        "print(connection.execute('SELECT current_database()').fetchone()[0])"
    )
    result = stack.web.run_in_dyno([str(stack.venv / "bin/python"), "-c", code])
    assert result.stdout.split()[-1] == f"{stack.database}_red"
    assert "db2" in {row["database"] for row in pgbouncer_show(stack.user, "POOLS")}


def get(s, path, headers=None):
    return rs.http_request(s.port, "GET", path, {**HTTPS, **(headers or {})})


# --- bin/dyno on its own: help, dry run, plain errors, a process dying ----------------------------------


@pytest.fixture(scope="module")
def checks_project(bake_once, user, workdir, baked_venv):
    return rs.prepare_project(bake_once(wsgi_server="gunicorn"), workdir / "checks", user, baked_venv, build=False)


def dyno_cli(user, project, venv, *args, **env):
    environment = stack_env(user, venv, **env)
    return rs.run_as(user, [project / "bin/dyno", *args], env=environment, cwd=project, check=False, timeout=60)


def test_help(user, checks_project, baked_venv):
    result = dyno_cli(user, checks_project, baked_venv, "--help")
    assert result.returncode == 0
    assert "usage: bin/dyno" in result.stdout and "SIGTERM" in result.stdout


def test_dry_run_pgbouncer_config(user, checks_project, baked_venv):
    """app.json's config vars over the buildpack's defaults, as on a Deploy Button app; dbN aliases; TLS
    required for a remote server, preferred on loopback."""
    remote = "postgres://u:p%40ss@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d8abc"
    local = "postgres://v:w@127.0.0.1:5432/other"
    result = dyno_cli(
        user,
        checks_project,
        baked_venv,
        "--dry-run",
        "web",
        DATABASE_URL=remote,
        HEROKU_POSTGRESQL_RED_URL=local,
        PGBOUNCER_URLS="DATABASE_URL HEROKU_POSTGRESQL_RED_URL",
        PGBOUNCER_POOL_MODE="session",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for line in [
        "listen_addr = 127.0.0.1",
        "listen_port = 6000",
        "auth_type = scram-sha-256",
        "server_tls_sslmode = require",
        "pool_mode = session",
        "server_reset_query = DISCARD ALL;",
        "max_client_conn = 100",
        "default_pool_size = 5",
        "reserve_pool_size = 2",
        "reserve_pool_timeout = 5.0",  # the buildpack's default: app.json does not set it
        "query_wait_timeout = 10",
        "server_idle_timeout = 30",
        "db1= host=ec2-1-2-3-4.compute-1.amazonaws.com dbname=d8abc port=5432",
        "db2= host=127.0.0.1 dbname=other port=5432",
        "env DATABASE_URL=postgres://u:***@127.0.0.1:6000/db1",
        "env HEROKU_POSTGRESQL_RED_URL=postgres://v:***@127.0.0.1:6000/db2",
        "env DYNO=web.1",
        "env PORT=5000",
        "env WEB_CONCURRENCY=2",
        "env CI=(removed)",
    ]:
        assert line in out.splitlines(), f"{line!r} missing from:\n{out}"
    version = re.search(
        r"(\d+)\.(\d+)", rs.run_as(user, ["pgbouncer", "--version"], env={"PATH": rs.SBIN + ":/usr/bin"}).stdout
    )
    assert ("max_prepared_statements" in out) == ((int(version[1]), int(version[2])) >= (1, 21))
    assert "p%40ss" not in out and "p@ss" not in out, "the dry run printed a password"

    loopback = dyno_cli(user, checks_project, baked_venv, "--dry-run", "worker", DATABASE_URL=local)
    assert "server_tls_sslmode = prefer" in loopback.stdout and "pool_mode = transaction" in loopback.stdout
    forced = dyno_cli(
        user,
        checks_project,
        baked_venv,
        "--dry-run",
        "worker",
        DATABASE_URL=local,
        PGBOUNCER_SERVER_TLS_SSLMODE="require",
    )
    assert "server_tls_sslmode = require" in forced.stdout


def test_plain_errors(user, checks_project, baked_venv, workdir):
    def error(*args, **env):
        result = dyno_cli(user, checks_project, baked_venv, *args, **env)
        assert result.returncode == 2, f"expected a refusal, got {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result.stderr

    assert "is not of the form postgres://user:password@host:port/dbname" in error(
        "worker", DATABASE_URL="postgres://app:secret@127.0.0.1:5432/app?sslmode=require"
    )
    assert "no 'nope' process type" in error("nope")
    url = "postgres://a:b@127.0.0.1:5432/c"
    # erb missing: a PATH with the venv, bash and the coreutils bin/dyno needs, but no ruby.
    tools = workdir / "tools-without-erb"
    tools.mkdir(exist_ok=True)
    for program in ("bash", "python3", "tail"):
        (tools / program).unlink(missing_ok=True)
        (tools / program).symlink_to(shutil.which(program, path="/usr/bin:/bin"))
    message = error("web", DATABASE_URL=url, PATH=f"{baked_venv}/bin:{tools}", PORT=rs.free_port())
    assert "erb is not installed: apt-get install ruby" in message
    # PORT and 6000 busy (taken here, in this module's own network namespace).
    with socket.socket() as web_port, socket.socket() as pgbouncer_port:
        web_port.bind(("0.0.0.0", 0))
        web_port.listen()
        pgbouncer_port.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        pgbouncer_port.bind(("127.0.0.1", 6000))
        pgbouncer_port.listen()
        busy = web_port.getsockname()[1]
        message = error("web", DATABASE_URL=url, PORT=busy)
    assert f"port {busy} (PORT) is in use" in message and "port 6000 is in use" in message


def test_a_process_dying_stops_the_dyno(user, checks_project, baked_venv, postgres, workdir):
    """The app's master is killed: bin/dyno stops the rest, exits non-zero and leaves nothing behind."""
    port = rs.free_port()
    env = stack_env(user, baked_venv, DATABASE_URL=postgres.create_database("app_crash"), PORT=port)
    with rs.Dyno(checks_project, "web", env, user, workdir / "crash.log", postgres) as web:
        web.wait_http(port)
        app = web.app_pid()
        os.kill(app, signal.SIGKILL)
        web.wait_for(lambda: web.process.poll() is not None, "bin/dyno to exit after its app died", timeout=35)
        record = web.stop()
    assert record["returncode"] not in (0, None), web.output[-3000:]
    assert "app exited" in web.output
    assert not record["leftovers"], f"processes left behind: {record['leftovers']}"


def test_pgbouncer_disabled_runs_the_app_straight_to_the_database(user, checks_project, baked_venv, postgres, workdir):
    """PGBOUNCER_ENABLED=false: as the buildpack's start-pgbouncer does, the rest of the line runs with
    DATABASE_URL as it is, and no PgBouncer starts."""
    port = rs.free_port()
    url = postgres.create_database("app_nopool")
    env = stack_env(user, baked_venv, DATABASE_URL=url, PORT=port, PGBOUNCER_ENABLED="false")
    with rs.Dyno(checks_project, "web", env, user, workdir / "nopool.log", postgres) as web:
        web.wait_http(port)  # /health/ answers 200 only once the database does
        app_database = web.app_environ()["DATABASE_URL"]
        commands = " ".join(cmd for pid, (_p, _s, _u, cmd) in rs.process_table().items() if pid in web.dyno_pids())
        record = web.stop()
    assert app_database == url
    assert "pgbouncer" not in commands and "gunicorn" in commands, commands
    assert record["returncode"] == 0 and not record["leftovers"], web.output[-3000:]


# --- one stack per combination ---------------------------------------------------------------------------


def test_release_phase_migrates_directly(stack):
    """`release: python manage.py migrate` runs outside any wrapper: DATABASE_URL untouched, no PgBouncer."""
    plan = rs.run_as(stack.user, [stack.project / "bin/dyno", "--dry-run", "release"], env=stack.env, cwd=stack.project)
    assert "env DATABASE_URL=" not in plan.stdout and "pgbouncer.ini" not in plan.stdout, plan.stdout
    assert "env DYNO=release.1" in plan.stdout.splitlines()
    assert (
        "starting pgbouncer" not in stack.release_output
        and "starting app: bash -c python manage.py migrate" in stack.release_output
    )
    assert "Applying example.0001_initial... OK" in stack.release_output
    tables = stack.postgres.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", stack.database)
    assert ["example_exampleresult"] in tables


def test_dyno_environment(stack):
    environ = stack.web.app_environ()
    user, password = rs.Postgres.APP_USER, rs.Postgres.APP_PASSWORD
    assert environ["DATABASE_URL"] == f"postgres://{user}:{password}@127.0.0.1:6000/db1"
    assert environ["DYNO"] == "web.1" and "CI" not in environ
    assert environ["PORT"] == str(stack.port) and environ["WEB_CONCURRENCY"] == "2"
    assert environ["FORWARDED_ALLOW_IPS"] == "*"
    # Production settings are on (DYNO set, CI gone): plain HTTP is redirected, HTTPS gets HSTS.
    status, headers, _ = rs.http_request(stack.port, "GET", "/", {"Host": "localhost"})
    assert status == 301 and headers["location"] == ["https://localhost/"]
    status, headers, body = get(stack, "/")
    assert status == 200 and "strict-transport-security" in headers
    # The home page names the stack that served it.
    server = {"gunicorn": "gunicorn", "uwsgi": "uWSGI", "waitress": "waitress"}[stack.answers["wsgi_server"]]
    assert f"Served by nginx → {server} ".encode() in body and " → PgBouncer → PostgreSQL.".encode() in body, body


def test_dyno_processes_are_found(stack):
    """The leftover check below finds the dyno's processes by session: it must see them while they run."""
    commands = " ".join(rs.process_table()[pid][3] for pid in stack.web.dyno_pids())
    for expected in ("bin/dyno web", "pgbouncer", "nginx: master", "nginx: worker", "tail -qF"):
        assert expected in commands, f"{expected!r} not among the dyno's processes: {commands}"


def test_requests_go_through_nginx_and_pgbouncer(stack):
    before = {row["database"]: int(row["total_query_count"]) for row in pgbouncer_show(stack.user, "STATS")}
    status, headers, body = get(stack, "/")
    assert status == 200 and b"It works" in body and headers["server"] == ["nginx"]
    status, _, body = get(stack, "/health/")
    assert status == 200 and json.loads(body) == {"status": "ok", "database": "postgresql"}
    after = {row["database"]: int(row["total_query_count"]) for row in pgbouncer_show(stack.user, "STATS")}
    assert after["db1"] >= before.get("db1", 0) + 2, f"PgBouncer served no queries for the requests: {after}"
    pools = {row["database"]: row for row in pgbouncer_show(stack.user, "POOLS")}
    assert pools["db1"]["pool_mode"] == stack.mode
    assert int(pools["db1"]["sv_idle"]) + int(pools["db1"]["sv_used"]) + int(pools["db1"]["sv_active"]) >= 1
    assert_postgres_sees_only_pgbouncer(stack)


def test_access_log_line(stack):
    request_id = str(uuid.uuid4())
    agent, referer = f"stack-test/{request_id[:8]}", f"https://referer.example/{request_id[:8]}"
    status, _, _ = get(stack, "/health/", {"X-Request-Id": request_id, "User-Agent": agent, "Referer": referer})
    assert status == 200

    def line():
        return next((text for text in stack.web.output.splitlines() if f'request_id="{request_id}"' in text), None)

    logged = stack.web.wait_for(line, "the access log line on the dyno's stdout", timeout=15)
    assert re.search(r"measure#nginx\.service=\d+\.\d+ ", logged), logged
    assert f'user_agent="{agent}"' in logged and f'referer="{referer}"' in logged and "status=200" in logged


def test_one_access_line_per_request(stack):
    """nginx writes the access line; the WSGI server must not add a second one for the same request
    (gunicorn would, from the Python buildpack's GUNICORN_CMD_ARGS=--access-logfile -)."""
    agent = f"stack-test-once/{uuid.uuid4().hex}"
    assert get(stack, "/health/", {"User-Agent": agent})[0] == 200
    stack.web.wait_for(lambda: agent in stack.web.output, "the access log line", timeout=15)
    time.sleep(2)  # a second line, if any: the server's at once, nginx's within its access log's 1 s flush
    lines = [text for text in stack.web.output.splitlines() if agent in text]
    assert len(lines) == 1, "more than one access log line for one request:\n" + "\n".join(lines)


def upstream_connections_held(pid):
    """Connected unix sockets on /tmp/nginx.socket held by the app process `pid` and its children: nginx's
    connections to the server that are still open."""
    pids = [pid] + [child for child, (ppid, *_rest) in rs.process_table().items() if ppid == pid]
    inodes = set()
    for each in pids:
        try:
            links = [os.readlink(f"/proc/{each}/fd/{fd}") for fd in os.listdir(f"/proc/{each}/fd")]
        except OSError:
            continue  # a worker that just exited
        inodes |= {link[8:-1] for link in links if link.startswith("socket:[")}
    with open(f"/proc/{pid}/net/unix") as table:
        rows = [line.split() for line in table.read().splitlines()[1:]]
    # Num RefCount Protocol Flags Type St Inode Path; St 03 is connected (01: the listening socket).
    return sum(
        1 for row in rows if len(row) > 7 and row[6] in inodes and row[5] == "03" and row[7].endswith("nginx.socket")
    )


def test_nginx_keeps_no_connection_to_the_server(stack):
    """nginx closes its connection to the server after each response, for every server (config/nginx.conf.erb
    has no upstream keepalive): a connection it kept would hold one of waitress's connection_limit places
    while new ones wait, and gunicorn's and uWSGI's sync workers close each connection anyway."""
    for _ in range(10):
        assert get(stack, "/health/")[0] == 200
    app = stack.web.app_pid()
    stack.web.wait_for(lambda: upstream_connections_held(app) == 0, "no connection left open", timeout=10)


def test_body_over_the_limit_gets_413_from_nginx(stack):
    request_id = str(uuid.uuid4())
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Request-Id": request_id}
    status, _, body = rs.http_request(stack.port, "POST", "/tasks/example/", {**HTTPS, **headers}, b"k=" + b"x" * 4096)
    assert status == 413 and b"nginx" in body
    # Control: a small body does reach Django, which refuses it for want of a CSRF token.
    status, _, _ = rs.http_request(stack.port, "POST", "/tasks/example/", {**HTTPS, **headers}, b"key=small")
    assert status == 403

    def logged():
        return [text for text in stack.web.output.splitlines() if f'request_id="{request_id}"' in text]

    lines = stack.web.wait_for(lambda: len(logged()) == 2 and logged(), "both POSTs in the access log", timeout=15)
    assert "status=413" in lines[0] and "measure#nginx.upstream=- " in lines[0], "the 413 request reached the app"
    assert "status=403" in lines[1] and "measure#nginx.upstream=-" not in lines[1]


def test_static_file_long_lived(stack):
    manifest = json.loads((stack.project / "staticfiles" / "staticfiles.json").read_text())
    hashed = manifest["paths"]["site.css"]
    assert hashed != "site.css"
    status, headers, body = get(stack, f"/static/{hashed}")
    assert status == 200 and body == (stack.project / "static" / "site.css").read_bytes()
    cache = headers["cache-control"][0]
    assert "max-age=315360000" in cache and "immutable" in cache, cache


ORM_SCRIPT = r"""
import json, os
import psycopg
from django.db import connection, transaction
from django.db.models import F
from example.models import ExampleResult

def backend():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]

def hold_a_server():
    # Another PgBouncer client opens a transaction: it takes the server connection the ORM just released.
    other = psycopg.connect(os.environ["DATABASE_URL"])
    other.execute("SELECT 1")
    return other

ExampleResult.objects.filter(key__startswith="orm-").delete()
ExampleResult.objects.bulk_create(ExampleResult(key=f"orm-{i:05}", digest="d") for i in range(2500))
report = {"disable_server_side_cursors": bool(connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"))}

# Several transactions in a row, with the server each one used taken away before the next.
servers = []
for i in range(4):
    with transaction.atomic():
        servers.append(backend())
        row = ExampleResult.objects.create(key=f"orm-txn-{i}", digest="t")
        ExampleResult.objects.filter(pk=row.pk).update(runs=F("runs") + 1)
    other = hold_a_server()
    with transaction.atomic():
        servers.append(backend())
        assert ExampleResult.objects.filter(key__startswith="orm-txn-", runs=1).count() == i + 1
    other.close()
for _ in range(8):  # the same statement over and over: nothing may be prepared on one server only
    ExampleResult.objects.filter(key="orm-txn-0").count()
report["servers"] = servers

# A queryset iterator longer than one fetch, with its server taken away after the first chunk.
def iterate():
    rows = ExampleResult.objects.filter(key__regex=r"^orm-[0-9]+$").order_by("key").iterator(chunk_size=100)
    first = next(rows)
    other = hold_a_server()
    try:
        return 1 + sum(1 for _ in rows)
    finally:
        other.close()

report["iterated"] = iterate()
# Control: the same with server-side cursors, which transaction mode cannot keep across statements.
connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = False
try:
    report["server_side"] = iterate()
except Exception as error:
    report["server_side"] = f"{type(error).__name__}: {error}"
connection.close()
print("REPORT " + json.dumps(report))
"""


def test_orm_through_pgbouncer(stack):
    """Transaction mode: the ORM's transactions and iterators survive server connections changing hands."""
    result = stack.web.run_in_dyno([f"{stack.venv}/bin/python", "manage.py", "shell", "-c", ORM_SCRIPT])
    report = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))[7:])
    servers = report["servers"]
    assert report["iterated"] == 2500
    if stack.mode == "transaction":
        assert report["disable_server_side_cursors"] is True
        # PgBouncer really moved consecutive transactions to other server connections...
        assert all(servers[i] != servers[i + 1] for i in range(0, len(servers), 2)), servers
        # ...which is what breaks a server-side cursor: the control must fail.
        assert isinstance(report["server_side"], str) and "does not exist" in report["server_side"], report
    else:
        # Session mode pins one server connection to the client for its whole session.
        assert report["disable_server_side_cursors"] is False
        assert len(set(servers)) == 1, servers
        assert report["server_side"] == 2500
        assert "DISCARD ALL;" in (stack.project / ".dyno" / "web.1" / "pgbouncer.ini").read_text()


def test_pgbouncer_stats_command(stack):
    get(stack, "/health/")
    result = stack.web.run_in_dyno([f"{stack.venv}/bin/python", "manage.py", "pgbouncer_stats"])
    lines = result.stdout.splitlines()
    assert "SHOW STATS" in lines and "SHOW POOLS" in lines
    stats = next(line for line in lines if "database=db1" in line and "total_query_count=" in line)
    assert int(re.search(r"total_query_count=(\d+)", stats)[1]) > 0
    pools = next(line for line in lines if "database=db1" in line and "pool_mode=" in line)
    assert f"pool_mode={stack.mode}" in pools and "user=app" in pools


def test_worker_runs_task_enqueued_by_web(stack):
    """The web dyno enqueues through the form (CSRF and all); the worker dyno runs it through PgBouncer."""
    key = f"stack-{uuid.uuid4().hex[:12]}"
    post_headers, form = rs.task_form(get(stack, "/"), {"key": key})
    status, _, body = rs.http_request(stack.port, "POST", "/tasks/example/", post_headers, form)
    assert status == 202, body[:500]
    assert json.loads(body)["key"] == key
    assert stack.postgres.sql("SELECT count(*) FROM django_q_ormq", stack.database) != [["0"]], "nothing was queued"

    # The worker dyno runs after the web dyno here (tests/test_formation.py runs them side by side).
    stack.web.stop()
    query = f"SELECT digest, runs FROM example_exampleresult WHERE key = '{key}'"
    with rs.Dyno(
        stack.project, "worker", stack.env, stack.user, stack.workdir / "worker.log", stack.postgres
    ) as worker:
        rows = worker.wait_for(
            lambda: stack.postgres.sql(query, stack.database), f"the task for {key} to run", timeout=90
        )
        assert rows[0][0] == hashlib.sha256(key.encode()).hexdigest()
        assert worker.app_environ()["DATABASE_URL"].endswith("@127.0.0.1:6001/db1")  # its own PgBouncer's port
        assert_postgres_sees_only_pgbouncer(stack, 6001)
        stack.worker_stop = worker.stop()
        stack.worker_output = worker.output


def test_sigterm_leaves_nothing_behind(stack):
    """SIGTERM to bin/dyno (what Heroku sends every process) ends web and worker dynos, nothing left behind,
    within Heroku's 30 s (bin/dyno sends SIGKILL to what is left then)."""
    records = {"web": stack.web.stop(), "worker": stack.worker_stop}
    assert records["worker"] is not None, "the worker dyno did not run (see the test above)"
    for name, record in records.items():
        assert record["elapsed"] < 31, f"{name} took {record['elapsed']:.1f} s to stop"
        assert record["returncode"] == 0, f"{name} exited {record['returncode']} after SIGTERM"
        assert not record["leftovers"], f"{name} left processes behind: {record['leftovers']}"


def test_web_stops_gracefully(stack):
    """The WSGI server, nginx and PgBouncer all exit on Heroku's SIGTERM well before the SIGKILL."""
    record = stack.web.stop()
    assert record["elapsed"] < 25 and "sending SIGKILL" not in stack.web.output, stack.web.output[-3000:]


def test_worker_stops_gracefully(stack):
    """Heroku's SIGTERM reaches every process of the worker dyno at once; the cluster must still stop
    by itself instead of hanging until the SIGKILL (R12)."""
    record = stack.worker_stop
    assert record is not None, "the worker dyno did not run (see the test above)"
    assert record["elapsed"] < 25 and "sending SIGKILL" not in stack.worker_output, stack.worker_output[-3000:]


def test_baked_tests_pass_on_postgresql(bake_once, baked_venv, postgres):
    """Heroku CI's case (app.json's environments.test): the project's own tests on PostgreSQL, not SQLite."""
    project = bake_once()
    url = postgres.create_database("app_own_tests")
    postgres.sql(f"ALTER ROLE {postgres.APP_USER} CREATEDB")  # pytest-django creates test_app_own_tests
    environ = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "DATABASE_URL": url}
    result = subprocess.run(
        [str(baked_venv / "bin/python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
