"""The options outside the core matrix: each bakes valid files, passes its tests, and works for real."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

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
def service(command, port, env=None):
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, env=env
    )
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


MEMCACHIER_USER, MEMCACHIER_PASSWORD = "mc-user", "mc-Pass_word-1"


@pytest.fixture(scope="module")
def sasl_memcached():
    """Debian's memcached with SASL authentication required (-S), as MemCachier has it: Cyrus SASL's PLAIN
    mechanism against a sasldb made with saslpasswd2 (Debian package sasl2-bin)."""
    directory = Path(tempfile.mkdtemp(prefix="heroku-django-sasl-"))
    try:
        directory.chmod(0o755)  # memcached reads the sasldb after dropping to nobody
        sasldb = directory / "sasldb2"
        subprocess.run(
            ["saslpasswd2", "-p", "-a", "memcached", "-c", "-f", str(sasldb), MEMCACHIER_USER],
            input=MEMCACHIER_PASSWORD,
            text=True,
            check=True,
        )
        sasldb.chmod(0o644)
        (directory / "memcached.conf").write_text(f"mech_list: plain\nsasldb_path: {sasldb}\n")
        port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        command = ["memcached", "-S", "-l", "127.0.0.1", "-p", str(port), "-U", "0", *user]
        with service(command, port, env={**os.environ, "SASL_CONF_PATH": str(directory)}):
            yield f"127.0.0.1:{port}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_memcachier_cache_round_trip_through_sasl(bake_once, venv_python, sasl_memcached):
    """django-bmemcached 0.3.0 and python-binary-memcached, as pinned, on Django 5.2: set and get through SASL."""
    project = bake_once(cache="memcached")
    output = cache_round_trip(
        project,
        venv_python,
        MEMCACHIER_SERVERS=sasl_memcached,
        MEMCACHIER_USERNAME=MEMCACHIER_USER,
        MEMCACHIER_PASSWORD=MEMCACHIER_PASSWORD,
    )
    assert output.split() == ["django_bmemcached.memcached.BMemcached", "hello"]


@pytest.mark.parametrize("password", ["wrong-password", None], ids=["wrong-password", "no-credentials"])
def test_memcachier_refuses_a_client_without_the_password(bake_once, venv_python, sasl_memcached, password):
    """The round trip above really went through SASL: the same server refuses bad or missing credentials."""
    project = bake_once(cache="memcached")
    environ = {"MEMCACHIER_SERVERS": sasl_memcached}
    if password:
        environ |= {"MEMCACHIER_USERNAME": MEMCACHIER_USER, "MEMCACHIER_PASSWORD": password}
    code = "from django.core.cache import cache; cache.set('greeting', 'hello', 30); print(cache.get('greeting'))"
    result = run(
        [venv_python, "manage.py", "shell", "-c", code], cwd=project, env=project_environ(**environ), check=False
    )
    # python-binary-memcached raises on the refused authentication: a cache error, not a silent miss.
    assert result.returncode != 0, result.stdout
    assert "MemcachedException: Code: 32 Message: b'Auth failure.'" in result.stderr, result.stderr


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
                "from django_q.tasks import async_task; async_task('example.tasks.compute_example', 'via-redis')",
            ],
            cwd=project,
            env=environ,
        )
        probe = "from example.models import ExampleResult; print(ExampleResult.objects.filter(key='via-redis').count())"
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
