"""Stack control: bake and build the projects, a PostgreSQL with TLS, dynos in namespaces, and the tools
that look into them (load generators through nsenter, memory from /proc).

The template's test helpers (tests/realstack.py, tests/conftest.py) are reused, not copied: the ordinary
user, the throwaway PostgreSQL with password auth, Heroku's build step and the cached virtualenv of
every server. What is added here is isolation: each dyno runs in its own mount, network and PID
namespaces (see nsinit.py), so two web dynos can each have /tmp/nginx.socket and PgBouncer on 6000,
and nothing here collides with the test suite's stacks on the same machine.
"""

import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests"))

import realstack as rs  # noqa: E402
from conftest import OPTION_BAKES, SERVERS, SYSTEM_PYTHON, make_venv  # noqa: E402

SLUG = "my_heroku_app"  # the template's default project_slug
SECRET_KEY = "benchmark-" + "k" * 60
PORT = 5000  # every dyno has its own loopback, so every dyno can use the same PORT
PG_PORT_IN_DYNO = 5432  # the relay's port inside each namespace
# router.py, Heroku's router stand-in, listens here in front of every web dyno; the clients connect to it.
ROUTER_PORT = 8080
ROUTER = {"enabled": True}  # run.py --no-router turns it off for a comparison
BIG_STATIC = "bench-1mb.bin"  # slow readers of a response inside the router's 1 MB buffer (with headers,
# a little over it: the router's 64 KB kernel buffers take the rest)
LARGE_STATIC = "bench-4mb.bin"  # and of one well beyond it
HTTPS = {"X-Forwarded-Proto": "https"}

# Added to the benchmark's own bakes only (never to the template): a trivial view for the cost of the
# nginx hop, a view with one query on Django's own connection (what any ORM view does; the fast clients
# and the throughput runs use it), and a view that reads a request body, as any form or upload view
# does. The 1 MB file for the slow readers is a static file, served by WhiteNoise from the WSGI server.
BENCH_VIEWS = '''"""Views the benchmark adds to its own bake (benchmarks/stack.py); not part of the template."""

import select
import time

import psycopg
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt


def ping(request):
    return HttpResponse("pong", content_type="text/plain")


def db(request):
    # One query on Django's connection: kept between requests (CONN_MAX_AGE) or opened per request.
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return JsonResponse({"status": "ok"})


def health_connect(request):
    # What /health/ did before it kept its probe connection (template commit 308922a): a new connection
    # per call, SELECT 1 within the same 3 s deadline. Measured beside /health/ in the same run.
    deadline = time.monotonic() + 3
    params = connection.get_connection_params()
    params["connect_timeout"] = 3
    probe = psycopg.connect(autocommit=True, **params)
    try:
        pgconn = probe.pgconn
        pgconn.send_query(b"SELECT 1")
        while pgconn.is_busy():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return JsonResponse({"status": "unavailable"}, status=503)
            if select.select([pgconn.socket], [], [], remaining)[0]:
                pgconn.consume_input()
        result = pgconn.get_result()
        ok = result is not None and result.status == psycopg.pq.ExecStatus.TUPLES_OK
    finally:
        probe.close()
    return JsonResponse({"status": "ok" if ok else "unavailable"}, status=200 if ok else 503)


@csrf_exempt
def upload(request):
    # request.body reads the whole body from the server: a slow uploader holds whoever runs this view.
    return JsonResponse({"received": len(request.body)})


def stall(request):
    # Reads the table the scale-out's database stall locks (run.py): while it is locked, this waits on a
    # PostgreSQL connection of its own, as every request does behind a migration's lock or a slow query.
    stall_task()
    return JsonResponse({"status": "ok"})


def stall_task():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM bench_stall")
        cursor.fetchone()


def enqueue(request):
    # Tasks for the worker dyno that read the stalled table too (the worker's share of the stall).
    from django_q.tasks import async_task

    for _ in range(int(request.GET.get("n", "4"))):
        async_task("heroku_runtime.bench_views.stall_task")
    return JsonResponse({"enqueued": int(request.GET.get("n", "4"))})


def record_task(number):
    # The worker scale-out's task: one row per run, so that runs missing or duplicated can be counted.
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_tasks (n) VALUES (%s)", [number])


def enqueue_numbered(request):
    from django_q.tasks import async_task

    start, count = int(request.GET.get("start", "0")), int(request.GET.get("n", "100"))
    for number in range(start, start + count):
        async_task("heroku_runtime.bench_views.record_task", number)
    return JsonResponse({"enqueued": count})
'''
# The CPU time each process spends inside Django (the WSGI application: the call, then closing the response;
# not the server's writing of it between), for run.py's per-request CPU breakdown: thread CPU time
# (time.thread_time, which excludes waiting), summed per process into an 8-byte file in the dyno's /tmp
# that the benchmark reads from outside (seconds, a double). A memory map: no system call per request.
BENCH_CPU = '''"""Django's CPU time per process, for the benchmark (benchmarks/stack.py); not the template's."""

import mmap
import os
import struct
import threading
import time

DIRECTORY = "/tmp/bench-cpu"
_lock = threading.Lock()
_counter = {}


def _slot():
    pid = os.getpid()
    if _counter.get("pid") != pid:  # a forked worker gets its own file
        os.makedirs(DIRECTORY, mode=0o777, exist_ok=True)
        fd = os.open(f"{DIRECTORY}/{pid}", os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, 8)
        _counter.update(pid=pid, map=mmap.mmap(fd, 8), seconds=0.0)
        os.close(fd)
    return _counter


def _add(seconds):
    with _lock:
        slot = _slot()
        slot["seconds"] += seconds
        struct.pack_into("d", slot["map"], 0, slot["seconds"])


class _Timed:
    def __init__(self, result, spent):
        self.result, self.spent = result, spent

    def __iter__(self):
        return iter(self.result)

    def close(self):
        started = time.thread_time()
        try:
            if hasattr(self.result, "close"):
                self.result.close()
        finally:
            _add(self.spent + time.thread_time() - started)


def timed(application):
    def wrapper(environ, start_response):
        if not environ.get("PATH_INFO", "").startswith("/bench/"):
            return application(environ, start_response)  # static files keep the server's wsgi.file_wrapper
        started = time.thread_time()
        result = application(environ, start_response)
        return _Timed(result, time.thread_time() - started)

    return wrapper
'''
BENCH_WSGI = """
# Added by benchmarks/stack.py for the benchmark only: Django's CPU time per process (heroku_runtime/bench_cpu.py).
from heroku_runtime.bench_cpu import timed  # noqa: E402

application = timed(application)
"""
BENCH_URLS = """
# Added by benchmarks/stack.py for the benchmark only.
from heroku_runtime import bench_views  # noqa: E402

urlpatterns += [
    path("bench/ping/", bench_views.ping),
    path("bench/db/", bench_views.db),
    path("bench/upload/", bench_views.upload),
    path("bench/health-connect/", bench_views.health_connect),
    path("bench/stall/", bench_views.stall),
    path("bench/enqueue/", bench_views.enqueue),
    path("bench/enqueue-numbered/", bench_views.enqueue_numbered),
]
"""
# The peers: what a Heroku Django user runs instead of this stack, each from its own documented
# configuration, not tuned. Each runs our bake's code (same views) with the peer's Procfile, server
# configuration and database settings, straight to PostgreSQL (no nginx, no PgBouncer).
#
# Peer 1, heroku/python-getting-started (github.com/heroku/python-getting-started at f7c8d99, 2026-07-14):
# Procfile `web: gunicorn --config gunicorn.conf.py gettingstarted.wsgi`; the values of its gunicorn.conf.py
# (production branch: ENVIRONMENT is not "development") and of its settings' DATABASES, re-expressed here.
GETTING_STARTED_GUNICORN = {
    "bind": '["[::]:{}".format(os.environ.get("PORT", 5006))]',
    "worker_class": '"gthread"',
    "workers": 'os.environ.get("WEB_CONCURRENCY", 1)',
    "threads": "5",
    "timeout": "20",
    "graceful_timeout": "20",
    "keepalive": "95",
    "accesslog": '"-"',
    "preload_app": "True",
    "reuse_port": "True",
    "forwarded_allow_ips": '"*"',
}
GETTING_STARTED_DATABASES = (
    'dj_database_url.config(env="DATABASE_URL", conn_max_age=600, conn_health_checks=True, ssl_require=True)'
)
PEERS = {
    "getting-started": {
        "label": "peer 1: heroku/python-getting-started (gunicorn gthread 2×5, preload, conn_max_age=600)",
        "short": "peer 1: python-getting-started",
        "source": "github.com/heroku/python-getting-started at f7c8d99 (2026-07-14): `gunicorn --config "
        "gunicorn.conf.py` with gthread, WEB_CONCURRENCY workers × 5 threads, preload_app, reuse_port, "
        "keepalive 95, timeout 20, bound to `[::]:$PORT`; `dj_database_url.config(conn_max_age=600, "
        "conn_health_checks=True, ssl_require=True)`, straight to PostgreSQL.",
        "answers": {"wsgi_server": "gunicorn"},
        "procfile": f"web: gunicorn --config gunicorn.conf.py {SLUG}.wsgi\n",
        "gunicorn_conf": GETTING_STARTED_GUNICORN,
        "databases": GETTING_STARTED_DATABASES,
        # Each thread keeps its own persistent connection: processes x threads per dyno at most.
        "backends_per_dyno": lambda web_concurrency: web_concurrency * 5,
    },
    # Peer 2, seed 003 ("Don't use Gunicorn to host your Django sites on Heroku"): waitress-serve on $PORT
    # with waitress's defaults (4 threads, connection_limit 100); the article sets no database options, so
    # Django's defaults through dj-database-url: a new connection per request (CONN_MAX_AGE 0).
    "seed-003-waitress": {
        "label": "peer 2: seed 003, waitress-serve on $PORT (4 threads, CONN_MAX_AGE=0)",
        "short": "peer 2: waitress-serve (seed 003)",
        "source": 'seed 003, "Don\'t use Gunicorn to host your Django sites on Heroku": `waitress-serve '
        "--port=$PORT <project>.wsgi:application` with waitress's defaults (4 threads, connection_limit 100); "
        "no database options, so dj-database-url's defaults (a new connection per request).",
        "answers": {"wsgi_server": "waitress"},
        "procfile": f"web: waitress-serve --port=$PORT {SLUG}.wsgi:application\n",
        "databases": 'dj_database_url.config(env="DATABASE_URL")',
        # waitress drops X-Forwarded-Proto from proxies it was not told to trust (its defaults), so our
        # settings' HTTPS redirect would answer every request with a 301; the seed's app has no redirect.
        "env": {"DJANGO_SECURE_SSL_REDIRECT": "false"},
        "backends_per_dyno": lambda web_concurrency: 4,
    },
    # Peer 3, a connection per request: heroku/python-getting-started's database setting from 2014-07 to
    # 2016-02 (CONN_MAX_AGE=0, Django's default, with `gunicorn <project>.wsgi` sync on $PORT). From 2016 it
    # used conn_max_age=500, django-heroku's 600 from 2017, an explicit 600 since 2023: peer 1 stands for those.
    "old-default": {
        "label": "peer 3: a connection per request (gunicorn sync on $PORT, CONN_MAX_AGE=0)",
        "short": "peer 3: CONN_MAX_AGE=0",
        "source": "heroku/python-getting-started's settings from 2014-07 to 2016-02, and Django's default "
        "wherever nothing sets CONN_MAX_AGE: `gunicorn <project>.wsgi`, sync workers (WEB_CONCURRENCY) on $PORT, "
        "CONN_MAX_AGE=0 (a new PostgreSQL connection per request). From 2016 python-getting-started kept its "
        "connections (conn_max_age 500, then django-heroku's 600 from 2017, an explicit 600 since 2023).",
        "answers": {"wsgi_server": "gunicorn"},
        "procfile": f"web: gunicorn {SLUG}.wsgi\n",
        "env": {"DJANGO_CONN_MAX_AGE": "0"},
        "backends_per_dyno": lambda web_concurrency: web_concurrency,
    },
    # The ceiling: our own bake and gunicorn.conf.py, the same server bound straight to $PORT with a
    # persistent direct connection per worker: no nginx, no PgBouncer. Beside ours in the throughput phase
    # only, it says what the two hops cost in req/s and p99. Context, not a peer anyone deploys.
    "ceiling": {
        "label": "ceiling: our gunicorn straight on $PORT, persistent direct connections (no nginx, no PgBouncer)",
        "short": "the ceiling (no nginx, no PgBouncer)",
        "source": "the template's own bake and config/gunicorn.conf.py (sync, WEB_CONCURRENCY, preload), "
        "`--bind 0.0.0.0:$PORT` instead of nginx's socket, `dj_database_url.config(conn_max_age=600, "
        "conn_health_checks=True, ssl_require=True)` straight to PostgreSQL. Throughput phase only.",
        "answers": {"wsgi_server": "gunicorn"},
        "procfile": "web: env -u GUNICORN_CMD_ARGS gunicorn --config config/gunicorn.conf.py --bind 0.0.0.0:$PORT\n",
        "databases": GETTING_STARTED_DATABASES,
        "backends_per_dyno": lambda web_concurrency: web_concurrency,
        "phases": ("db",),
    },
}

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def die_with_parent():
    """In a child before exec: SIGKILL it when the benchmark dies, however it dies."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- bake and build -------------------------------------------------------------------------------------


def bake(answers, out_dir):
    """One cookiecutter bake of the template with `answers`, outside any replay/cache in $HOME."""
    from cookiecutter.main import cookiecutter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = out_dir / "cookiecutter-config.yaml"
    config.write_text(f"cookiecutters_dir: {out_dir / 'cc'}\nreplay_dir: {out_dir / 'replay'}\n")
    # The hooks run as child processes and print their "next steps" to fd 1: keep the log readable.
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        baked = cookiecutter(
            str(ROOT), no_input=True, extra_context=answers, output_dir=str(out_dir), config_file=str(config)
        )
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    return Path(baked)


def baked_venv(workdir):
    """The test suite's virtualenv (Debian's Python, every server): same bakes, same cache key."""
    files = [
        bake({"wsgi_server": server}, workdir / "venv-bakes" / server) / "requirements-dev.txt" for server in SERVERS
    ]
    for index, answers in enumerate(OPTION_BAKES):
        files.append(bake(answers, workdir / "venv-bakes" / f"option{index}") / "requirements.txt")
    return make_venv(SYSTEM_PYTHON, files, "venv-py311")


def customize(project, peer=None, patch=None):
    """Add the benchmark's views and 1 MB static file to a bake; a peer gets its Procfile and settings."""
    (project / "heroku_runtime" / "bench_views.py").write_text(BENCH_VIEWS)
    (project / "heroku_runtime" / "bench_cpu.py").write_text(BENCH_CPU)
    with open(project / SLUG / "wsgi.py", "a") as wsgi:
        wsgi.write(BENCH_WSGI)
    with open(project / SLUG / "urls.py", "a") as urls:
        urls.write(BENCH_URLS)
    # Random bytes: neither WhiteNoise nor nginx can compress them, so 1 MB really crosses the wire.
    (project / "static" / BIG_STATIC).write_bytes(random.Random(1).randbytes(1 << 20))
    (project / "static" / LARGE_STATIC).write_bytes(random.Random(4).randbytes(4 << 20))
    if patch:
        subprocess.run(["patch", "-p1", "--forward", "-d", str(project), "-i", str(Path(patch).resolve())], check=True)
    if peer:
        spec = PEERS[peer]
        (project / "Procfile").write_text("release: python manage.py migrate --noinput\n" + spec["procfile"])
        if "gunicorn_conf" in spec:
            lines = [f"{key} = {value}" for key, value in spec["gunicorn_conf"].items()]
            (project / "gunicorn.conf.py").write_text(
                f'"""{spec["label"]}: its values (benchmarks/stack.py)."""\n\nimport os\n\n' + "\n".join(lines) + "\n"
            )
        if "databases" in spec:
            with open(project / SLUG / "settings.py", "a") as settings:
                settings.write(
                    f"\n# benchmarks/stack.py: {spec['short']}'s database settings.\n"
                    f"DATABASES = {{'default': {spec['databases']}}}\n"
                )


def build(name, answers, workdir, user, venv, peer=None, patch=None):
    """Bake, customize and run Heroku's build step (collectstatic); returns the built project's path."""
    baked = bake(answers, workdir / "bakes" / name)
    customize(baked, peer=peer, patch=patch)
    return rs.prepare_project(baked, workdir / name, user, venv)


def clone_project(project, destination, user):
    """A second copy of a built project (bin/dyno keeps its run files inside the project)."""
    destination = Path(destination)
    shutil.copytree(project, destination / project.name, symlinks=True, ignore=shutil.ignore_patterns(".dyno"))
    user.chown(destination)
    return destination / project.name


def static_path(project, name=BIG_STATIC):
    manifest = json.loads((project / "staticfiles" / "staticfiles.json").read_text())
    return "/static/" + manifest["paths"][name]


def start_redis():
    """A redis-server on the host's loopback, on a free port, nothing saved: the Redis broker's store
    (Heroku Key-Value Store's stand-in). Returns (process, port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as client:
                client.sendall(b"PING\r\n")
                if client.recv(16).startswith(b"+PONG"):
                    return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise rs.StackError("redis-server did not answer within 20 s")


def redis_flush(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"FLUSHALL\r\n")
        if not client.recv(16).startswith(b"+OK"):
            raise rs.StackError("redis-server refused FLUSHALL")


def config_vars(project, **extra):
    """What a Deploy Button sets from app.json (the PgBouncer pool) plus `extra`."""
    app_json = json.loads((project / "app.json").read_text())
    values = {key: spec["value"] for key, spec in app_json["env"].items() if "value" in spec}
    values.update(extra)
    return values


# --- PostgreSQL --------------------------------------------------------------------------------------------


def start_postgres(workdir, user, tls=True):
    """The tests' throwaway PostgreSQL (scram-sha-256 on 127.0.0.1), with TLS on, as Heroku Postgres has.

    With TLS every new connection pays a handshake, as it does on Heroku (the control pays it per request,
    PgBouncer once per server connection); --no-tls shows the difference.
    """
    server = rs.Postgres(workdir / "postgres", user).start()
    if tls:
        data = server.data
        rs.run_as(
            user,
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-keyout",
                data / "server.key",
                "-out",
                data / "server.crt",
            ],
        )
        os.chmod(data / "server.key", 0o600)
        server.sql("ALTER SYSTEM SET ssl = on")
        server.sql("SELECT pg_reload_conf()")
        time.sleep(0.5)
    return server


def database_url(postgres, name):
    """A database owned by the app role; its URL as seen from inside a dyno (through the relay)."""
    postgres.create_database(name)
    return f"postgres://{rs.Postgres.APP_USER}:{rs.Postgres.APP_PASSWORD}@127.0.0.1:{PG_PORT_IN_DYNO}/{name}"


# --- dynos in namespaces ---------------------------------------------------------------------------------


class Dyno:
    """`bin/dyno TYPE` as the ordinary user, in namespaces of its own, with nsinit.py as their PID 1.

    start() returns at once; stop() sends SIGTERM (Heroku's shutdown), then kills the namespace, and always
    leaves nothing behind: the namespace's PID 1 is SIGKILLed if unshare ends, unshare is SIGKILLed if the
    benchmark ends, and the kernel kills every process of a PID namespace whose PID 1 is gone.
    """

    def __init__(self, name, project, process_type, env, user, rundir, postgres, mtu=1500, redis_port=None):
        self.name, self.project, self.process_type = name, Path(project), process_type
        self.redis_port = redis_port  # the host's redis-server, relayed to the namespace's 127.0.0.1:6379
        self.env, self.user, self.postgres, self.mtu = env, user, postgres, mtu
        self.rundir = Path(rundir)
        self.process = self.init_pid = self.router = None
        self.stopped = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def start(self):
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.rundir.chmod(0o700)  # the config holds the database password
        for stale in ("stats.json", "dyno.log"):
            (self.rundir / stale).unlink(missing_ok=True)
        host_netns = os.open("/proc/self/ns/net", os.O_RDONLY)
        config = {
            "host_netns_fd": host_netns,
            "pg_port": self.postgres.port,
            "listen_port": PG_PORT_IN_DYNO,
            "stats_path": str(self.rundir / "stats.json"),
            "log_path": str(self.rundir / "dyno.log"),
            "argv": [str(self.project / "bin" / "dyno"), self.process_type],
            "cwd": str(self.project),
            "env": self.env,
            "uid": self.user.uid,
            "gid": self.user.gid,
            "mtu": self.mtu,
            "redis_port": self.redis_port,
        }
        (self.rundir / "config.json").write_text(json.dumps(config))
        argv = [
            "unshare",
            "--mount",
            "--net",
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            "--kill-child",
            "--",
            sys.executable,
            str(BENCH / "nsinit.py"),
            str(self.rundir / "config.json"),
        ]
        with open(self.rundir / "init.log", "wb") as init_log:
            self.process = subprocess.Popen(
                argv,
                pass_fds=[host_netns],
                stdin=subprocess.DEVNULL,
                stdout=init_log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        os.close(host_netns)
        deadline = time.monotonic() + 10
        while self.init_pid is None and time.monotonic() < deadline:
            children = [pid for pid, (ppid, *_rest) in rs.process_table().items() if ppid == self.process.pid]
            self.init_pid = children[0] if children else None
            if self.process.poll() is not None:
                break
            time.sleep(0.01)
        if self.init_pid is None:
            self.fail("the namespace did not start")
        if self.process_type == "web" and ROUTER["enabled"]:
            self.start_router()
        return self

    def start_router(self):
        """router.py in the dyno's network namespace, outside its PID namespace: not one of the dyno's
        processes (its memory is not the dyno's), stopped with it. Its output goes to a file: a pipe nobody
        reads would stall it."""
        log_path = self.rundir / "router.log"
        with open(log_path, "wb") as router_log:
            self.router = subprocess.Popen(
                self.nsenter(
                    [sys.executable, BENCH / "router.py", "--listen", f"127.0.0.1:{ROUTER_PORT}"]
                    + ["--backend", f"127.0.0.1:{PORT}", "--directory", self.rundir / "router"]
                ),
                stdin=subprocess.DEVNULL,
                stdout=router_log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + 20
        while b"ready" not in log_path.read_bytes():
            if self.router.poll() is not None or time.monotonic() > deadline:
                self.fail(f"router.py did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.02)

    # -- looking in

    def stats(self, timeout=10):
        """The relay's counters and the command's start time (CLOCK_MONOTONIC) from nsinit.py."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return json.loads((self.rundir / "stats.json").read_text())
            except (OSError, ValueError):
                time.sleep(0.02)
        self.fail("nsinit.py wrote no stats")

    def reset_peak(self):
        os.kill(self.init_pid, signal.SIGUSR1)
        time.sleep(0.05)

    def inside(self, path):
        """A path in the dyno's own /tmp, seen from outside through its PID 1's root."""
        return Path(f"/proc/{self.init_pid}/root{path}")

    @property
    def output(self):
        try:
            return (self.rundir / "dyno.log").read_text(errors="replace")
        except OSError:
            return ""

    def fail(self, message):
        init = (self.rundir / "init.log").read_text(errors="replace") if (self.rundir / "init.log").exists() else ""
        raise rs.StackError(
            f"{self.name}: {message}\n--- nsinit\n{init[-2000:]}\n"
            f"--- bin/dyno {self.process_type}\n{self.output[-4000:]}"
        )

    def nsenter(self, argv):
        return ["nsenter", f"--target={self.init_pid}", "--net", "--mount", "--", *map(str, argv)]

    def run(self, argv, timeout):
        """Run a command in the dyno's network and /tmp (as root); returns its stdout, or fails."""
        result = subprocess.run(
            self.nsenter(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        if result.returncode != 0:
            self.fail(f"{argv[:3]} exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result.stdout

    def popen(self, argv, **options):
        return subprocess.Popen(
            self.nsenter(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
            **options,
        )

    def loadgen(self, *args, timeout=300):
        return json.loads(self.run([sys.executable, BENCH / "loadgen.py", *args], timeout))

    def pids(self):
        """Host pids of every process in the dyno's PID namespace."""
        try:
            namespace = os.readlink(f"/proc/{self.init_pid}/ns/pid")
        except OSError:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "ns" / "pid") == namespace:
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def memory(self):
        """RSS and PSS of the dyno's processes, by role; the harness (nsinit, bin/dyno) is kept apart."""
        processes = []
        table = rs.process_table()
        for pid in self.pids():
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            values = dict(re.findall(r"^(\w+):\s+(\d+) kB", rollup, re.M))
            command = table.get(pid, (0, 0, 0, ""))[3]
            processes.append(
                {
                    "pid": pid,
                    "role": role_of(pid, command, self.init_pid),
                    "command": command[:120],
                    "rss_mb": int(values.get("Rss", 0)) / 1024,
                    "pss_mb": int(values.get("Pss", 0)) / 1024,
                }
            )
        dyno = [p for p in processes if p["role"] != "harness"]
        by_role = {}
        for p in dyno:
            role = by_role.setdefault(p["role"], {"processes": 0, "rss_mb": 0.0, "pss_mb": 0.0})
            role["processes"] += 1
            role["rss_mb"] += p["rss_mb"]
            role["pss_mb"] += p["pss_mb"]
        return {
            "rss_mb": round(sum(p["rss_mb"] for p in dyno), 1),
            "pss_mb": round(sum(p["pss_mb"] for p in dyno), 1),
            "by_role": {
                k: {**v, "rss_mb": round(v["rss_mb"], 1), "pss_mb": round(v["pss_mb"], 1)} for k, v in by_role.items()
            },
            "harness_pss_mb": round(sum(p["pss_mb"] for p in processes if p["role"] == "harness"), 1),
            "processes": processes,
        }

    def cpu_seconds(self):
        """CPU seconds used so far by the dyno's processes, by role (procfs schedstat), with Django's
        share of the app's (BENCH_CPU's counters). Compared before and after
        a window: processes that end within it are not counted, so it is read at steady state."""
        table = rs.process_table()
        roles = {}
        for pid in self.pids():
            seconds = process_cpu_seconds(pid)
            if seconds is not None:
                role = role_of(pid, table.get(pid, (0, 0, 0, ""))[3], self.init_pid)
                roles[role] = roles.get(role, 0.0) + seconds
        counters = Path(f"/proc/{self.init_pid}/root/tmp/bench-cpu")
        roles["django"] = sum(struct.unpack("d", counter.read_bytes()[:8])[0] for counter in counters.glob("*"))
        return roles

    # -- waiting and stopping

    def wait_exit(self, timeout):
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"still running after {timeout} s")

    def stop(self, timeout=40):
        if self.stopped or self.process is None:
            return
        self.stopped = True
        if self.router is not None and self.router.poll() is None:
            self.router.kill()
            self.router.wait(10)
        if self.process.poll() is None and self.init_pid:
            try:
                os.kill(self.init_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.process.poll() is None:
            self.process.kill()  # --kill-child: the namespace's PID 1 goes too, and with it the rest
            self.process.wait(10)
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in self.pids():  # never reached in practice: a PID namespace dies with its PID 1
            os.kill(pid, signal.SIGKILL)


def process_cpu_seconds(pid):
    """Time a process has run on a CPU, all its threads, in seconds: the first field of each thread's
    /proc/PID/task/TID/schedstat (nanoseconds; utime and stime count 10 ms ticks). None once it is gone.
    https://docs.kernel.org/scheduler/sched-stats.html"""
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    total = 0
    for thread in threads:
        try:
            total += int((thread / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def role_of(pid, command, init_pid):
    words = command.split()
    program = Path(words[0]).name if words else ""
    if pid == init_pid or "bin/dyno" in command:
        # nsinit.py (relay, PID 1) and bin/dyno (the local stand-in for the buildpacks' bash start
        # scripts) are not processes of a Heroku dyno.
        return "harness"
    if program.startswith("nginx"):
        return "nginx"
    if program == "pgbouncer":
        return "pgbouncer"
    if program == "tail":
        return "log tail"
    return "app"


def start_web(name, project, env, user, workdir, postgres, ready_file=True, timeout=90, redis_port=None):
    """Start a web dyno and wait for its first 200; returns (dyno, start-up record)."""
    dyno = Dyno(name, project, "web", env, user, workdir / "ns" / name, postgres, redis_port=redis_port).start()
    try:
        args = ["wait", "--target", f"tcp:127.0.0.1:{PORT}", "--path", "/health/", "--timeout", str(timeout)]
        if ready_file:
            args += ["--ready-file", "/tmp/app-initialized"]
        waited = dyno.loadgen(*args, timeout=timeout + 30)
        if waited["first_200"] is None:
            dyno.fail(f"no 200 from /health/ within {timeout} s")
        started = dyno.stats()["command_started"]
        startup = {
            "ready_file_s": round(waited["ready_file"] - started, 3) if waited["ready_file"] else None,
            "first_200_s": round(waited["first_200"] - started, 3),
        }
    except BaseException:
        dyno.stop()
        raise
    return dyno, startup


def release(name, project, env, user, workdir, postgres):
    """The release phase (migrate), straight to PostgreSQL, as on Heroku."""
    with Dyno(name, project, "release", env, user, workdir / "ns" / name, postgres) as dyno:
        code = dyno.wait_exit(180)
        if code != 0:
            dyno.fail(f"the release phase exited {code}")


class Noise:
    """What the machine itself did during a window: pressure stall time (PSI) and CPU steal, in ms.

    The machine is shared: a neighbour's disk writes or CPU can freeze every process here for a while.
    `io_full_ms` is time in which every runnable task waited for I/O; `cpu_some_ms` includes this
    benchmark's own processes competing for the 2 cores, so it is only comparable between windows.
    """

    def __init__(self):
        self.start = self.read()

    @staticmethod
    def read():
        values = {}
        for resource in ("cpu", "io", "memory"):
            try:
                text = Path(f"/proc/pressure/{resource}").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                kind, *fields = line.split()
                values[f"{resource}_{kind}_ms"] = int(dict(f.split("=") for f in fields)["total"]) / 1000
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        values["steal_ms"] = int(fields[8]) * 1000 / os.sysconf("SC_CLK_TCK")
        return values

    def end(self):
        now = self.read()
        return {key: round(now[key] - self.start.get(key, 0), 1) for key in now if not key.startswith("cpu_full")}


def median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None
