"""Shared fixtures: bake helpers, the answer matrix and one virtual environment for every bake."""

import hashlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = json.loads((ROOT / "cookiecutter.json").read_text())
SERVERS = CONTEXT["wsgi_server"]
POOL_MODES = CONTEXT["pgbouncer_pool_mode"]
# Debian's Python: the baked project must run on it, and unlike pyenv's (under /root) an ordinary user
# can execute it, which the real-stack tests need since PgBouncer and PostgreSQL refuse to run as root.
SYSTEM_PYTHON = os.environ.get("BAKED_PYTHON", "/usr/bin/python3")
VENV_CACHE = Path(os.environ.get("BAKED_VENV_CACHE", ROOT / ".cache"))

# Options outside the core matrix; each has its own tests (tests/test_options.py).
OPTION_BAKES = [
    {"cache": "redis", "task_broker": "redis", "use_s3_media": True},
    {"cache": "memcached"},
]

MATRIX = [
    {"wsgi_server": server, "pgbouncer_pool_mode": mode, "use_worker": worker}
    for server, mode, worker in itertools.product(SERVERS, POOL_MODES, (True, False))
]


def answers_id(answers):
    return "-".join(f"{key}={value}" for key, value in answers.items())


def bake(cookies, **answers):
    """Bake with `answers` on top of the defaults and assert a clean bake; returns the project path."""
    result = cookies.bake(extra_context=answers)
    assert result.exception is None, result.exception
    assert result.exit_code == 0
    return Path(result.project_path)


@pytest.fixture(scope="session")
def bake_once(cookies_session):
    """Bake each distinct set of answers once per session: bake_once(wsgi_server="uwsgi") -> Path."""
    baked = {}

    def bake_cached(**answers):
        key = json.dumps(answers, sort_keys=True)
        if key not in baked:
            baked[key] = bake(cookies_session, **answers)
        return baked[key]

    return bake_cached


def run(command, *, cwd=None, env=None, timeout=300, check=True, **kwargs):
    """subprocess.run with text output captured; on failure the assertion shows both streams."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    if check:
        assert result.returncode == 0, (
            f"{command} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def make_venv(python, requirement_files, name):
    """A virtual environment with every given requirements file installed, cached by their contents."""
    digest = hashlib.sha256(python.encode())
    for path in requirement_files:
        digest.update(path.read_bytes())
    venv = VENV_CACHE / f"{name}-{digest.hexdigest()[:12]}"
    if not (venv / "ready").exists():
        run([python, "-m", "venv", "--clear", str(venv)])
        for path in requirement_files:
            run(
                [str(venv / "bin/pip"), "install", "--quiet", "-r", str(path)],
                timeout=900,
            )
        (venv / "ready").touch()
    return venv


@pytest.fixture(scope="session")
def baked_venv(bake_once):
    """Debian's Python 3.11 with the requirements of every server choice: one venv for all bakes."""
    files = [bake_once(wsgi_server=server) / "requirements-dev.txt" for server in SERVERS]
    # The optional packages too, so that option bakes share the venv.
    files += [bake_once(**answers) / "requirements.txt" for answers in OPTION_BAKES]
    return make_venv(SYSTEM_PYTHON, files, "venv-py311")


@pytest.fixture(scope="session")
def venv_python(baked_venv):
    return str(baked_venv / "bin/python")


# --- the real stack: shared by test_stack, test_faults and test_restarts ------------------------------


@pytest.fixture(scope="module")
def user():
    """The ordinary user every dyno runs as: PgBouncer and PostgreSQL refuse root, as on Heroku."""
    import realstack

    missing = realstack.missing_tools()
    if missing:
        pytest.fail(f"the real-stack tests need these Debian packages: apt-get install {' '.join(missing)}")
    return realstack.ordinary_user()


@pytest.fixture(scope="module")
def workdir(request, user):
    """A directory the dyno user owns, for one test module's projects, PostgreSQL and logs."""
    path = Path(tempfile.mkdtemp(prefix=f"heroku-django-{request.module.__name__}-"))
    user.chown(path)
    yield path
    if os.environ.get("STACK_KEEP"):  # keep the projects and the dynos' logs to look at
        print(f"\nstack files kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres(workdir, user):
    """A throwaway PostgreSQL server on 127.0.0.1 with password authentication, like Heroku Postgres."""
    import realstack

    server = realstack.Postgres(workdir / "postgres", user).start()
    yield server
    server.stop()
