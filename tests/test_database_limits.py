"""Limits between the web dyno and PostgreSQL on the real stack, in both PgBouncer pool modes.

For each pool mode, one gunicorn web dyno (`bin/dyno release`, then `bin/dyno web`, as an ordinary user
against a throwaway PostgreSQL, with app.json's config vars; see realstack.py):

- statement_timeout: the release phase makes DATABASE_STATEMENT_TIMEOUT the app role's default, which
  every server connection PgBouncer opens then has (PgBouncer refuses it as a startup option). A page
  whose query waits on a lock fails when it runs out, not at the WSGI server's or the router's timeout,
  and its PostgreSQL backend is free again; `SET LOCAL` in a transaction raises it for one slow view;
  migrations (straight to PostgreSQL) run without it;
- a dyno starved of server connections (PostgreSQL refuses its PgBouncer any: the role's connection
  limit, held by "other dynos"): pages and /health/ answer 503 fast, and 200 again soon after
  connections come free.

Here DATABASE_STATEMENT_TIMEOUT is 3s (its default on a dyno is 25s), so that the test waits seconds.
The figures go to the run's "figures" summary and are quoted in the baked docs/reliability.md, "Reliability".
"""

import json
import subprocess
import threading
import time

import pytest

import realstack as rs
from conftest import POOL_MODES, figure

SECRET_KEY = "database-limits-" + "k" * 60
HTTPS = {"X-Forwarded-Proto": "https", "Host": "localhost"}
STATEMENT_TIMEOUT = 3
ROUTER_TIMEOUT = 30


class Stack:
    def __init__(self, mode, project, env, port, user, postgres, workdir, database, venv):
        self.mode, self.project, self.env, self.port, self.user = mode, project, env, port, user
        self.postgres, self.workdir, self.database, self.venv = postgres, workdir, database, venv
        self.web, self.starts = None, 0

    def start(self, wait=True):
        self.stop()
        self.starts += 1
        log = self.workdir / f"web-{self.starts}.log"
        self.web = rs.Dyno(self.project, "web", self.env, self.user, log, self.postgres).__enter__()
        if wait:
            self.web.wait_http(self.port)
        return self.web

    def stop(self):
        if self.web is not None:
            self.web.stop()
            self.web = None

    def get(self, path, timeout=ROUTER_TIMEOUT + 15):
        started = time.monotonic()
        try:
            status, headers, body = rs.http_request(self.port, "GET", path, HTTPS, timeout=timeout)
        except OSError as error:
            status, headers, body = type(error).__name__, {}, b""
        return status, time.monotonic() - started, headers, body

    def shell(self, code, check=True):
        return self.web.run_in_dyno([f"{self.venv}/bin/python", "manage.py", "shell", "-c", code], check=check)

    def manage(self, *args, check=True):
        """manage.py straight against PostgreSQL, as the release phase and `heroku run` do."""
        return rs.run_as(
            self.user, [f"{self.venv}/bin/python", "manage.py", *args], env=self.env, cwd=self.project, check=check
        )


@pytest.fixture(scope="module", params=POOL_MODES)
def stack(request, bake_once, baked_venv, user, workdir, postgres):
    mode = request.param
    name = f"dblimits_{mode}"
    project = rs.prepare_project(bake_once(pgbouncer_pool_mode=mode), workdir / name, user, baked_venv)
    url = postgres.create_database(name)
    app_json = json.loads((project / "app.json").read_text())
    config_vars = {key: spec["value"] for key, spec in app_json["env"].items() if "value" in spec}
    env = rs.base_env(
        user,
        baked_venv,
        DJANGO_SECRET_KEY=SECRET_KEY,
        DATABASE_URL=url,
        PORT=rs.free_port(),
        DATABASE_STATEMENT_TIMEOUT=f"{STATEMENT_TIMEOUT}s",
        **config_vars,
    )
    s = Stack(mode, project, env, int(env["PORT"]), user, postgres, workdir / name, name, baked_venv)
    with rs.Dyno(project, "release", env, user, s.workdir / "release.log", postgres) as release:
        release.wait_for(lambda: release.process.poll() is not None, "the release phase to finish", timeout=180)
    assert release.process.returncode == 0, f"release phase failed:\n{release.output[-4000:]}"
    assert f"statement_timeout for this role in {name}: {STATEMENT_TIMEOUT}s" in release.output, release.output[-3000:]
    s.start()
    yield s
    s.stop()


SHOW = """
from django.db import connection
with connection.cursor() as c:
    c.execute("SHOW statement_timeout")
    print("TIMEOUT", c.fetchone()[0])
"""
SLOW_QUERY = """
from django.db import connection, transaction, OperationalError
import time
def sleep(seconds, raised):
    started = time.monotonic()
    try:
        with transaction.atomic(), connection.cursor() as c:
            if raised:
                c.execute("SET LOCAL statement_timeout = '{raised}s'")
            c.execute('SELECT pg_sleep(%s)', [seconds])
        return 'ok %.1f' % (time.monotonic() - started)
    except OperationalError as error:
        return 'cancelled %.1f %s' % (time.monotonic() - started, type(error.__cause__).__name__)
print('PLAIN', sleep({seconds}, False))
print('RAISED', sleep({seconds}, True))
print('AFTER', sleep({seconds}, False))
"""


def test_statement_timeout_through_pgbouncer(stack):
    """Every connection the app gets through PgBouncer has the timeout; a query stuck on a lock ends with a
    500 page when it runs out, and its backend no longer waits."""
    if stack.web is None or stack.web.process.poll() is not None:
        stack.start()
    shown = stack.shell(SHOW).stdout
    assert f"TIMEOUT {STATEMENT_TIMEOUT}s" in shown, shown
    assert stack.get("/")[0] == 200
    lock = rs.TableLock(stack)
    try:
        status, elapsed, _, _ = stack.get("/")
        waiting_after = lock.waiters()
    finally:
        lock.release()
    figure(f"statement_timeout ({stack.mode})", page_status=status, page_s=elapsed, timeout_s=STATEMENT_TIMEOUT)
    assert status == 500, status
    assert STATEMENT_TIMEOUT - 0.5 < elapsed < STATEMENT_TIMEOUT + 3, f"the page took {elapsed:.1f} s"
    assert waiting_after == 0, "a backend still waits on the lock after the page failed"
    assert stack.get("/")[0] == 200


def test_set_local_raises_it_for_one_transaction(stack):
    """The README's recipe for a slow view or task: SET LOCAL inside transaction.atomic(); the raised
    timeout ends with the transaction, in both pool modes."""
    if stack.web is None or stack.web.process.poll() is not None:
        stack.start()
    seconds = STATEMENT_TIMEOUT + 1.5
    output = stack.shell(SLOW_QUERY.format(seconds=seconds, raised=STATEMENT_TIMEOUT * 4)).stdout
    results = dict(
        line.split(" ", 1) for line in output.splitlines() if line.split(" ", 1)[0] in {"PLAIN", "RAISED", "AFTER"}
    )
    figure(f"SET LOCAL statement_timeout ({stack.mode})", **results)
    assert results["PLAIN"].startswith("cancelled") and "QueryCanceled" in results["PLAIN"], output
    assert results["RAISED"].startswith("ok"), output
    assert results["AFTER"].startswith("cancelled"), output


def test_migrations_run_without_the_timeout(stack):
    """Straight to PostgreSQL (the release phase, `heroku run`), migrate waits for a lock longer than the
    timeout instead of failing the release."""
    lock = rs.TableLock(stack, table="django_migrations")
    holder = threading.Timer(STATEMENT_TIMEOUT + 2, lock.release)
    holder.start()
    started = time.monotonic()
    try:
        result = stack.manage("migrate", "--noinput", check=False)
    finally:
        holder.cancel()
        lock.release()
    elapsed = time.monotonic() - started
    figure(f"migrate behind a lock ({stack.mode})", seconds=elapsed, returncode=result.returncode)
    assert result.returncode == 0, result.stdout + result.stderr
    assert elapsed > STATEMENT_TIMEOUT + 1, "migrate did not wait for the lock?"


# --- a dyno starved of server connections -------------------------------------------------------------------


class OtherDynos:
    """`count` idle sessions of the app's role, straight to PostgreSQL, with the role's CONNECTION LIMIT
    set to `count`: what other dynos' PgBouncers holding their idle server connections leave this one."""

    def __init__(self, stack, count=2):
        self.stack, pg = stack, stack.postgres
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PGPASSWORD": pg.APP_PASSWORD, "PGCONNECT_TIMEOUT": "10"}
        self.sessions = []
        for _ in range(count):
            session = subprocess.Popen(
                ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.APP_USER, "-d", stack.database],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                **stack.user.popen_kwargs(),
            )
            session.stdin.write("\\echo connected\n")
            session.stdin.flush()
            assert session.stdout.readline().strip() == "connected"
            self.sessions.append(session)
        pg.sql(f"ALTER ROLE {pg.APP_USER} CONNECTION LIMIT {count}")

    def leave(self):
        self.stack.postgres.sql(f"ALTER ROLE {self.stack.postgres.APP_USER} CONNECTION LIMIT -1")
        for session in self.sessions:
            if session.poll() is None:
                session.stdin.close()
                try:
                    session.wait(10)
                except subprocess.TimeoutExpired:
                    session.kill()
                    session.wait(5)


def test_starved_dyno_answers_503_fast(stack):
    """PostgreSQL gives this dyno's PgBouncer no server connection at all. Pages answer 503 with Retry-After
    (the first within PgBouncer's query_wait_timeout, the rest within seconds), /health/ 503 within its
    deadline; once connections come free, 200 again within seconds, with nothing restarted."""
    stack.stop()  # the dyno's PgBouncer closes its server connections: this one starts with none
    wait = float(stack.env["PGBOUNCER_QUERY_WAIT_TIMEOUT"])
    others = OtherDynos(stack)
    try:
        web = stack.start(wait=False)
        web.wait_for(lambda: isinstance(stack.get("/health/", timeout=10)[0], int), "nginx and the app to answer", 60)
        pages = [stack.get("/") for _ in range(6)]
        health = stack.get("/health/")
    finally:
        others.leave()
    freed = time.monotonic()
    back = None
    while time.monotonic() - freed < 30:
        status = stack.get("/", timeout=20)[0]
        if status == 200:
            back = time.monotonic() - freed
            break
        time.sleep(0.25)
    figure(
        f"starved dyno ({stack.mode})",
        first_page=f"{pages[0][0]} in {pages[0][1]:.1f} s",
        later_pages=[f"{p[0]} in {p[1]:.1f} s" for p in pages[1:]],
        health=f"{health[0]} in {health[1]:.1f} s",
        query_wait_timeout_s=wait,
        page_200_after_freed_s=back if back is not None else -1.0,
    )
    for status, elapsed, headers, body in pages:
        assert status == 503, (status, elapsed, body[:300])
        assert headers.get("retry-after") == ["5"], headers
    assert pages[0][1] < wait + 3, f"the first page took {pages[0][1]:.1f} s"
    assert max(p[1] for p in pages[1:]) < 3.5, [round(p[1], 1) for p in pages]
    assert health[0] == 503 and health[1] < 5, health[:2]
    assert back is not None and back < 10, f"no 200 within 30 s of connections coming free ({back})"
    assert web.process.poll() is None


def test_idle_server_connections_are_given_back(stack):
    """A dyno that goes idle gives its server connections back to PostgreSQL within app.json's
    PGBOUNCER_SERVER_IDLE_TIMEOUT (the buildpack's 600 s left them to the busy dyno's rivals for 10 min)."""
    if stack.web is None or stack.web.process.poll() is not None:
        stack.start()
    idle_timeout = float(stack.env["PGBOUNCER_SERVER_IDLE_TIMEOUT"])
    assert idle_timeout <= 60, f"app.json's PGBOUNCER_SERVER_IDLE_TIMEOUT is {idle_timeout:.0f} s"
    app = stack.postgres.APP_USER

    def server_connections():
        query = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{stack.database}' AND usename = '{app}'"
        return int(stack.postgres.sql(query)[0][0])

    for _ in range(4):
        assert stack.get("/")[0] == 200
    assert server_connections() >= 1
    idle_since = time.monotonic()
    given_back = None
    while time.monotonic() - idle_since < idle_timeout + 30:
        if server_connections() == 0:
            given_back = time.monotonic() - idle_since
            break
        time.sleep(1)
    figure(
        f"idle server connections ({stack.mode})", given_back_s=given_back or -1.0, server_idle_timeout_s=idle_timeout
    )
    assert given_back is not None and given_back <= idle_timeout + 15, given_back
