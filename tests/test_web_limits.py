"""The web dyno's front door on the real stack: a burst of connections, and what nginx itself answers.

A web dyno of each server in turn (`bin/dyno web`: nginx, PgBouncer, gunicorn, uWSGI or waitress, as an
ordinary user against a throwaway PostgreSQL, with app.json's config vars; see realstack.py), and on it:

- 1,000 concurrent connections through nginx, over loopback: most send requests back to back on
  keep-alive connections (a page, a static file, /health/), some read slowly, some stay idle between a
  first and a last request. No connection may be reset or cut short, and the idle ones must still be open
  at the end (nginx closes idle keep-alive connections when it runs out of worker_connections);
- 1,000 connections all busy for 10 s (a page 60%, the static file 30%, /health/ 10%) and 10 slow readers:
  every response a 200, none later than 15 s (half the router's 30 s) nor far later than the median; on
  waitress, the connections it holds from nginx peak just under its connection_limit, never above. The figures
  per server (p50, p99) are in CONTRIBUTING.md ("Measured figures"); benchmarks/burst.py runs this test for
  them;
- the request id in nginx's l2met access line is quoted, so a client can't add its own key=value pairs;
- nginx's own error responses (400, 413) carry X-Content-Type-Options and, over HTTPS, the same
  Strict-Transport-Security as Django's responses, while Django's responses carry each header once.

The figures go to the run's "figures" summary and are quoted in the baked README's "Reliability" section.
"""

import asyncio
import collections
import itertools
import json
import os
import re
import resource
import shlex
import socket
import subprocess
import time
import uuid

import pytest

import realstack as rs
from conftest import SERVERS, figure

SECRET_KEY = "web-limits-" + "k" * 60
HTTPS = {"X-Forwarded-Proto": "https", "Host": "localhost"}
CONNECTIONS = 1000
SLOW_READERS, BUSY = 10, 100  # the rest make a request at the start and another at the end
LOAD_SECONDS = 8
RESPONSE_TIMEOUT = 60  # per response: liveness only (nginx gives the app 30 s, proxy_read_timeout)


# The burst benchmark (benchmarks/burst.py) runs each of BURST_SERVERS ("server" or "server:VAR=value,...",
# separated by spaces) BURST_ROUNDS times in one session (pytest groups each server's rounds together).
DYNOS = os.environ.get("BURST_SERVERS", " ".join(SERVERS)).split()
ROUNDS = int(os.environ.get("BURST_ROUNDS", "1"))
STARTS = itertools.count(1)


@pytest.fixture(scope="module", params=DYNOS * ROUNDS)
def web(request, bake_once, baked_venv, user, workdir, postgres):
    """A web dyno of each server in turn (the module's namespace has one /tmp/nginx.socket)."""
    server, _, settings = request.param.partition(":")
    name = f"web_limits_{server}_{next(STARTS)}"
    project = rs.prepare_project(bake_once(wsgi_server=server), workdir / name, user, baked_venv)
    url = postgres.create_database(name)
    app_json = json.loads((project / "app.json").read_text())
    config_vars = {key: spec["value"] for key, spec in app_json["env"].items() if "value" in spec}
    port = rs.free_port()
    env = rs.base_env(user, baked_venv, DJANGO_SECRET_KEY=SECRET_KEY, DATABASE_URL=url, PORT=port, **config_vars)
    env.update(setting.split("=", 1) for setting in settings.split(",") if setting)
    rs.run_as(user, [f"{baked_venv}/bin/python", "manage.py", "migrate", "--noinput"], env=env, cwd=project)
    # The client below holds 1,000 sockets, and bin/dyno (so nginx) inherits this process's limits: raise
    # the soft limit to the hard one, as a dyno's processes may.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    with rs.Dyno(project, "web", env, user, workdir / f"{name}.log", postgres) as dyno:
        dyno.wait_http(port)
        dyno.app_server = request.param
        yield dyno, project, port
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- 1,000 connections ------------------------------------------------------------------------------------


async def read_response(reader, slow=False):
    """(status, body length) of one HTTP/1.1 response; raises on a reset or a cut-short response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        remaining, received = int(headers["content-length"]), 0
        while remaining:
            chunk = await reader.read(min(remaining, 1024 if slow else 65536))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(chunk)
            received += len(chunk)
            if slow:
                await asyncio.sleep(0.2)
        return status, received
    if headers.get("transfer-encoding") == "chunked":
        received = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            received += len(await reader.readexactly(size + 2)) - 2
            if size == 0:
                return status, received
    raise AssertionError(f"a response with neither Content-Length nor chunked encoding: {head!r}")


async def connection(port, role, paths, start, load, stats, latencies=None):
    """One client connection. Every one sends its first request at the same moment (`start`), so that
    nginx holds 1,000 client connections and as many to the app at once; then "busy" ones go on sending
    requests back to back until the load is over, and "idle" ones wait on their open keep-alive
    connection for it to be over and send one more request."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as error:
        stats[f"connect {type(error).__name__}"] += 1
        return
    stats["opened"] += 1
    await start.wait()
    sent = 0
    try:
        while True:
            path = paths[sent % len(paths)]
            request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\n\r\n"
            sent_at = time.monotonic()
            writer.write(request.encode())
            await writer.drain()
            status, _length = await asyncio.wait_for(read_response(reader, slow=role == "slow"), RESPONSE_TIMEOUT)
            stats[status] += 1
            if latencies is not None and role != "slow":  # a slow reader's wait is its own reading
                latencies.append(time.monotonic() - sent_at)
            sent += 1
            if role == "busy" and not load.is_set():
                continue
            if role == "idle" and sent == 1:
                await load.wait()
                await asyncio.sleep(0.5)
                continue
            break
        stats[f"completed {role}"] += 1
    except (ConnectionResetError, BrokenPipeError):
        stats["reset"] += 1
    except asyncio.IncompleteReadError:
        stats["cut short"] += 1
    except TimeoutError:
        stats["no response"] += 1
    except OSError as error:
        stats[f"error {type(error).__name__}"] += 1
    finally:
        writer.close()


async def burst(port, static, pages):
    """{outcome: count} of CONNECTIONS connections: SLOW_READERS read a page slowly, BUSY send requests
    back to back for LOAD_SECONDS, the rest make a request at the start and one at the end."""
    roles = ["slow"] * SLOW_READERS + ["busy"] * BUSY
    roles += ["idle"] * (CONNECTIONS - len(roles))
    # Mostly the static file (WhiteNoise: cheap), every 20th a page or /health/ (the database).
    clients = [(role, pages if role == "slow" or i % 20 == 0 else [static]) for i, role in enumerate(roles)]
    stats, _latencies = await load(port, clients, LOAD_SECONDS)
    return stats


async def load(port, clients, seconds):
    """({outcome: count}, [seconds per response]) of one connection per (role, paths) in `clients`, all
    sending their first request at once; "busy" ones go on for `seconds`."""
    stats, latencies = collections.Counter(), []
    start, load_over = asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.ensure_future(connection(port, role, paths, start, load_over, stats, latencies))
        for role, paths in clients
    ]
    opening = time.monotonic()
    while stats["opened"] + sum(v for k, v in stats.items() if str(k).startswith("connect ")) < len(clients):
        if time.monotonic() - opening > 60:
            break
        await asyncio.sleep(0.05)
    start.set()
    await asyncio.sleep(seconds)
    load_over.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 3 * RESPONSE_TIMEOUT)
    return stats, latencies


def static_path(project):
    manifest = json.loads((project / "staticfiles" / "staticfiles.json").read_text())
    return "/static/" + manifest["paths"]["site.css"]


def test_a_thousand_connections_none_reset(web):
    dyno, project, port = web
    started = time.monotonic()
    stats = asyncio.run(burst(port, static_path(project), ["/", "/health/"]))
    elapsed = time.monotonic() - started
    warnings = [line for line in dyno.output.splitlines() if "worker_connections are not enough" in line]
    responses = sum(v for k, v in stats.items() if isinstance(k, int))
    figure(
        "1,000 connections through nginx",
        seconds=elapsed,
        responses=responses,
        statuses={k: v for k, v in stats.items() if isinstance(k, int)},
        resets=stats["reset"],
        cut_short=stats["cut short"],
        no_response=stats["no response"],
        completed={k: v for k, v in stats.items() if str(k).startswith("completed")},
        nginx_warnings=len(warnings),
    )
    assert stats["opened"] == CONNECTIONS, stats
    assert stats["reset"] == 0 and stats["cut short"] == 0 and stats["no response"] == 0, stats
    assert not [k for k in stats if str(k).startswith(("error", "connect"))], stats
    assert set(k for k in stats if isinstance(k, int)) == {200}, stats
    assert stats["completed slow"] == SLOW_READERS and stats["completed busy"] == BUSY, stats
    assert stats["completed idle"] == CONNECTIONS - SLOW_READERS - BUSY, stats
    assert not warnings, warnings[:3]
    assert dyno.process.poll() is None


# Every connection busy: GET / (a query) 60%, the static file 30%, /health/ 10%, back to back on keep-alive
# connections, plus slow readers. The benchmark (benchmarks/burst.py) runs it for 20 s; the suite for 10.
BUSY_CONNECTIONS = 1000
BUSY_SECONDS = float(os.environ.get("BURST_SECONDS", "10"))
# No request may wait anywhere near the router's 30 s (H12): half of it, whatever the machine's load. And
# none may wait far longer than the others: a saturated server's clients all wait about the same
# (connections / requests a second), while requests starved behind others (connections waiting in a
# backlog behind kept ones: benchmarks/README.md) waited 12 to 20 s with the median at 0.3 s. Fair runs on a
# loaded machine: slowest 1.3 to 2.8 times the median.
WAIT_BOUND = 15
FAIRNESS = 4


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def sampled(work, pid):
    """work's result + [(open fds of pid, connections waiting in the socket's accept queue, connections pid
    has accepted from nginx)] every 0.25 s. ss lists an accepted unix connection with the socket's path as
    its local address, and a waiting one not at all."""
    samples = []
    task = asyncio.ensure_future(work)
    while not task.done():
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        listening = subprocess.run(["ss", "-xlH"], capture_output=True, text=True).stdout
        waiting = [int(line.split()[2]) for line in listening.splitlines() if "/tmp/nginx.socket" in line]
        connected = subprocess.run(["ss", "-xpH", "src", "/tmp/nginx.socket"], capture_output=True, text=True).stdout
        accepted = sum(f"pid={pid}," in line for line in connected.splitlines())
        samples.append((fds, sum(waiting), accepted))
        await asyncio.sleep(0.25)
    return (*task.result(), samples)


def waitress_connection_limit(dyno, project):
    """WAITRESS_CONNECTION_LIMIT as this dyno's config sets it, else the default config/serve_waitress.py gives."""
    if "WAITRESS_CONNECTION_LIMIT" in dyno.env:
        return int(dyno.env["WAITRESS_CONNECTION_LIMIT"])
    source = (project / "config" / "serve_waitress.py").read_text()
    return int(re.search(r'"WAITRESS_CONNECTION_LIMIT", "(\d+)"', source)[1])


def test_a_thousand_busy_connections_answered_in_bounded_time(web):
    dyno, project, port = web
    static = static_path(project)
    mix = ["/", static, "/", "/health/", "/", static, "/", "/", static, "/"]
    clients = [("slow", ["/"])] * SLOW_READERS
    clients += [("busy", mix[i % len(mix) :] + mix[: i % len(mix)]) for i in range(BUSY_CONNECTIONS)]
    started = time.monotonic()
    app = dyno.app_pid()
    stats, latencies, queue = asyncio.run(sampled(load(port, clients, BUSY_SECONDS), app))
    elapsed = time.monotonic() - started
    statuses = {k: v for k, v in stats.items() if isinstance(k, int)}
    figure(
        f"{BUSY_CONNECTIONS:,} busy connections for {BUSY_SECONDS:g} s through nginx, {dyno.app_server}",
        seconds=elapsed,
        responses=sum(statuses.values()),
        statuses=statuses,
        p50_ms=percentile(latencies, 0.5) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        max_ms=max(latencies, default=0) * 1000,
        app_fds_max=max(fds for fds, _, _ in queue),
        accept_queue_max=max(q for _, q, _ in queue),
        app_connections_max=max(accepted for _, _, accepted in queue),
        failures={k: v for k, v in stats.items() if k not in statuses and not str(k).startswith(("opened", "complet"))},
    )
    assert stats["opened"] == len(clients), stats
    assert set(statuses) == {200}, stats
    assert stats["completed busy"] == BUSY_CONNECTIONS and stats["completed slow"] == SLOW_READERS, stats
    slowest, median = max(latencies), percentile(latencies, 0.5)
    assert slowest < WAIT_BOUND, f"slowest response {slowest:.1f} s"
    assert slowest < FAIRNESS * median + 1, f"slowest response {slowest:.1f} s, median {median:.1f} s"
    if dyno.app_server.startswith("waitress"):
        # waitress stops accepting once its channel map (the listening socket, its trigger pipe and the
        # connections) reaches connection_limit, and the rest wait in the backlog: at most limit - 2 open.
        # With far more clients than that it stays near the limit; sampled every 0.25 s while nginx closes
        # each connection after its response, the peak seen sits a few below it (91 of 100 here), so at
        # least 80% of it: a limit that did not apply would show far more, or far fewer.
        limit, peak = waitress_connection_limit(dyno, project), max(accepted for _, _, accepted in queue)
        assert peak <= limit - 2, f"waitress held {peak} connections from nginx: connection_limit={limit}"
        if 2 * limit <= BUSY_CONNECTIONS:
            assert peak >= 0.8 * limit, f"waitress held at most {peak} connections: connection_limit={limit}"
    assert dyno.process.poll() is None


# --- the access line --------------------------------------------------------------------------------------


def l2met_pairs(line):
    """key=value pairs as a log drain parses them: values may be double-quoted."""
    pairs = collections.defaultdict(list)
    for word in shlex.split(line, posix=True):
        key, sep, value = word.partition("=")
        if sep:
            pairs[key].append(value)
    return pairs


def test_request_id_cannot_add_pairs_to_the_access_line(web):
    dyno, _project, port = web
    marker = uuid.uuid4().hex
    forged = f"{marker} status=599 measure#nginx.service=999.9"
    status, _, _ = rs.http_request(port, "GET", "/health/", {**HTTPS, "X-Request-Id": forged})
    assert status == 200
    quoted = f'{marker}" status=599 x="'
    assert rs.http_request(port, "GET", "/health/", {**HTTPS, "X-Request-Id": quoted})[0] == 200

    def lines():
        found = [line for line in dyno.output.splitlines() if line.startswith("measure#nginx.") and marker in line]
        return found if len(found) == 2 else None

    for line in dyno.wait_for(lines, "the two access lines", timeout=15):
        pairs = l2met_pairs(line)
        assert pairs["status"] == ["200"], line
        assert len(pairs["measure#nginx.service"]) == 1 and pairs["measure#nginx.service"] != ["999.9"], line
        assert len(pairs["request_id"]) == 1 and marker in pairs["request_id"][0], line


# --- headers on nginx's own responses ---------------------------------------------------------------------


def raw(port, data, timeout=20):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            received += chunk
    head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = collections.defaultdict(list)
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()].append(value.strip())
    return head[0], headers


def test_nginx_error_pages_carry_the_security_headers(web):
    _dyno, _project, port = web
    status, headers, _ = rs.http_request(port, "GET", "/", HTTPS)
    assert status == 200
    django_hsts = headers["strict-transport-security"]
    assert headers["x-content-type-options"] == ["nosniff"], headers  # once, Django's
    assert len(django_hsts) == 1 and "preload" not in django_hsts[0], django_hsts  # max-age 3600: no preload

    too_big = (
        "POST / HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\n"
        f"Content-Length: {10 * 1024 * 1024 + 1}\r\n\r\n"
    ).encode()
    bad = b"GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\n\r\n"  # HTTP/1.1 without Host: nginx's 400
    plain_bad = b"GET / HTTP/1.1\r\n\r\n"  # no X-Forwarded-Proto: not HTTPS, so no HSTS
    answers = {name: raw(port, data) for name, data in (("413", too_big), ("400", bad), ("400 http", plain_bad))}
    figure("nginx's own errors", **{name: dict(headers) for name, (_line, headers) in answers.items()})
    for name, (line, headers) in answers.items():
        assert line.startswith(f"HTTP/1.1 {name.split()[0]}"), (name, line)
        assert headers["x-content-type-options"] == ["nosniff"], (name, headers)
    assert answers["413"][1]["strict-transport-security"] == django_hsts, answers["413"]
    assert answers["400"][1]["strict-transport-security"] == django_hsts, answers["400"]
    assert "strict-transport-security" not in answers["400 http"][1], answers["400 http"]


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, "max-age=3600; includeSubDomains"),
        ({"DJANGO_SECURE_HSTS_SECONDS": "31536000"}, "max-age=31536000; includeSubDomains; preload"),
        (
            {"DJANGO_SECURE_HSTS_SECONDS": "31536000", "DJANGO_SECURE_HSTS_PRELOAD": "false"},
            "max-age=31536000; includeSubDomains",
        ),
        ({"DJANGO_SECURE_HSTS_SECONDS": "63072000", "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "no"}, "max-age=63072000"),
    ],
    ids=["default", "a-year", "a-year-no-preload", "no-subdomains"],
)
def test_hsts_preload_follows_the_max_age(bake_once, venv_python, variables, expected):
    """Django's header (the settings) and nginx's (config/nginx.conf.erb, same variables) agree, and carry
    preload only with a max-age of a year or more."""
    project = bake_once(wsgi_server="gunicorn")
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "DYNO": "web.1",
        "PORT": "5000",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_SETTINGS_MODULE": f"{project.name}.settings",
        **variables,
    }
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print('max-age=%d' % s.SECURE_HSTS_SECONDS + ('; includeSubDomains' if s.SECURE_HSTS_INCLUDE_SUBDOMAINS "
        "else '') + ('; preload' if s.SECURE_HSTS_PRELOAD else ''))"
    )

    django = subprocess.run([venv_python, "-c", script], env=env, cwd=project, capture_output=True, text=True)
    assert django.returncode == 0, django.stderr
    rendered = subprocess.run(["erb", "config/nginx.conf.erb"], env=env, cwd=project, capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    nginx = re.search(r'"https:" "([^"]*)";', rendered.stdout)[1]
    assert django.stdout.strip() == nginx == expected, (django.stdout, nginx)


def test_preload_with_a_short_max_age_is_refused(bake_once, venv_python):
    project = bake_once(wsgi_server="gunicorn")
    env = {
        "PATH": "/usr/bin:/bin",
        "DYNO": "web.1",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_SETTINGS_MODULE": f"{project.name}.settings",
        "DJANGO_SECURE_HSTS_PRELOAD": "true",
    }

    result = subprocess.run(
        [venv_python, "-c", "import django; django.setup()"], env=env, cwd=project, capture_output=True, text=True
    )
    assert result.returncode != 0 and "DJANGO_SECURE_HSTS_PRELOAD" in result.stderr and "31536000" in result.stderr, (
        result.stderr
    )


@pytest.mark.parametrize(("max_requests", "jitter"), [("1000", "500"), ("200", "100"), ("0", "0")])
def test_gunicorn_workers_recycle_apart(bake_once, baked_venv, max_requests, jitter):
    """Each gunicorn worker recycles after max_requests + a random 0..jitter requests: with the jitter at
    half of max_requests (it was a fixed 100, a tenth of the default), two workers that share the load
    evenly reach their limits hundreds of requests apart rather than in the same second. What gunicorn
    itself reads from the baked config."""
    project = bake_once(wsgi_server="gunicorn")
    env = {"PATH": f"{baked_venv}/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "GUNICORN_MAX_REQUESTS": max_requests}
    result = subprocess.run(
        [f"{baked_venv}/bin/gunicorn", "--print-config", "--config", "config/gunicorn.conf.py"],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    printed = dict(re.findall(r"^(max_requests(?:_jitter)?)\s+= (\S+)$", result.stdout, re.M))
    assert printed == {"max_requests": max_requests, "max_requests_jitter": jitter}, printed
