"""Faults on the real stack: what the baked project does when things go wrong, and how fast.

Each WSGI server gets one stack (bake, build, release phase, then `bin/dyno web` against a throwaway
PostgreSQL 15, as an ordinary user; see realstack.py), and on it:

- no DJANGO_SECRET_KEY (unset, empty, blank): the dyno exits by itself, its output names the variable;
- PostgreSQL stopped under the running dyno: /health/ answers 503 within seconds, pages fail fast with a
  5xx, and once PostgreSQL is back /health/ answers 200 again without restarting anything;
- one WSGI worker SIGKILLed in the middle of a request: the server replaces it (gunicorn, uWSGI), or the
  whole dyno stops for Heroku to restart it (waitress, a single process);
- nginx's limits: an oversized body (413) and clients too slow with their headers or body (cut off by
  client_header_timeout / client_body_timeout) never reach Django;
- forwarded-header spoofing: what the app takes as HTTPS, with Heroku's router in front and without;
- PgBouncer's admin console: the /pgbouncer/ page is for staff only, and the console listens on the unix
  socket and 127.0.0.1:6000 only, never on $PORT.

Timings are printed (run with -s to see them); README.md's "Reliability" section quotes them.
Graceful restarts (SIGTERM to web and worker dynos) are tests/test_restarts.py's.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

import realstack as rs
from conftest import SERVERS, figure

SECRET_KEY = "faults-test-" + "k" * 60
HTTPS = {"X-Forwarded-Proto": "https", "Host": "localhost"}  # what Heroku's router adds to an HTTPS request
ROUTER_TIMEOUT = 30  # Heroku's router gives up on a request after 30 s (H12)
# Small nginx client timeouts, so that cutting off slow clients takes seconds here.
NGINX_CLIENT_TIMEOUT = 2
# nginx's lines in the dyno's output: the l2met access line, and the error log's "2026/01/02 03:04:05 [info]".
NGINX_LINE = re.compile(r"measure#nginx\.|\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[")


# --- fixtures -------------------------------------------------------------------------------------------


def start_postgres_again(server):
    """Start a cluster stopped with Postgres.stop() again, on the same port and data directory."""
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={server.port} -c unix_socket_directories={server.sockets} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c password_encryption=scram-sha-256"
    )
    rs.run_as(
        server.user,
        ["pg_ctl", "-D", server.data, "-l", server.base / "postgres.log", "-w", "-t", "60", "-o", options, "start"],
    )


class Stack:
    """One baked project on the real stack; running() (re)starts its web dyno when it is not running."""

    def __init__(self, server, project, env, port, user, postgres, workdir, database):
        self.server, self.project, self.env, self.port = server, project, env, port
        self.user, self.postgres, self.workdir, self.database = user, postgres, workdir, database
        self.web, self.starts = None, 0

    def running(self):
        if self.web is not None and self.web.process.poll() is None:
            return self.web
        self.stop()
        self.starts += 1
        self.web = rs.Dyno(
            self.project, "web", self.env, self.user, self.workdir / f"web-{self.starts}.log", self.postgres
        ).__enter__()
        self.web.wait_http(self.port)
        return self.web

    def stop(self):
        if self.web is not None:
            record = self.web.stop()
            self.web = None
            return record
        return None

    def get(self, path, headers=None, timeout=45):
        """(status or exception name, seconds, headers, body) of GET path through nginx."""
        started = time.monotonic()
        try:
            status, received, body = rs.http_request(
                self.port, "GET", path, {**HTTPS, **(headers or {})}, timeout=timeout
            )
        except OSError as error:
            status, received, body = type(error).__name__, {}, b""
        return status, time.monotonic() - started, received, body

    def django_saw(self, marker):
        """Whether the app (Django or the WSGI server) logged a line about a request whose path has `marker`:
        any line of the dyno's output but nginx's access and error lines."""
        return any(marker in line for line in self.web.output.splitlines() if not NGINX_LINE.match(line))

    def access_lines(self, marker):
        return [line for line in self.web.output.splitlines() if line.startswith("measure#nginx.") and marker in line]


@pytest.fixture(scope="module", params=SERVERS)
def stack(request, bake_once, baked_venv, user, workdir, postgres):
    """Bake, build, release phase; the web dyno starts on first use. One server at a time."""
    server = request.param
    name = f"faults_{server}"
    project = rs.prepare_project(bake_once(wsgi_server=server), workdir / name, user, baked_venv)
    database = f"app_{name}"
    url = postgres.create_database(database)
    app_json = json.loads((project / "app.json").read_text())
    config_vars = {key: spec["value"] for key, spec in app_json["env"].items() if "value" in spec}
    port = rs.free_port()
    env = rs.base_env(
        user,
        baked_venv,
        DJANGO_SECRET_KEY=SECRET_KEY,
        DATABASE_URL=url,
        PORT=port,
        NGINX_CLIENT_HEADER_TIMEOUT=NGINX_CLIENT_TIMEOUT,
        NGINX_CLIENT_BODY_TIMEOUT=NGINX_CLIENT_TIMEOUT,
        **config_vars,
    )
    s = Stack(server, project, env, port, user, postgres, workdir / name, database)
    with rs.Dyno(project, "release", env, user, s.workdir / "release.log", postgres) as release:
        release.wait_for(lambda: release.process.poll() is not None, "the release phase to finish", timeout=180)
    assert release.process.returncode == 0, f"release phase failed:\n{release.output[-4000:]}"
    yield s
    s.stop()


# --- a missing secret key -------------------------------------------------------------------------------

# One spelling of "missing" per server; the settings treat these and an unset or empty key alike (tested in
# the bake's own tests). Unset, bin/dyno generates one, as app.json's "generator": "secret" does for a
# Deploy Button app; set, even empty or blank, it is passed on as it is.
SECRET_VARIANTS = {"gunicorn": " ", "uwsgi": "\t", "waitress": "   "}


def test_no_secret_key_the_dyno_refuses_to_start(stack):
    """On a dyno, no DJANGO_SECRET_KEY means no app: the dyno exits by itself, naming the variable, and
    nothing is left running (Heroku then shows the crash; no default key ever serves a request)."""
    stack.stop()
    variant = SECRET_VARIANTS[stack.server]
    env = {key: value for key, value in stack.env.items() if key != "DJANGO_SECRET_KEY"}
    env["DJANGO_SECRET_KEY"] = variant
    log = stack.workdir / "no-secret.log"
    with rs.Dyno(stack.project, "web", env, stack.user, log, stack.postgres) as dyno:
        started = time.monotonic()
        answered = []

        def exited():
            try:  # whatever nginx may answer meanwhile must not be the app serving a page
                answered.append(rs.http_request(stack.port, "GET", "/health/", HTTPS, timeout=2)[0])
            except OSError:
                pass
            return dyno.process.poll() is not None

        dyno.wait_for(exited, "bin/dyno to exit without DJANGO_SECRET_KEY", timeout=60, interval=0.5)
        elapsed = time.monotonic() - started
        record = dyno.stop()
    figure(f"no secret key ({stack.server}, {variant!r})", exit_after_s=elapsed, status=record["returncode"])
    assert record["returncode"] not in (0, None), dyno.output[-3000:]
    assert "DJANGO_SECRET_KEY is not set" in dyno.output, dyno.output[-3000:]
    assert "app exited" in dyno.output
    assert 200 not in answered, f"the app answered 200 without a secret key: {answered}"
    assert not record["leftovers"], f"processes left behind: {record['leftovers']}"


# --- PostgreSQL stopped under the running dyno -----------------------------------------------------------


def health_timeout(stack):
    """The /health/ view's own deadline, HEALTH_TIMEOUT in heroku_runtime/views.py."""
    return float(
        re.search(r"^HEALTH_TIMEOUT = ([\d.]+)", (stack.project / "heroku_runtime" / "views.py").read_text(), re.M)[1]
    )


def pgbouncer_setting(stack, name):
    result = rs.run_as(
        stack.user,
        ["psql", "-X", "-At", "-h", "/tmp", "-p", "6000", "-U", "pgbouncer", "pgbouncer", "-c", "SHOW CONFIG"],
    )
    values = {line.split("|")[0]: line.split("|")[1] for line in result.stdout.splitlines() if "|" in line}
    return float(values[name])


def dyno_processes(web):
    """bin/dyno's children by role: {'app': pid, 'pgbouncer': pid, 'nginx': pid, 'tail': pid}."""
    roles = {}
    for pid, command in web.children().items():
        program = os.path.basename(command.split()[0]).rstrip(":") if command else "?"
        roles[program if program in ("tail", "pgbouncer", "nginx") else "app"] = pid
    return roles


def test_database_outage(stack):
    """PostgreSQL stops under a running web dyno, then comes back.

    While it is down: /health/ answers 503 within HEALTH_TIMEOUT (PgBouncer would keep its query waiting
    for query_wait_timeout), pages answer 500 at once (PgBouncer fails clients fast once a connection
    attempt has failed). Once it is back: /health/ answers 200 within 5 s, nothing restarted. How soon is
    set by PgBouncer's server_login_retry: after a failed attempt it does not try the server again before
    that. Its default is 15 s and the buildpack has no variable for it, so the app sets it to 1 s through
    the admin console at start (heroku_runtime/pgbouncer.py, shorten_login_retry).
    """
    web = stack.running()
    for _ in range(4):  # every worker (or thread) holds a connection to PgBouncer, as in steady traffic
        assert stack.get("/")[0] == 200
    before = dyno_processes(web)
    retry = pgbouncer_setting(stack, "server_login_retry")
    assert retry == 1, f"the app did not shorten PgBouncer's server_login_retry (it is {retry} s)"

    stack.postgres.stop()
    stopped = time.monotonic()
    try:
        health = stack.get("/health/")
        pages = [stack.get("/") for _ in range(3)]
        health_again = stack.get("/health/")
    finally:
        down_for = time.monotonic() - stopped
        start_postgres_again(stack.postgres)
    back = time.monotonic()
    recovered = None
    while time.monotonic() - back < retry + 15:
        status, elapsed, _, _ = stack.get("/health/")
        if status == 200:
            recovered = time.monotonic() - back
            break
        time.sleep(0.5)
    after = dyno_processes(web)
    page_after = stack.get("/")
    figure(
        f"database outage ({stack.server})",
        health_s=health[1],
        health_status=health[0],
        pages_s=max(page[1] for page in pages),
        pages_status=sorted({page[0] for page in pages}),
        health_again_s=health_again[1],
        down_for_s=down_for,
        recovered_after_s=recovered if recovered is not None else -1.0,
        server_login_retry_s=retry,
    )

    assert health[0] == 503 and json.loads(health[3])["status"] == "unavailable", health
    assert health[1] < health_timeout(stack) + 2, f"/health/ took {health[1]:.1f} s"
    for status, elapsed, _, _ in pages:
        assert isinstance(status, int) and 500 <= status < 600, pages
        assert elapsed < 3, f"a page took {elapsed:.1f} s to fail"
    assert health_again[0] == 503 and health_again[1] < health_timeout(stack) + 2, health_again
    assert recovered is not None, f"/health/ did not answer 200 within {retry + 15:.0f} s of PostgreSQL's return"
    assert recovered <= 5, f"/health/ took {recovered:.1f} s after PostgreSQL's return"
    assert page_after[0] == 200, page_after[:2]
    assert web.process.poll() is None, "bin/dyno exited"
    assert {role: after.get(role) for role in before} == before, (
        f"a process of the dyno was restarted: {before} -> {after}"
    )


def test_first_request_of_an_outage_is_bounded(stack):
    """The first query after PostgreSQL stops waits in PgBouncer's queue (no attempt has failed yet, so
    PgBouncer does not fail it fast) until query_wait_timeout: the page must still fail before the router
    gives up, and /health/ meanwhile answers 503 within its own deadline."""
    web = stack.running()
    for _ in range(4):
        assert stack.get("/")[0] == 200
    wait_timeout = pgbouncer_setting(stack, "query_wait_timeout")
    first = {}
    stack.postgres.stop()
    try:
        page = threading.Thread(target=lambda: first.update(result=stack.get("/", timeout=ROUTER_TIMEOUT + 15)))
        page.start()
        time.sleep(0.5)  # the page's query is queued and PgBouncer's first connection attempt has failed
        health = stack.get("/health/")
        page.join(ROUTER_TIMEOUT + 20)
    finally:
        start_postgres_again(stack.postgres)
    status, elapsed, _, _ = first.get("result", ("no answer", float(ROUTER_TIMEOUT + 20), {}, b""))
    figure(
        f"first page of an outage ({stack.server})",
        status=status,
        seconds=elapsed,
        query_wait_timeout_s=wait_timeout,
        health_status=health[0],
        health_s=health[1],
    )
    assert isinstance(status, int) and 500 <= status < 600, first
    assert elapsed < ROUTER_TIMEOUT, f"the first page of the outage took {elapsed:.1f} s (router: {ROUTER_TIMEOUT} s)"
    assert elapsed < wait_timeout + 3, f"the page outlived PgBouncer's query_wait_timeout ({wait_timeout:.0f} s)"
    assert health[0] == 503 and health[1] < health_timeout(stack) + 2, health[:2]
    # Back to normal without a restart.
    web.wait_http(stack.port, timeout=60)
    assert web.process.poll() is None


def test_app_json_bounds_the_pgbouncer_queue_wait(bake_once):
    """The buildpack's query_wait_timeout (120 s) outlives the router's 30 s: app.json must lower it, above
    reserve_pool_timeout (5 s) so that the reserve pool still gets used under load."""
    app_json = json.loads((bake_once() / "app.json").read_text())
    spec = app_json["env"].get("PGBOUNCER_QUERY_WAIT_TIMEOUT")
    assert spec is not None, "app.json does not set PGBOUNCER_QUERY_WAIT_TIMEOUT"
    assert 5 < float(spec["value"]) < ROUTER_TIMEOUT - 5, spec


# --- a WSGI worker killed in the middle of a request ------------------------------------------------------


def socket_inodes(pid):
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            match = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd)) if fd.exists() else None
            if match:
                inodes.add(match[1])
    except OSError:
        pass
    return inodes


def serving_pids(candidates):
    """Which of `candidates` holds an accepted connection on /tmp/nginx.socket, i.e. is serving a request."""
    accepted = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7] == "/tmp/nginx.socket" and fields[5] == "03":  # 03: connected
            accepted.add(fields[6])
    return [pid for pid in candidates if socket_inodes(pid) & accepted]


def descendants(pid):
    table = rs.process_table()
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, *_rest) in table.items():
            if ppid == parent:
                found.append(child)
                frontier.append(child)
    return found


def test_wsgi_worker_killed_mid_request(stack):
    """SIGKILL to the process serving a request (a stuck worker, the OOM killer). gunicorn and uWSGI: the
    request gets 502 from nginx at once, the master replaces the worker, the next requests succeed, the
    dyno goes on. waitress is one process: the dyno stops (bin/start-nginx exits when the app does) and
    Heroku restarts it."""
    web = stack.running()
    app = web.app_pid()
    workers_before = set(descendants(app))
    lock = rs.TableLock(stack)
    result = {}
    try:
        request = threading.Thread(target=lambda: result.update(page=stack.get("/", timeout=40)))
        request.start()
        web.wait_for(lock.waiters, "GET / to wait for the table lock", timeout=15)
        candidates = [app] if stack.server == "waitress" else sorted(workers_before)
        busy = web.wait_for(lambda: serving_pids(candidates), "the process serving GET /", timeout=10)
        assert len(busy) == 1, busy
        killed_at = time.monotonic()
        os.kill(busy[0], signal.SIGKILL)
        request.join(40)
    finally:
        lock.release()
    status, in_flight_s, _, _ = result["page"]

    if stack.server == "waitress":
        web.wait_for(lambda: web.process.poll() is not None, "bin/dyno to stop after waitress died", timeout=35)
        stopped_after = time.monotonic() - killed_at
        record = stack.stop()
        figure(
            "waitress killed mid-request",
            request_status=status,
            dyno_stopped_after_s=stopped_after,
            exit_status=record["returncode"],
        )
        assert status == 502 or not isinstance(status, int), result
        assert record["returncode"] not in (0, None) and "app exited" in web.output, web.output[-3000:]
        assert not record["leftovers"], record["leftovers"]
        return

    # The master forks a replacement (gunicorn at once on SIGCHLD, uWSGI on its next cycle); meanwhile the
    # other worker serves. Time until the worker count is back, and whether requests fail meanwhile.
    statuses, started, replaced = [], time.monotonic(), None
    while time.monotonic() - started < 20 and (replaced is None or len(statuses) < 10):
        statuses.append(stack.get("/", timeout=15)[0])
        workers_after = set(descendants(app))
        if replaced is None and len(workers_after) == len(workers_before) and busy[0] not in workers_after:
            replaced = time.monotonic() - started
        time.sleep(0.1)
    figure(
        f"{stack.server} worker killed mid-request",
        request_status=status,
        request_s=in_flight_s,
        replaced_after_s=replaced if replaced is not None else -1.0,
        requests_meanwhile=len(statuses),
        failed=sum(1 for s in statuses if s != 200),
    )
    assert status == 502, result
    assert replaced is not None, f"worker {busy[0]} was not replaced: {workers_before} -> {workers_after}"
    assert statuses == [200] * len(statuses), statuses
    assert web.app_pid() == app and web.process.poll() is None, "the dyno restarted"


# --- nginx's limits: requests that never reach Django -------------------------------------------------------


def raw_exchange(port, data, then_wait=20):
    """Send `data`, then read until the peer closes: (bytes received, seconds until the first byte came or
    the connection closed, whichever was first)."""
    started, answered = time.monotonic(), None
    with socket.create_connection(("127.0.0.1", port), timeout=then_wait) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the peer answered and closed before taking it all: read what it said
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            answered = answered or time.monotonic()
            if not chunk:
                break
            received += chunk
    return received, (answered or time.monotonic()) - started


def test_oversized_body_never_reaches_django(stack):
    """nginx answers 413 from the Content-Length alone (client_max_body_size, 10m by default) and passes
    nothing on; a small body to the same kind of URL does reach Django (which logs its 404)."""
    web = stack.running()
    big, small = f"/faults-big-{uuid.uuid4().hex}/", f"/faults-small-{uuid.uuid4().hex}/"
    request = (
        f"POST {big} HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {10 * 1024 * 1024 + 1}\r\n\r\n"
    ).encode()
    received, seconds = raw_exchange(stack.port, request + b"x" * 65536)
    status, _, _ = rs.http_request(stack.port, "POST", small, {**HTTPS, "Content-Type": "text/plain"}, b"small body")
    assert status == 404
    web.wait_for(lambda: stack.django_saw(small), "Django's log line for the small request", timeout=15)
    web.wait_for(lambda: stack.access_lines(big), "nginx's access line for the big request", timeout=15)
    figure(f"oversized body ({stack.server})", answered_s=seconds)
    assert received.startswith(b"HTTP/1.1 413"), received[:200]
    assert "measure#nginx.upstream=- " in stack.access_lines(big)[0], stack.access_lines(big)
    assert not stack.django_saw(big), "the oversized request reached the app"


def test_slow_clients_are_cut_off_by_nginx(stack):
    """A client that stops halfway through its headers, or through its body, is dropped by nginx after
    NGINX_CLIENT_HEADER_TIMEOUT / NGINX_CLIENT_BODY_TIMEOUT and none of it reaches Django."""
    web = stack.running()
    headers_path, body_path = f"/faults-slow-headers-{uuid.uuid4().hex}/", f"/faults-slow-body-{uuid.uuid4().hex}/"
    partial_headers = f"GET {headers_path} HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\n".encode()
    partial_body = (
        f"POST {body_path} HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\n"
        "Content-Type: text/plain\r\nContent-Length: 1000\r\n\r\n"
    ).encode() + b"only part of it"
    cut = {}
    for name, data in (("headers", partial_headers), ("body", partial_body)):
        cut[name] = raw_exchange(stack.port, data, then_wait=NGINX_CLIENT_TIMEOUT + 15)
    time.sleep(1)  # any late log line from the app would show by now
    figure(
        f"slow clients ({stack.server})",
        headers_cut_after_s=cut["headers"][1],
        body_cut_after_s=cut["body"][1],
        answers=[received[:12].decode(errors="replace") for received, _ in cut.values()],
    )
    for name, (received, seconds) in cut.items():
        assert NGINX_CLIENT_TIMEOUT - 0.5 < seconds < NGINX_CLIENT_TIMEOUT + 5, (
            f"slow {name}: cut after {seconds:.1f} s"
        )
        assert not received or received.startswith(b"HTTP/1.1 408"), received[:200]
    assert not stack.django_saw(headers_path) and not stack.django_saw(body_path), "a slow request reached the app"
    # nginx writes its access log once a second: the cut-off body's line, and the headers' before it.
    body_lines = web.wait_for(lambda: stack.access_lines(body_path), "nginx's access line for the cut-off body", 15)
    assert body_lines and "status=408" in body_lines[0] and "measure#nginx.upstream=- " in body_lines[0], body_lines
    for line in stack.access_lines(headers_path):  # nginx may log the cut-off request; never as proxied
        assert "measure#nginx.upstream=- " in line, line
    assert web.process.poll() is None


# --- forwarded headers -----------------------------------------------------------------------------------


def served_as_https(response):
    """Whether Django took the request for HTTPS: it answered the page (no redirect to https://) with HSTS."""
    status, _, headers, _ = response
    return status == 200 and "strict-transport-security" in headers


def test_forwarded_header_spoofing(stack):
    """Heroku's router overwrites X-Forwarded-Proto with the scheme the client really used, and the settings
    trust only that header (SECURE_PROXY_SSL_HEADER, on a dyno only). A plain-HTTP request that arrives the
    way the router passes it on (X-Forwarded-Proto: http) stays plain HTTP whatever else the client adds:
    X-Forwarded-Ssl, X-Forwarded-Protocol and X-Forwarded-Scheme are also honoured by some servers
    (gunicorn: secure_scheme_headers), Forwarded by others."""
    stack.running()
    router_http = {"X-Forwarded-Proto": "http", "Host": "localhost"}
    spoofs = [
        {"X-Forwarded-Ssl": "on"},
        {"X-Forwarded-Protocol": "ssl"},
        {"X-Forwarded-Scheme": "https"},
        {"Forwarded": "proto=https"},
        {"X-Url-Scheme": "https", "Front-End-Https": "on"},
    ]
    plain = stack.get("/", {**router_http})
    assert plain[0] == 301 and plain[2]["location"] == ["https://localhost/"], plain[:3]
    results = {}
    for spoof in spoofs:
        response = stack.get("/", {**router_http, **spoof})
        results[json.dumps(spoof)] = response[0]
        assert not served_as_https(response), f"{spoof} turned a plain-HTTP request into HTTPS: {response[:3]}"
        assert response[0] in (301, 400), (spoof, response[:3])  # gunicorn refuses contradictory scheme headers
        if response[0] == 301:
            assert response[2]["location"] == ["https://localhost/"], response[:3]
    # Behind the router X-Forwarded-Proto is the router's; nginx passes it on as it came (so a client that
    # could reach nginx directly, which on Heroku none can, could claim HTTPS: see the baked docs/reliability.md).
    assert served_as_https(stack.get("/", HTTPS))
    figure(f"forwarded headers ({stack.server})", spoofed_statuses=results)


def test_x_forwarded_for_is_appended_and_never_trusted(stack):
    """nginx appends the address it saw to whatever X-Forwarded-For came in (Heroku's router appends the
    client's), so the last entry is the trustworthy one; nothing in the project reads the header."""
    web = stack.running()
    request_id = str(uuid.uuid4())
    status = stack.get("/health/", {"X-Forwarded-For": "203.0.113.7", "X-Request-Id": request_id})[0]
    assert status == 200
    marker = f'request_id="{request_id}"'
    line = web.wait_for(lambda: next(iter(stack.access_lines(marker)), None), "the access line", 15)
    assert 'forwarded_for="203.0.113.7"' in line and 'remote_addr="127.0.0.1"' in line, line
    readers = []
    for path in stack.project.rglob("*.py"):
        if ".venv" not in path.parts and re.search(r"X_FORWARDED_FOR|REMOTE_ADDR", path.read_text()):
            readers.append(str(path.relative_to(stack.project)))
    assert not readers, f"these files read the client address from headers: {readers}"


def test_proxy_header_trusted_only_on_a_dyno(bake_once, venv_python):
    """Off Heroku (no DYNO, or CI set) the settings do not trust X-Forwarded-Proto at all."""
    project = bake_once()
    script = "import django; django.setup(); from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"
    values = {}
    for name, extra in (("dyno", {"DYNO": "web.1"}), ("local", {}), ("ci", {"DYNO": "web.1", "CI": "true"})):
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "DJANGO_SETTINGS_MODULE": f"{project.name}.settings",
            **extra,
        }
        result = subprocess.run([venv_python, "-c", script], env=env, cwd=project, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        values[name] = result.stdout.strip()
    assert values == {"dyno": "('HTTP_X_FORWARDED_PROTO', 'https')", "local": "None", "ci": "None"}, values


# --- PgBouncer's admin console -----------------------------------------------------------------------------

SESSIONS_SCRIPT = r"""
import json
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore

keys = {}
for name, staff in (("faults-member", False), ("faults-staff", True)):
    user, _ = get_user_model().objects.update_or_create(username=name, defaults={"is_staff": staff, "is_active": True})
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    keys[name] = session.session_key
print("KEYS " + json.dumps(keys))
"""


def test_pgbouncer_console_is_not_reachable_from_the_web(stack, baked_venv):
    """/pgbouncer/ (SHOW STATS, SHOW POOLS) is for staff only: anonymous and non-staff users are sent to the
    login page. The console itself listens on the unix socket and 127.0.0.1:6000 only, and over TCP not even
    the app's own database credentials open it."""
    web = stack.running()
    result = web.run_in_dyno([f"{baked_venv}/bin/python", "manage.py", "shell", "-c", SESSIONS_SCRIPT])
    keys = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("KEYS "))[5:])
    login = "/admin/login/?next=/pgbouncer/"
    anonymous = stack.get("/pgbouncer/")
    member = stack.get("/pgbouncer/", {"Cookie": f"sessionid={keys['faults-member']}"})
    staff = stack.get("/pgbouncer/", {"Cookie": f"sessionid={keys['faults-staff']}"})
    # The page breaks column names at underscores (total_<wbr>query_<wbr>count) so they fit a phone.
    query_count = b"total_<wbr>query_<wbr>count"
    for response in (anonymous, member):
        assert response[0] == 302 and response[2]["location"] == [login], response[:3]
        assert query_count not in response[3] and b"PgBouncer on this dyno" not in response[3]
    assert staff[0] == 200 and b"SHOW STATS" in staff[3] and query_count in staff[3], staff[:2]

    # $PORT is nginx speaking HTTP: a PostgreSQL startup packet for the console gets an HTTP error back.
    startup = b"user\0pgbouncer\0database\0pgbouncer\0\0"
    packet = (len(startup) + 8).to_bytes(4, "big") + (196608).to_bytes(4, "big") + startup
    received, _ = raw_exchange(stack.port, packet, then_wait=10)
    assert received.startswith(b"HTTP/1.1 400"), received[:100]
    # PgBouncer's listening TCP sockets: 127.0.0.1:6000 only.
    listening = listening_addresses(dyno_processes(web)["pgbouncer"])
    assert listening == {("127.0.0.1", 6000)}, listening
    # Over TCP the console wants a user it knows with a password: neither "pgbouncer" nor the app's role.
    app_url = web.app_environ()["DATABASE_URL"]
    for dsn in (
        "host=127.0.0.1 port=6000 dbname=pgbouncer user=pgbouncer connect_timeout=5",
        re.sub(r"/db1$", "/pgbouncer", app_url),
    ):
        refused = rs.run_as(stack.user, ["psql", "-X", "-w", "-At", dsn, "-c", "SHOW STATS"], check=False, timeout=30)
        assert refused.returncode != 0 and "total_query_count" not in refused.stdout, (
            dsn,
            refused.stdout,
            refused.stderr,
        )


def listening_addresses(pid):
    """{(address, port)} of the TCP sockets `pid` listens on (IPv4 and IPv6), from /proc."""
    inodes, found = socket_inodes(pid), set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                if table == "tcp":
                    host = socket.inet_ntoa(bytes.fromhex(address)[::-1])
                else:
                    host = socket.inet_ntop(
                        socket.AF_INET6, b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, 32, 8))
                    )
                found.add((host, int(port, 16)))
    return found
