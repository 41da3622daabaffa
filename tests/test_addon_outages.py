"""Add-ons going away under the real stack: every request answers in bounded time, and nothing needs a restart.

One bake per add-on (gunicorn), built and released as on Heroku and run with `bin/dyno` against servers this
module starts itself in its network namespace, so that it can stop them (refused connections) and freeze them
with SIGSTOP (the kernel still accepts connections, nothing answers: a partition or a failover in progress):

- the cache (Redis: Debian's redis-server; MemCachier: Debian's memcached, without SASL and with it, as
  MemCachier has it): the home page, which reads a count through the cache, still answers 200 within BOUND
  while the server is stopped, and while it is frozen after the bake's own timeout (REDIS_TIMEOUT, or
  MEMCACHIER_TIMEOUT once per wait the client makes) and well before one more wait; it uses the cache again
  once the server is back;
- the Redis broker: the form that enqueues answers 503 with Retry-After within BOUND while Redis is stopped,
  and after REDIS_TIMEOUT (not before, and well before one more) while it is frozen; once Redis is back the
  worker dyno, never restarted, runs the next task;
- S3 media: moto's S3 server (moto[server] from PyPI: an S3 API in one pure-Python process on loopback, which
  a test can stop and freeze like the others; MinIO, the usual alternative, is not on the package registries
  here) through django-storages with the bake's own settings, in a process beside the web dyno with its
  environment: a save and a read work; while the server is stopped a save fails within BOUND with botocore's
  error, while it is frozen after AWS_S3_TIMEOUT (one attempt, not two), and works again once it is back;
- views written into the bake (not shipped) that call the cache or save an upload with no try: 503 with
  Retry-After (heroku_runtime.middleware.AddonUnavailableMiddleware), never a 500, within BOUND while the
  add-on is stopped and after its timeout while it is frozen.

Each timeout is read from the bake (app.json's value, else the default its settings give env_seconds()), not
restated here.

Timings go to the run's "figures" summary (CONTRIBUTING.md, "Measured figures").
"""

import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest

import realstack as rs
from conftest import figure

SECRET_KEY = "addon-outages-" + "k" * 60
HTTPS = {"X-Forwarded-Proto": "https", "Host": "localhost"}  # what Heroku's router adds
# Up and stopped (a refused connection: no wait): far above each add-on's timeout, far below the router's 30 s.
BOUND = 5
# Frozen: a request waits the configured timeout once per wait its client makes, then answers. The window
# above that is 0.8 of one timeout: room for the request's own work on a loaded machine (up: under 0.7 s),
# while one more wait (a retry, a second call, or the library's own default, every one longer than the
# configured timeout: redis-py 5 s, python-binary-memcached 3 s, botocore 60 s) falls outside it.
MARGIN = 0.8
TRIES = 3  # requests per state: the first one after the change and the ones that follow
BUCKET = "media"
MOTO_SERVER = Path(sys.executable).with_name("moto_server")


def wait_for_port(port, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


class Server:
    """An add-on's server on a fixed loopback port: start, stop (refused), freeze and thaw (SIGSTOP/SIGCONT)."""

    def __init__(self, argv, port, log, env=None):
        self.argv, self.port, self.log, self.env, self.process = argv, port, log, env, None

    def start(self):
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
            )
        wait_for_port(self.port)
        return self

    def stop(self):
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGCONT)  # a frozen server would never act on SIGTERM
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", self.port)) != 0, "the stopped server still accepts"

    def freeze(self):
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self):
        os.killpg(self.process.pid, signal.SIGCONT)


def redis_server(workdir):
    port = rs.free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return Server(argv, port, workdir / "redis.log").start()


def memcached_server(workdir):
    port = rs.free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    return Server(
        ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", *user], port, workdir / "memcached.log"
    ).start()


MEMCACHIER_USER, MEMCACHIER_PASSWORD = "mc-user", "mc-Pass_word-1"


def memcachier_server(workdir, sasl_dir):
    """Debian's memcached requiring SASL (-S), as MemCachier has it: Cyrus SASL's PLAIN mechanism against a
    sasldb made with saslpasswd2 (Debian package sasl2-bin), in `sasl_dir`, which memcached reads as nobody."""
    sasl_dir.chmod(0o755)
    sasldb = sasl_dir / "sasldb2"
    subprocess.run(
        ["saslpasswd2", "-p", "-a", "memcached", "-c", "-f", str(sasldb), MEMCACHIER_USER],
        input=MEMCACHIER_PASSWORD,
        text=True,
        check=True,
    )
    sasldb.chmod(0o644)
    (sasl_dir / "memcached.conf").write_text(f"mech_list: plain\nsasldb_path: {sasldb}\n")
    port = rs.free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    argv = ["memcached", "-S", "-l", "127.0.0.1", "-p", str(port), "-U", "0", *user]
    env = {**os.environ, "SASL_CONF_PATH": str(sasl_dir)}
    return Server(argv, port, workdir / "memcachier.log", env).start()


def moto_server(workdir):
    port = rs.free_port()
    return Server([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], port, workdir / "moto.log").start()


def create_bucket(port):
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)


def s3_env(port):
    return {
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


class Stack:
    """A bake built and released against the module's PostgreSQL; web() and worker() start its dynos."""

    def __init__(self, name, answers, bake_once, baked_venv, user, workdir, postgres, **env):
        self.name, self.user, self.postgres, self.venv = name, user, postgres, baked_venv
        self.dir = workdir / name
        self.project = rs.prepare_project(bake_once(**answers), self.dir, user, baked_venv)
        self.database = f"outages_{name}"
        url = postgres.create_database(self.database)
        app_json = json.loads((self.project / "app.json").read_text())
        config_vars = {key: spec["value"] for key, spec in app_json["env"].items() if "value" in spec}
        self.port = rs.free_port()
        self.env = rs.base_env(
            user, baked_venv, DJANGO_SECRET_KEY=SECRET_KEY, DATABASE_URL=url, PORT=self.port, **config_vars, **env
        )
        with self.dyno("release") as release:
            release.wait_for(lambda: release.process.poll() is not None, "the release phase to finish", timeout=180)
        assert release.process.returncode == 0, f"release phase failed:\n{release.output[-4000:]}"

    def dyno(self, process_type, **env):
        log = self.dir / f"{process_type}-{uuid.uuid4().hex[:6]}.log"
        return rs.Dyno(self.project, process_type, {**self.env, **env}, self.user, log, self.postgres)

    def request(self, method, path, headers=None, body=None):
        """(status or exception name, seconds, headers, body) through nginx."""
        started = time.monotonic()
        try:
            status, received, content = rs.http_request(
                self.port, method, path, {**HTTPS, **(headers or {})}, body, timeout=40
            )
        except OSError as error:
            status, received, content = type(error).__name__, {}, b""
        return status, time.monotonic() - started, received, content


def configured_seconds(project, name):
    """The seconds the bake configures for `name`: app.json's value, else the default its settings give."""
    spec = json.loads((project / "app.json").read_text())["env"].get(name, {})
    if "value" in spec:
        return float(spec["value"])
    for module in sorted((project / project.name).glob("*.py")):
        found = re.search(rf'env_seconds\("{name}", "([\d.]+)"\)', module.read_text())
        if found:
            return float(found[1])
    raise AssertionError(f"{name}: no value in app.json and no env_seconds() default in the settings")


def answers_after_waits(stack, call, expected, what, timeout, waits=(1, 1)):
    """call() TRIES times against a frozen add-on: each answers `expected` after at least waits[0] waits of
    `timeout`, and before waits[1] and one more (MARGIN); returns the seconds each took and the last headers."""
    low, high = waits[0] * timeout, (waits[1] + MARGIN) * timeout
    times = []
    for _ in range(TRIES):
        status, seconds, headers, body = call()
        assert status == expected, f"{what}: {status} after {seconds:.1f} s: {body[:300]!r}"
        assert low <= seconds < high, f"{what}: {status} in {seconds:.2f} s, not {low:g} to {high:g} s"
        times.append(seconds)
    return times, headers


def answers_within_bound(stack, call, expected, what):
    """call() TRIES times: each answers `expected` within BOUND; returns the seconds each took."""
    times = []
    for _ in range(TRIES):
        status, seconds, headers, body = call()
        assert status == expected, f"{what}: {status} after {seconds:.1f} s: {body[:300]!r}"
        assert seconds < BOUND, f"{what}: {status} took {seconds:.1f} s (bound {BOUND} s)"
        times.append(seconds)
    return times, headers


def span(times):
    return f"{min(times):.2f} to {max(times):.2f} s"


# --- the cache: the home page renders while the cache is down or hung ----------------------------------------


COUNT_IN_CACHE = "from django.core.cache import cache; print(cache.get('example:result-count') is not None)"


def in_dyno(stack, web, code):
    """Python `code` run by the bake's Django beside the web dyno, with its environment: its stdout."""
    return web.run_in_dyno([f"{stack.venv}/bin/python", "manage.py", "shell", "-c", code], timeout=60).stdout


def cached_count_in(kind, server, stack, web):
    """The example's cached count as the cache server holds it (Django's key: ':1:' + the view's key). A
    server that wants SASL is asked through the bake's own client."""
    key = ":1:example:result-count"
    if kind == "memcachier":
        return in_dyno(stack, web, COUNT_IN_CACHE).strip().endswith("True")
    if kind == "redis":
        result = subprocess.run(
            ["redis-cli", "-p", str(server.port), "EXISTS", key], capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip() == "1"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        client.sendall(f"get {key}\r\n".encode())
        reply = b""
        while not reply.endswith(b"END\r\n"):
            reply += client.recv(4096)
    return reply.startswith(b"VALUE ")


def cache_used_again(stack, web, kind, server, what, seconds=30):
    """GET / every half second, each answering 200 within BOUND, until the count is in the cache again;
    returns how long that took. python-binary-memcached waits 5 s before it connects again to a server that
    refused it."""
    flush(kind, server, stack, web)
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        answers_within_bound(stack, lambda: stack.request("GET", "/"), 200, what)
        if cached_count_in(kind, server, stack, web):
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"{what}: the cache is not used again after {seconds} s")


def flush(kind, server, stack, web):
    if kind == "memcachier":
        in_dyno(stack, web, "from django.core.cache import cache; cache.clear()")
    elif kind == "redis":
        subprocess.run(["redis-cli", "-p", str(server.port), "FLUSHALL"], check=True, capture_output=True, timeout=10)
    else:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
            client.sendall(b"flush_all\r\n")
            assert client.recv(100) == b"OK\r\n"


# Waits of the cache's timeout a GET / makes on a frozen server (fewest, most): the read of the count, then
# (a miss) its write. redis-py: one, the read's, after which the view counts in the database.
# python-binary-memcached (config/cache_memcached.py): a get, then Django's set and its delete of the stale
# key, one wait each. With SASL each call on a new connection also waits for its login (the client drops
# the connection after a timeout): 6, or 5 when a worker's first get after the freeze still has the
# connection it logged in on before it (gunicorn's two workers each have their own).
CACHE_WAITS = {"redis": (1, 1), "memcached": (3, 3), "memcachier": (5, 6)}
# python-binary-memcached's retry_delay: after a refused connect it skips the server this long, without a
# wait. Each gunicorn worker has its own client, so the freeze comes this long after the last refusal.
RETRY_DELAY = 5
CACHE_TIMEOUTS = {"redis": "REDIS_TIMEOUT", "memcached": "MEMCACHIER_TIMEOUT", "memcachier": "MEMCACHIER_TIMEOUT"}


@pytest.mark.parametrize("kind", ["redis", "memcached", "memcachier"])
def test_home_page_renders_while_the_cache_is_down_or_hung(kind, bake_once, baked_venv, user, workdir, postgres):
    sasl_dir, moto = Path(tempfile.mkdtemp(prefix="memcachier-sasl-")), None
    if kind == "redis":
        server = redis_server(workdir)
        answers, env = (
            {"cache": "redis", "task_broker": "redis", "use_s3_media": True},
            {"REDIS_URL": f"redis://127.0.0.1:{server.port}/0"},
        )
        moto = moto_server(workdir)
        env |= s3_env(moto.port)
    elif kind == "memcached":
        server = memcached_server(workdir)
        answers, env = {"cache": "memcached"}, {"MEMCACHIER_SERVERS": f"127.0.0.1:{server.port}"}
    else:
        server = memcachier_server(workdir, sasl_dir)
        answers = {"cache": "memcached"}
        env = {
            "MEMCACHIER_SERVERS": f"127.0.0.1:{server.port}",
            "MEMCACHIER_USERNAME": MEMCACHIER_USER,
            "MEMCACHIER_PASSWORD": MEMCACHIER_PASSWORD,
        }
    try:
        stack = Stack(f"cache_{kind}", answers, bake_once, baked_venv, user, workdir, postgres, **env)
        timeout = configured_seconds(stack.project, CACHE_TIMEOUTS[kind])
        with stack.dyno("web") as web:
            web.wait_http(stack.port)

            def home():
                return stack.request("GET", "/")

            up, _ = answers_within_bound(stack, home, 200, "cache up")
            assert cached_count_in(kind, server, stack, web), "the home page did not store its count in the cache"

            server.stop()
            refused, _ = answers_within_bound(stack, home, 200, f"{kind} stopped")
            server.start()
            restarted = time.monotonic()
            back = cache_used_again(stack, web, kind, server, f"{kind} back after a stop")

            if kind != "redis":
                time.sleep(max(0, RETRY_DELAY + 0.5 - (time.monotonic() - restarted)))
            server.freeze()
            try:
                hung, _ = answers_after_waits(stack, home, 200, f"{kind} frozen", timeout, CACHE_WAITS[kind])
            finally:
                server.thaw()
            thawed = cache_used_again(stack, web, kind, server, f"{kind} thawed")
            if kind == "redis":  # python-binary-memcached turns a failure into a miss itself, silently
                assert "cache unavailable, counting in the database" in web.output, web.output[-3000:]
            record = web.stop()
        assert record["returncode"] == 0, web.output[-3000:]
        figure(
            f"cache={kind} GET / (TRIES={TRIES} each)",
            up=span(up),
            stopped=span(refused),
            frozen=span(hung),
            cache_used_again=f"{back:.2f} s after the restart, {thawed:.2f} s after the thaw",
        )
    finally:
        server.stop()
        if moto:
            moto.stop()
        shutil.rmtree(sasl_dir, ignore_errors=True)


# --- the Redis broker and S3: one bake with both, web and worker dynos side by side --------------------------


@pytest.fixture(scope="module")
def broker(bake_once, baked_venv, user, workdir, postgres):
    """The redis-broker bake with S3 media; its web dyno running, Redis and moto's S3 up."""
    redis, moto = redis_server(workdir), moto_server(workdir)
    try:
        create_bucket(moto.port)
        env = {"REDIS_URL": f"redis://127.0.0.1:{redis.port}/0", **s3_env(moto.port)}
        answers = {"cache": "redis", "task_broker": "redis", "use_s3_media": True}
        stack = Stack("broker", answers, bake_once, baked_venv, user, workdir, postgres, **env)
        write_careless_views(stack.project)
        with stack.dyno("web") as web:
            web.wait_http(stack.port)
            yield stack, web, redis, moto
    finally:
        redis.stop()
        moto.stop()


CARELESS_VIEWS = '''"""Written by tests/test_addon_outages.py: views that let an add-on's error through."""

from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import HttpResponse


def cache_read(request):
    return HttpResponse(repr(cache.get("careless")))


def upload(request):
    return HttpResponse(default_storage.save("careless/upload.txt", ContentFile(b"uploaded")))
'''


def write_careless_views(project):
    """/careless/cache/ and /careless/upload/: a cache read and an upload with no try (not shipped)."""
    package = project / project.name  # the settings package: its urls.py is ROOT_URLCONF
    (package / "careless.py").write_text(CARELESS_VIEWS)
    urls = package / "urls.py"
    urls.write_text(
        urls.read_text() + f"\nfrom {package.name} import careless  # noqa: E402\n\n"
        'urlpatterns += [path("careless/cache/", careless.cache_read), path("careless/upload/", careless.upload)]\n'
    )


def test_a_view_that_lets_the_error_through_answers_503_not_500(broker):
    """heroku_runtime.middleware.AddonUnavailableMiddleware: Redis or S3 stopped or frozen under a view with no try."""
    stack, _web, redis, moto = broker
    create_bucket(moto.port)
    figures = {}
    timeouts = {redis: "REDIS_TIMEOUT", moto: "AWS_S3_TIMEOUT"}  # one wait each: a cache read, an upload's HEAD
    for server, path in ((redis, "/careless/cache/"), (moto, "/careless/upload/")):
        status, seconds, _, body = stack.request("GET", path)
        assert status == 200, f"{path} with the add-on up: {status} {body[:300]!r}"
        for state in ("stopped", "frozen"):
            if state == "stopped":
                server.stop()
            else:
                server.start()
                if server is moto:
                    create_bucket(moto.port)
                server.freeze()
            try:
                call = functools.partial(stack.request, "GET", path)
                if state == "stopped":
                    times, headers = answers_within_bound(stack, call, 503, path)
                else:
                    timeout = configured_seconds(stack.project, timeouts[server])
                    times, headers = answers_after_waits(stack, call, 503, f"{path} frozen", timeout)
            finally:
                if state == "frozen":
                    server.thaw()
            assert headers.get("retry-after"), headers
            figures[f"{path} {state}"] = span(times)
        if server is moto:
            create_bucket(moto.port)
        status, _, _, body = stack.request("GET", path)
        assert status == 200, f"{path} once the add-on is back: {status} {body[:300]!r}"
    figure("views with no try, 503 with Retry-After", **figures)


def form(stack):
    """The headers and a function making the form's body, CSRF token and cookie taken from GET / once."""
    status, _, headers, body = stack.request("GET", "/")
    assert status == 200, body[:300]
    cookie = next(c.split(";")[0] for c in headers["set-cookie"] if c.startswith("csrftoken="))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)[1].decode()
    post_headers = {
        "Cookie": cookie,
        "Referer": "https://localhost/",
        "Origin": "https://localhost",
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    }
    return post_headers, lambda key: urlencode({"key": key, "csrfmiddlewaretoken": token}).encode()


def ran(stack, key):
    rows = stack.postgres.sql(f"SELECT runs FROM example_exampleresult WHERE key = '{key}'", stack.database)
    return bool(rows)


class Worker(rs.Dyno):
    """`python manage.py qcluster` as the dyno user with the web dyno's environment; stopped on exit."""

    def __init__(self, stack, web):
        super().__init__(stack.project, "worker", web.app_environ(), stack.user, stack.dir / "qcluster.log")
        self.argv = [f"{stack.venv}/bin/python", "manage.py", "qcluster"]

    def __exit__(self, *exc_info):
        rs.stop_session(self.process)


def test_enqueue_answers_503_while_redis_is_down_or_hung_and_the_worker_recovers(broker):
    stack, web, redis, _moto = broker
    headers, body = form(stack)
    keys = iter(f"outage-{number}-{uuid.uuid4().hex[:8]}" for number in range(100))

    def enqueue():
        return stack.request("POST", "/tasks/example/", headers, body(next(keys)))

    # The worker beside the web dyno: what the worker dyno runs after bin/start-pgbouncer, with the web dyno's
    # environment (its PgBouncer on 127.0.0.1:6000 is the only one this network can have).
    with Worker(stack, web) as worker:
        worker.wait_for(lambda: "running." in worker.output, "the cluster to start")

        def runs_next_task(what):
            key = next(keys)
            status, seconds, _, content = stack.request("POST", "/tasks/example/", headers, body(key))
            assert status == 202, f"{what}: {status} {content[:300]!r}"
            started = time.monotonic()
            worker.wait_for(lambda: ran(stack, key), f"{what}: the task {key} to run", timeout=60)
            return time.monotonic() - started

        first = runs_next_task("Redis up")

        redis.stop()
        refused, answered = answers_within_bound(stack, enqueue, 503, "Redis stopped")
        assert answered.get("retry-after"), answered
        down_for = time.monotonic()
        redis.start()
        after_stop = runs_next_task("Redis back after a stop")
        recovered_stop = time.monotonic() - down_for

        redis.freeze()
        try:
            timeout = configured_seconds(stack.project, "REDIS_TIMEOUT")
            hung, answered = answers_after_waits(stack, enqueue, 503, "Redis frozen", timeout)
            assert answered.get("retry-after"), answered
        finally:
            redis.thaw()
        after_freeze = runs_next_task("Redis thawed")

        assert worker.process.poll() is None, f"the worker exited:\n{worker.output[-3000:]}"
    figure(
        f"task_broker=redis POST /tasks/example/ (TRIES={TRIES} each)",
        stopped=span(refused),
        frozen=span(hung),
        task_ran_after=f"{first:.2f} s up, {after_stop:.2f} s after the restart, {after_freeze:.2f} s after the thaw",
        restart_to_task_done=recovered_stop,
    )


S3_ROUND_TRIP = """
import json, sys, time
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
started = time.monotonic()
try:
    name = default_storage.save("outages/hello.txt", ContentFile(b"hello from the dyno"))
    with default_storage.open(name) as stored:
        content = stored.read().decode()
    outcome = {"name": name, "content": content, "url": default_storage.url(name)}
except Exception as error:
    outcome = {"error": type(error).__name__, "message": str(error)}
outcome["seconds"] = time.monotonic() - started
print("OUTCOME " + json.dumps(outcome))
"""


def s3_round_trip(stack, web):
    result = web.run_in_dyno([f"{stack.venv}/bin/python", "manage.py", "shell", "-c", S3_ROUND_TRIP], timeout=60)
    line = next(line for line in result.stdout.splitlines() if line.startswith("OUTCOME "))
    return json.loads(line.removeprefix("OUTCOME "))


def test_s3_uploads_fail_fast_while_the_endpoint_is_down_or_hung(broker):
    stack, web, _redis, moto = broker
    works = s3_round_trip(stack, web)
    assert works.get("content") == "hello from the dyno", works
    assert "X-Amz-Signature=" in works["url"], works

    moto.stop()
    refused = s3_round_trip(stack, web)
    moto.start()
    create_bucket(moto.port)  # moto keeps its buckets in memory
    back = s3_round_trip(stack, web)

    moto.freeze()
    try:
        hung = s3_round_trip(stack, web)
    finally:
        moto.thaw()
    thawed = s3_round_trip(stack, web)

    assert refused.get("error") == "EndpointConnectionError" and refused["seconds"] < BOUND, refused
    # One attempt: a save's first request waits AWS_S3_TIMEOUT once, and fails.
    timeout = configured_seconds(stack.project, "AWS_S3_TIMEOUT")
    assert hung.get("error") in {"ReadTimeoutError", "ConnectTimeoutError"}, hung
    assert timeout <= hung["seconds"] < (1 + MARGIN) * timeout, f"AWS_S3_TIMEOUT={timeout:g}: {hung}"
    for outcome in (back, thawed):
        assert outcome.get("content") == "hello from the dyno", outcome
    figure(
        "use_s3_media=true save + read",
        up=works["seconds"],
        stopped=f"{refused['error']} in {refused['seconds']:.2f} s",
        back=back["seconds"],
        frozen=f"{hung['error']} in {hung['seconds']:.2f} s",
        thawed=thawed["seconds"],
    )
