"""Restarts the way Heroku does them, on the real stack: SIGTERM to every process of a dyno, SIGKILL 30 s later.

bin/dyno (as an ordinary user, against a throwaway PostgreSQL) sends SIGTERM to the dyno's whole process
group at once, as Heroku does, and SIGKILL to whatever is left 30 s later; realstack.Dyno.stop() measures
how long that took and lists any process left behind.

- worker: idle and in the middle of tasks, repeatedly, every process exits well inside the 30 s, a task
  that can finish in the shutdown window is finished and acknowledged, and one that cannot runs again
  after the restart: every task enqueued is done in the end, none twice.
- web, per server: requests in flight when SIGTERM lands. Through nginx none gets a response (nginx exits
  at once on SIGTERM, which the buildpack does not change); the server itself must still finish them:
  the ones sent straight to its socket get their response and every one's work is done.

The figures go to the run's "figures" summary and the baked docs/reliability.md, "Deploys and restarts".
"""

import hashlib
import http.client
import json
import re
import socket
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest

import realstack as rs
from conftest import SERVERS, figure

GRACE = 30  # Heroku's SIGTERM-to-SIGKILL period; bin/dyno sends SIGKILL after it too
WORKER_EXIT = 10  # what the worker dyno must stay under, idle or busy
SECRET_KEY = "restart-test-" + "k" * 60
HTTPS = {"X-Forwarded-Proto": "https", "Host": "localhost"}  # what Heroku's router adds
# Short enough that the test sees redelivery: a cut task runs again Q_RETRY s after it was fetched.
WORKER_VARS = {"Q_WORKERS": 6, "Q_TIMEOUT": 14, "Q_RETRY": 16}
SHUTDOWN_TIMEOUT = 6  # the qcluster command's default Q_SHUTDOWN_TIMEOUT
SHORT_TASK, LONG_TASK = 2, 10  # seconds: shorter and longer than SHUTDOWN_TIMEOUT
IDLE_RUNS, BUSY_RUNS, WEB_RUNS = 5, 5, 3
WEB_TASK = 3  # seconds each in-flight request runs (the example task, run inline with Q_SYNC)
APP_SOCKET = "/tmp/nginx.socket"  # where every server listens, behind nginx (fixed by the nginx buildpack)


def log(message):
    what, detail = message.split(": ", 1)
    figure(f"restarts, {what}", detail)


def app_json_vars(project):
    app = json.loads((project / "app.json").read_text())
    return {key: spec["value"] for key, spec in app["env"].items() if "value" in spec}


def manage(user, project, venv, env, *args, timeout=120):
    """manage.py straight against PostgreSQL, as the release phase and one-off dynos run it."""
    return rs.run_as(user, [f"{venv}/bin/python", "manage.py", *args], env=env, cwd=project, timeout=timeout)


def set_up(bake_once, baked_venv, user, workdir, postgres, name, build, **answers):
    project = rs.prepare_project(bake_once(**answers), workdir / name, user, baked_venv, build=build)
    url = postgres.create_database(f"restarts_{name}")
    env = rs.base_env(user, baked_venv, DJANGO_SECRET_KEY=SECRET_KEY, DATABASE_URL=url, **app_json_vars(project))
    manage(user, project, baked_venv, env, "migrate", "--noinput")  # the release phase
    return project, env, f"restarts_{name}"


def assert_clean_stop(record, output, limit, what):
    assert record["elapsed"] < limit, f"{what}: took {record['elapsed']:.1f} s to stop\n{output[-4000:]}"
    assert "sending SIGKILL" not in output, f"{what}: something outlived the {GRACE} s\n{output[-4000:]}"
    assert record["returncode"] == 0, f"{what}: bin/dyno exited {record['returncode']}\n{output[-4000:]}"
    assert not record["leftovers"], f"{what}: processes left behind: {record['leftovers']}"


# --- worker ---------------------------------------------------------------------------------------------

ENQUEUE = """
from django_q.tasks import async_task
for key, seconds in {tasks!r}:
    async_task("example.tasks.compute_example", key, seconds, task_name=f"restart-{{key}}")
"""


@pytest.fixture(scope="module")
def worker(bake_once, baked_venv, user, workdir, postgres):
    project, env, database = set_up(bake_once, baked_venv, user, workdir, postgres, "worker", build=False)
    env.update({key: str(value) for key, value in WORKER_VARS.items()})
    return project, env, database


def run_worker(worker, user, postgres, workdir, name, before_stop, meanwhile=None):
    """Start the worker dyno, call meanwhile() while it boots, wait for the cluster to run, call
    before_stop(dyno), then SIGTERM it all. Returns the stop record and the dyno's output."""
    project, env, _database = worker
    with rs.Dyno(project, "worker", env, user, workdir / f"{name}.log", postgres) as dyno:
        if meanwhile:
            meanwhile()
        dyno.wait_for(lambda: re.search(r"Q Cluster .* running\.", dyno.output), "the cluster to run", timeout=60)
        before_stop(dyno)
        record = dyno.stop()
    return record, dyno.output


def enqueue(worker, user, baked_venv, tasks):
    project, env, _database = worker
    manage(user, project, baked_venv, env, "shell", "-c", ENQUEUE.format(tasks=tasks))


def query(postgres, worker, sql):
    return postgres.sql(sql, worker[2])


def done(postgres, worker, keys):
    listed = ", ".join(f"'{key}'" for key in keys)
    rows = query(postgres, worker, f"SELECT key, digest, runs FROM example_exampleresult WHERE key IN ({listed})")
    return {key: (digest, int(runs)) for key, digest, runs in rows}


def test_idle_worker_stops_at_once(worker, user, postgres, workdir):
    """SIGTERM to every process of an idle worker dyno: all of it exits, every time, in a few seconds."""
    times = []
    for run in range(IDLE_RUNS):
        # Into the cluster's guard loop, where django-q2's own command hangs: its sentinel waits on the stop event.
        record, output = run_worker(worker, user, postgres, workdir, f"worker-idle-{run}", lambda dyno: time.sleep(1))
        assert_clean_stop(record, output, WORKER_EXIT, f"idle run {run}")
        assert "qcluster stopped in" in output, output[-3000:]
        times.append(record["elapsed"])
    log(f"worker idle: exit after SIGTERM in {', '.join(f'{t:.1f}' for t in times)} s")


def test_busy_worker_stops_in_time_and_loses_no_task(worker, user, postgres, workdir, baked_venv):
    """In the middle of tasks: the short one finishes and is acknowledged before the dyno exits, the long
    one is cut at Q_SHUTDOWN_TIMEOUT and runs again after the restart. In the end every task is done once."""
    times, short_keys, long_keys = [], [], []
    for run in range(BUSY_RUNS):
        short, long = f"short-{run}-{uuid.uuid4().hex[:8]}", f"long-{run}-{uuid.uuid4().hex[:8]}"
        short_keys.append(short)
        long_keys.append(long)

        def enqueue_both(short=short, long=long):
            enqueue(worker, user, baked_venv, [(short, SHORT_TASK), (long, LONG_TASK)])

        def both_running(dyno, short=short, long=long):
            dyno.wait_for(
                lambda: f"processing restart-{short} " in dyno.output and f"processing restart-{long} " in dyno.output,
                f"tasks {short} and {long} to start",
                timeout=30,
            )

        record, output = run_worker(worker, user, postgres, workdir, f"worker-busy-{run}", both_running, enqueue_both)
        assert_clean_stop(record, output, WORKER_EXIT, f"busy run {run}")
        times.append(record["elapsed"])
        finished = done(postgres, worker, [short, long])
        assert short in finished, f"busy run {run}: the short task did not finish before exit\n{output[-4000:]}"
        acknowledged = query(postgres, worker, f"SELECT success FROM django_q_task WHERE name = 'restart-{short}'")
        assert acknowledged == [["t"]], f"busy run {run}: the short task's result was not saved: {acknowledged}"
        assert long not in finished, f"busy run {run}: a {LONG_TASK} s task finished inside the shutdown window?"
        assert f"still running {SHUTDOWN_TIMEOUT} s after the signal" in output, output[-4000:]
    log(f"worker busy: exit after SIGTERM in {', '.join(f'{t:.1f}' for t in times)} s")

    # The restart: the cut tasks are delivered again once their Q_RETRY lock expires, and run to the end.
    everything = short_keys + long_keys
    started = time.monotonic()

    def all_done(dyno):
        dyno.wait_for(lambda: len(done(postgres, worker, everything)) == len(everything), "every task", timeout=90)

    record, output = run_worker(worker, user, postgres, workdir, "worker-restart", all_done)
    log(f"worker restart: every cut task done {time.monotonic() - started:.0f} s after the restart")
    assert_clean_stop(record, output, WORKER_EXIT, "restart run")
    for key, (digest, runs) in done(postgres, worker, everything).items():
        assert digest == hashlib.sha256(key.encode()).hexdigest()
        assert runs == 1, f"{key} ran to the end {runs} times"
    assert query(postgres, worker, "SELECT count(*) FROM django_q_ormq") == [["0"]], "tasks left in the queue"


# --- web ------------------------------------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP to the WSGI server's own socket, bypassing nginx."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def post(connection, path, headers, body):
    """Status of the response, or the name of the error that took its place."""
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException) as error:
        return type(error).__name__
    finally:
        connection.close()


@pytest.fixture(scope="module", params=SERVERS)
def web(request, bake_once, baked_venv, user, workdir, postgres):
    server = request.param
    project, env, database = set_up(
        bake_once, baked_venv, user, workdir, postgres, f"web_{server}", build=True, wsgi_server=server
    )
    # Q_SYNC runs the example task inside the request: a request that takes WEB_TASK seconds and writes a row.
    env.update(Q_SYNC="true", WEB_CONCURRENCY="4", PORT=str(rs.free_port()))
    return server, project, env, database


def in_flight_run(dyno, port):
    """Two requests through nginx and two straight to the server, each WEB_TASK s long; SIGTERM the dyno
    while they run. Returns the stop record, {key: route} and {key: status or error name}."""
    dyno.wait_http(port)
    status, headers, body = rs.http_request(port, "GET", "/", HTTPS)
    assert status == 200
    cookie = next(c.split(";")[0] for c in headers["set-cookie"] if c.startswith("csrftoken="))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)[1].decode()
    form_headers = {
        **HTTPS,
        "Cookie": cookie,
        "Referer": "https://localhost/",
        "Origin": "https://localhost",
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    }
    routes = {
        "nginx": lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=GRACE),
        # The dyno's /tmp is its stack's own directory (realstack.StackNamespace): the socket is there.
        "direct": lambda: UnixHTTPConnection(str(dyno.tmp / Path(APP_SOCKET).name), GRACE),
    }
    requests = {f"{route}-{i}-{uuid.uuid4().hex[:8]}": route for route in routes for i in range(2)}
    results = {}

    def send(key, route):
        form = urlencode({"key": key, "seconds": WEB_TASK, "csrfmiddlewaretoken": token}).encode()
        results[key] = post(routes[route](), "/tasks/example/", form_headers, form)

    threads = [threading.Thread(target=send, args=item) for item in requests.items()]
    for thread in threads:
        thread.start()
    time.sleep(1.5)  # every request is inside Django by now, in the task's sleep
    record = dyno.stop()
    for thread in threads:
        thread.join(GRACE)
    return record, requests, results


def test_web_stops_after_finishing_requests_in_flight(web, user, postgres, workdir):
    server, project, env, database = web
    port = int(env["PORT"])
    for run in range(WEB_RUNS):
        with rs.Dyno(project, "web", env, user, workdir / f"web-{server}-{run}.log", postgres) as dyno:
            record, requests, results = in_flight_run(dyno, port)
        output = dyno.output
        assert_clean_stop(record, output, GRACE, f"{server} run {run}")
        finished = {key for (key,) in postgres.sql("SELECT key FROM example_exampleresult", database)}
        answered = {route: 0 for route in set(requests.values())}
        for key, route in requests.items():
            answered[route] += results.get(key) == 202
        work = sum(1 for key in requests if key in finished)
        log(
            f"web {server} run {run}: stopped in {record['elapsed']:.1f} s; responses to in-flight requests: "
            f"through nginx {answered['nginx']}/2, straight to the server {answered['direct']}/2; "
            f"work finished {work}/{len(requests)}; {results}"
        )
        assert work == len(requests), f"{server}: requests cut off in the middle: {sorted(set(requests) - finished)}"
        assert answered["direct"] == 2, f"{server}: the server cut requests in flight: {results}\n{output[-3000:]}"
        # nginx exits at once on SIGTERM; if this starts failing, update docs/reliability.md, "Deploys and restarts".
        assert answered["nginx"] == 0, f"nginx answered requests in flight after SIGTERM: {results}"
