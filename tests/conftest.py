"""Shared fixtures: bake helpers, the answer matrix and one virtual environment for every bake."""

import fcntl
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = json.loads((ROOT / "cookiecutter.json").read_text())
SERVERS = CONTEXT["wsgi_server"]
POOL_MODES = CONTEXT["pgbouncer_pool_mode"]
# The app.json schemas the bakes are validated against, vendored with their sources (schemas/README.md).
SCHEMA_FILES = sorted((ROOT / "tests" / "schemas").glob("*.schema.json"))
# Debian's Python: the baked project must run on it, and unlike pyenv's (under /root) an ordinary user
# can execute it, which the real-stack tests need since PgBouncer and PostgreSQL refuse to run as root.
SYSTEM_PYTHON = os.environ.get("BAKED_PYTHON", "/usr/bin/python3")
# What the dyno user runs or reads (the baked venv, the stacks' projects) must not live in the checkout:
# a clone under /root or a home directory (mode 700) is closed to that user. /var/tmp is open to every
# user and survives reboots, so the venvs cached there stay useful; each run's stack files go at its end.
TEST_DIR = Path(os.environ.get("HEROKU_DJANGO_TEST_DIR", f"/var/tmp/heroku-django-tests-{os.geteuid()}"))
VENV_CACHE = Path(os.environ.get("BAKED_VENV_CACHE", TEST_DIR / "venvs"))
STACKS_DIR = TEST_DIR / "stacks"
STALE = 2 * 24 * 3600  # seconds after which an unused cached venv, or a crashed run's stack files, go

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


def open_dir(path):
    """`path` created if missing, readable by every user, writable by us alone (we run what is in it as
    root, so a directory someone else made or can write to is refused)."""
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise RuntimeError(
            f"{path} belongs to uid {info.st_uid} or is writable by others; remove it or set HEROKU_DJANGO_TEST_DIR"
        )
    os.chmod(path, 0o755)
    return path


def prune(directory, keep=None):
    """Remove the subdirectories of `directory` (and their .lock files), except `keep`, unused for STALE s."""
    for entry in directory.iterdir():
        try:
            stale = entry.is_dir() and time.time() - entry.stat().st_mtime > STALE
        except FileNotFoundError:
            continue
        if stale and entry != keep:
            shutil.rmtree(entry, ignore_errors=True)
            Path(f"{entry}.lock").unlink(missing_ok=True)


def make_venv(python, requirement_files, name):
    """A virtual environment with every given requirements file installed, cached by their contents.

    Concurrent test runs share the cache: a lock file per venv makes the second wait for the first."""
    import realstack

    digest = hashlib.sha256(python.encode())
    for path in requirement_files:
        digest.update(path.read_bytes())
    venv = open_dir(VENV_CACHE) / f"{name}-{digest.hexdigest()[:12]}"
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "ready").exists():
            with realstack.host_network():  # pip needs PyPI, out of a stack's namespace
                run([python, "-m", "venv", "--clear", str(venv)])
                for path in requirement_files:
                    run(
                        [str(venv / "bin/pip"), "install", "--quiet", "-r", str(path)],
                        timeout=900,
                    )
            (venv / "ready").touch()
        os.utime(venv)  # in use: keeps prune() away from it
    prune(VENV_CACHE, keep=venv)
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
    """A directory the dyno user owns, for one test module's projects, PostgreSQL and logs, and the module's
    own network and /tmp (realstack.StackNamespace): from here on the module's tests run in that network."""
    import realstack

    prune(open_dir(STACKS_DIR))  # left by runs that crashed
    path = Path(tempfile.mkdtemp(prefix=f"{request.module.__name__}-", dir=STACKS_DIR))
    user.chown(path)
    # Processes the module starts as the dyno user without a cwd of their own inherit ours; a checkout under
    # /root or a home (mode 700) is closed to that user, and PostgreSQL's programs then fail to find
    # themselves ("could not change directory"). The module's own directory is open to it.
    back = os.getcwd()
    os.chdir(path)
    try:
        with realstack.StackNamespace(path):
            yield path
    finally:
        os.chdir(back)
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


# --- two sets: the bake tests, and the tests that start real processes --------------------------------
# A test is in `stack` when it uses a fixture that builds a virtual environment, a root or a server, and in
# `bake` otherwise: `pytest -m bake tests` is the maintainers' loop of a few minutes (CONTRIBUTING.md).
STACK_FIXTURES = {
    "baked_venv",
    "user",
    "fresh_root",
    "tarball",
    "buildpack_uv",
    "redis_server",
    "sasl_memcached",
    "production_root",
}


# Measured figures (`FIGURE what: ...` lines) go in the running test's user_properties, which pytest-xdist's
# workers send to the controller with each report, and are printed together at the end of the run: a worker's
# stdout (print, even with -s) is never shown.
_RUNNING = {}
_FIGURES = []


def figure(what, detail=None, **figures):
    """Record `FIGURE what: detail`, or `FIGURE what: key=value, ...` (floats to 2 places), for the summary."""
    if detail is None:
        detail = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    _RUNNING["item"].user_properties.append(("figure", f"FIGURE {what}: {detail}"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    _RUNNING["item"] = item


def pytest_runtest_logreport(report):
    if report.when == "teardown":  # its user_properties hold those of set-up, call and teardown
        _FIGURES.extend(value for name, value in report.user_properties if name == "figure")


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        terminalreporter.section("figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


def pytest_configure(config):
    config.addinivalue_line("markers", "bake: bakes and checks files, hooks and rendered text; starts no server")
    config.addinivalue_line("markers", "stack: builds a venv or a root, or boots real servers (minutes each)")


def pytest_collection_modifyitems(items):
    for item in items:
        heavy = STACK_FIXTURES & set(getattr(item, "fixturenames", ()))
        item.add_marker(pytest.mark.stack if heavy or item.get_closest_marker("stack") else pytest.mark.bake)
