"""The web workers are replaced when their memory grows past a limit, not every N requests.

gunicorn (`post_request` in config/gunicorn.conf.py, GUNICORN_MAX_WORKER_RSS_MB) and uWSGI (`reload-on-rss` in
config/uwsgi.ini) each started the way the Procfile does, outside a dyno, and sent sequential requests over
the socket: with the defaults no worker is replaced, however many requests it serves (max_requests used to
replace each worker every few seconds under load, at a fifth of the throughput: see benchmarks/README.md,
"Where the time went"); with the limit below any worker's size, every request ends with its worker replaced
by a fresh one that answers the next. The workers' resident memory goes to the run's "figures" summary: it
is what the 200 MB default is measured against.

Runs as the ordinary user in this module's network namespace and /tmp (conftest.workdir), so the fixed
/tmp/nginx.socket and /tmp/app-initialized are this test's own.
"""

import os
import time

import pytest

import realstack as rs
from conftest import figure

REQUESTS = 40
# More than two gunicorn workers reached under the old default (max_requests 1000 + up to 500 each).
MANY_REQUESTS = 3200
# What each server logs once per worker it starts, the first ones included.
STARTED = {"gunicorn": "Booting worker with pid", "uwsgi": "spawned uWSGI worker"}  # "Respawned" too


def serve(project, user, workdir, baked_venv, server, env_extra, args, log):
    """Start the server as the Procfile does (plus `args`) and wait for /tmp/app-initialized."""
    argv = {
        "gunicorn": [f"{baked_venv}/bin/gunicorn", "--config", "config/gunicorn.conf.py"],
        "uwsgi": [f"{baked_venv}/bin/uwsgi", "--ini", "config/uwsgi.ini"],
    }[server] + args
    # Two workers, as Heroku's Python buildpack gives a 512 MB dyno (outside a dyno each server runs one).
    env = {**rs.base_env(user, baked_venv), "WEB_CONCURRENCY": "2", **env_extra}
    return rs.start_session_as(
        user, argv, cwd=project, env=env, log=log, ready_file=workdir / "tmp" / "app-initialized"
    )


def workers_of(master):
    return [pid for pid, (ppid, *_rest) in rs.process_table().items() if ppid == master]


def resident_mb(pid):
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.fixture(scope="module")
def projects(bake_once, baked_venv, user, workdir):
    return {
        server: rs.prepare_project(bake_once(wsgi_server=server), workdir / server, user, baked_venv, build=False)
        for server in STARTED
    }


@pytest.mark.parametrize(
    ("server", "env_extra", "args", "requests", "pause", "replaced"),
    [
        pytest.param("gunicorn", {}, [], MANY_REQUESTS, 0, 0, id="gunicorn-default"),
        pytest.param("gunicorn", {"GUNICORN_MAX_WORKER_RSS_MB": "1"}, [], REQUESTS, 0, REQUESTS, id="gunicorn-1MB"),
        pytest.param("uwsgi", {}, [], MANY_REQUESTS, 0, 0, id="uwsgi-default"),
        # uWSGI replaces no worker younger than min-worker-lifetime (10 s): 1 s here, and the requests paced
        # 2 s apart (it counts a worker's age from a whole second).
        pytest.param("uwsgi", {}, ["--reload-on-rss", "1", "--min-worker-lifetime", "1"], 6, 2.1, 6, id="uwsgi-1MB"),
    ],
)
def test_workers_are_replaced_for_memory_not_request_count(
    projects, user, workdir, baked_venv, server, env_extra, args, requests, pause, replaced
):
    log = workdir / f"recycle-{server}-{len(env_extra) + len(args)}.log"
    process = serve(projects[server], user, workdir, baked_venv, server, env_extra, args, log)
    try:
        deadline = time.monotonic() + 30
        while len(workers_of(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        sizes = [round(resident_mb(pid)) for pid in workers_of(process.pid)]
        for number in range(requests):
            time.sleep(pause)
            response = rs.get_over_unix_socket(workdir / "tmp" / "nginx.socket")
            assert " 200 " in response.splitlines()[0], f"request {number}: {response[:300]}\n{log.read_text()}"
        sizes_after = [round(resident_mb(pid)) for pid in workers_of(process.pid)]
        # Each replaced worker is followed by the start of its replacement: wait for the last ones.
        deadline = time.monotonic() + 20
        while log.read_text().count(STARTED[server]) < 2 + replaced and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        started = log.read_text().count(STARTED[server])
        figure(f"{server} worker RSS MB", f"{sizes} at start, {sizes_after} after {requests} requests")
        assert started == 2 + replaced, log.read_text()[-3000:]
        assert len(workers_of(process.pid)) == 2
    finally:
        rs.stop_session(process)
