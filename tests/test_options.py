"""The options outside the core matrix: each bakes valid files, passes its tests, and works for real."""

import json
import os
import signal
import socket
import subprocess
import time
from contextlib import contextmanager

import jsonschema
import pytest

from conftest import OPTION_BAKES, SCHEMA_FILES, answers_id, run

SCHEMAS = [json.loads(path.read_text()) for path in SCHEMA_FILES]
ADDONS = {"redis": "heroku-redis:mini", "memcached": "memcachier:dev"}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, process, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{process.args[0]} exited with {process.returncode}"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port} after {seconds} s")


@contextmanager
def service(command, port):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_for_port(port, process)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def redis_server():
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with service(command, port):
        yield f"redis://127.0.0.1:{port}/0"


def project_environ(**extra):
    environ = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return {**environ, **extra}


@pytest.mark.parametrize("answers", OPTION_BAKES, ids=answers_id)
def test_option_bakes_valid_files_and_passes_its_tests(bake_once, venv_python, answers):
    project = bake_once(**answers)
    app = json.loads((project / "app.json").read_text())
    for schema in SCHEMAS:
        jsonschema.validate(app, schema)
    plans = {addon["plan"] for addon in app["addons"]}
    if answers.get("cache", "none") != "none":
        assert ADDONS[answers["cache"]] in plans
    if answers.get("task_broker") == "redis":
        assert ADDONS["redis"] in plans
    asks_for_s3 = {"AWS_STORAGE_BUCKET_NAME", "AWS_SECRET_ACCESS_KEY"} <= set(app["env"])
    assert asks_for_s3 == answers.get("use_s3_media", False)
    run([venv_python, "-m", "ruff", "check", "--no-cache", "."], cwd=project)
    result = run([venv_python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=project_environ())
    assert " passed" in result.stdout


def cache_round_trip(project, venv_python, **environ):
    code = (
        "from django.core.cache import cache; from django.conf import settings; "
        "cache.set('greeting', 'hello', 30); print(settings.CACHES['default']['BACKEND'], cache.get('greeting'))"
    )
    # The last line: Django's shell may first say how many objects it imported.
    result = run([venv_python, "manage.py", "shell", "-c", code], cwd=project, env=project_environ(**environ))
    return result.stdout.splitlines()[-1]


def test_redis_cache_round_trip(bake_once, venv_python, redis_server):
    project = bake_once(**OPTION_BAKES[0])
    output = cache_round_trip(project, venv_python, REDIS_URL=redis_server)
    assert output.split() == ["django.core.cache.backends.redis.RedisCache", "hello"]


def test_memcached_cache_round_trip(bake_once, venv_python):
    project = bake_once(cache="memcached")
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    with service(["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", *user], port):
        output = cache_round_trip(project, venv_python, MEMCACHIER_SERVERS=f"127.0.0.1:{port}")
    assert output.split() == ["django_bmemcached.memcached.BMemcached", "hello"]


def test_redis_broker_runs_a_task(bake_once, venv_python, redis_server, tmp_path):
    """A task enqueued through Redis is picked up by a real qcluster and its result lands in the database."""
    project = bake_once(**OPTION_BAKES[0])
    environ = project_environ(REDIS_URL=redis_server, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", Q_POLL="0.2")
    run([venv_python, "manage.py", "migrate", "--noinput"], cwd=project, env=environ)
    cluster = subprocess.Popen(
        [venv_python, "manage.py", "qcluster"],
        cwd=project,
        env=environ,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run(
            [
                venv_python,
                "manage.py",
                "shell",
                "-c",
                "from django_q.tasks import async_task; async_task('core.tasks.compute_example', 'via-redis')",
            ],
            cwd=project,
            env=environ,
        )
        probe = "from core.models import ExampleResult; print(ExampleResult.objects.filter(key='via-redis').count())"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            count = run([venv_python, "manage.py", "shell", "-c", probe], cwd=project, env=environ).stdout.split()[-1]
            if count == "1":
                break
            assert cluster.poll() is None, cluster.stdout.read()
            time.sleep(0.5)
        else:
            raise AssertionError("the task enqueued through Redis never ran")
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)
        try:
            cluster.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait(timeout=5)
