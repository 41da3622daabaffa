"""The web workers are replaced when their memory grows past a limit, not every N requests.

gunicorn (`post_request` in config/gunicorn.conf.py, GUNICORN_MAX_WORKER_RSS_MB) and uWSGI (`reload-on-rss` in
config/uwsgi.ini) each started the way the Procfile does, outside a dyno, and sent sequential requests over
the socket: with the defaults no worker is replaced, however many requests it serves (max_requests used to
replace each worker every few seconds under load, at a fifth of the throughput: see README.md, "Where the time
went"); with the limit below any worker's size, every request ends with its worker replaced by a fresh one
that answers the next. The workers' resident memory is printed (pytest -s): it is what the 200 MB default is
measured against.

Runs as the ordinary user in this module's network namespace and /tmp (conftest.workdir), so the fixed
/tmp/nginx.socket and /tmp/app-initialized are this test's own.
"""

import os
import signal
import socket
import subprocess
import time

import pytest

import realstack as rs

REQUESTS = 40
# More than two gunicorn workers reached under the old default (max_requests 1000 + up to 500 each).
MANY_REQUESTS = 3200
# What each server logs once per worker it starts, the first ones included.
STARTED = {"gunicorn": "Booting worker with pid", "uwsgi": "spawned uWSGI worker"}  # "Respawned" too


def get_over_unix_socket(path, target="/health/", timeout=10):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        client.connect(str(path))
        client.sendall(f"GET {target} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        response = b""
        while chunk := client.recv(65536):
            response += chunk
    return response.decode(errors="replace")


def serve(project, user, workdir, baked_venv, server, env_extra, args, log):
    """Start the server as the Procfile does (plus `args`) and wait for /tmp/app-initialized."""
    (workdir / "tmp" / "app-initialized").unlink(missing_ok=True)
    env = {**rs.base_env(user, baked_venv), **env_extra}
    argv = {
        "gunicorn": [f"{baked_venv}/bin/gunicorn", "--config", "config/gunicorn.conf.py"],
        "uwsgi": [f"{baked_venv}/bin/uwsgi", "--ini", "config/uwsgi.ini"],
    }[server] + args
    command, kwargs = rs.user_command(user, argv)
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command,
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )
    deadline = time.monotonic() + 60
    while not (workdir / "tmp" / "app-initialized").exists():
        assert process.poll() is None, f"{server} exited {process.returncode}\n{log.read_text()}"
        assert time.monotonic() < deadline, f"not ready within 60 s\n{log.read_text()}"
        time.sleep(0.2)
    return process


def stop(process):
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


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
    ("server", "env_extra", "args", "replaced"),
    [
        pytest.param("gunicorn", {}, [], 0, id="gunicorn-default"),
        pytest.param("gunicorn", {"GUNICORN_MAX_WORKER_RSS_MB": "1"}, [], REQUESTS, id="gunicorn-1MB"),
        pytest.param("uwsgi", {}, [], 0, id="uwsgi-default"),
        # uWSGI replaces no worker younger than min-worker-lifetime (10 s): 1 s here, and the requests paced
        # 2 s apart (it counts a worker's age from a whole second).
        pytest.param("uwsgi", {}, ["--reload-on-rss", "1", "--min-worker-lifetime", "1"], 6, id="uwsgi-1MB"),
    ],
)
def test_workers_are_replaced_for_memory_not_request_count(
    projects, user, workdir, baked_venv, server, env_extra, args, replaced
):
    log = workdir / f"recycle-{server}-{len(env_extra) + len(args)}.log"
    process = serve(projects[server], user, workdir, baked_venv, server, env_extra, args, log)
    try:
        deadline = time.monotonic() + 30
        while len(workers_of(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        sizes = [round(resident_mb(pid)) for pid in workers_of(process.pid)]
        requests = {0: MANY_REQUESTS, REQUESTS: REQUESTS}.get(replaced, replaced)
        for number in range(requests):
            if "--min-worker-lifetime" in args:
                time.sleep(2.1)
            response = get_over_unix_socket(workdir / "tmp" / "nginx.socket")
            assert " 200 " in response.splitlines()[0], f"request {number}: {response[:300]}\n{log.read_text()}"
        sizes_after = [round(resident_mb(pid)) for pid in workers_of(process.pid)]
        # Each replaced worker is followed by the start of its replacement: wait for the last ones.
        deadline = time.monotonic() + 20
        while log.read_text().count(STARTED[server]) < 2 + replaced and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        started = log.read_text().count(STARTED[server])
        print(f"\nFIGURE {server} worker RSS MB: {sizes} at start, {sizes_after} after {requests} requests", flush=True)
        assert started == 2 + replaced, log.read_text()[-3000:]
        assert len(workers_of(process.pid)) == 2
    finally:
        stop(process)
