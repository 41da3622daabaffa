"""Deep tests per server: the baked project installs, passes its own tests and is production-ready."""

import os
import shlex
import shutil
import sys
import time
import tomllib

import pytest

import realstack
import sidroot
from conftest import SERVERS, SYSTEM_PYTHON, TEST_DIR, figure, open_dir, run

PRODUCTION = {
    "DYNO": "web.1",
    "DJANGO_SECRET_KEY": "a-production-secret-of-more-than-fifty-characters-0123456789abcdef",
    # Settings only parse it: nothing connects during `check`.
    "DATABASE_URL": "postgres://user:password@127.0.0.1:6000/db1",
    # Required on Heroku by the S3 media and Redis broker options; ignored by the other bakes.
    "AWS_STORAGE_BUCKET_NAME": "bucket",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    # Without them the email checks warn (tests/test_email.py).
    "EMAIL_HOST": "smtp.example.com",
    "DEFAULT_FROM_EMAIL": "noreply@example.com",
}


def clean_environ(**extra):
    """What a Heroku build has: no DYNO, no DATABASE_URL, no secret; only the basics."""
    environ = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    environ.update(extra)
    return environ


@pytest.fixture(params=SERVERS)
def project(request, bake_once):
    return bake_once(wsgi_server=request.param)


def test_baked_tests_pass_on_debian_python(project, venv_python):
    result = run(
        [venv_python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=clean_environ(),
    )
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_check_deploy_is_clean_with_production_settings(project, venv_python):
    result = run(
        [venv_python, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=project,
        env=clean_environ(**PRODUCTION),
    )
    assert "System check identified no issues" in result.stdout


def test_collectstatic_at_build_time_needs_no_config_vars(project, venv_python):
    run(
        [venv_python, "manage.py", "collectstatic", "--noinput"],
        cwd=project,
        env=clean_environ(),
    )
    manifest = (project / "staticfiles/staticfiles.json").read_text()
    assert '"site.css": "site.' in manifest
    # whitenoise's compressed copies, which it serves to clients that accept them
    assert list((project / "staticfiles").glob("site.*.css.gz"))


@pytest.mark.parametrize("secret", [None, "", " "], ids=["unset", "empty", "blank"])
def test_missing_secret_stops_the_app_on_heroku(bake_once, venv_python, secret):
    project = bake_once()
    environ = clean_environ(**PRODUCTION)
    environ.pop("DJANGO_SECRET_KEY")
    if secret is not None:
        environ["DJANGO_SECRET_KEY"] = secret
    result = run([venv_python, "manage.py", "check"], cwd=project, env=environ, check=False)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_ruff_formats_for_the_oldest_python_the_bake_runs_on(bake_once, tmp_path):
    """Not for .python-version's 3.14: with that target ruff's formatter drops the parentheses of
    `except (A, B):` (PEP 758), and Debian 12's Python 3.11, which runs the bake locally and in the real-stack
    tests, no longer compiles it."""
    project = copy_project(bake_once(), tmp_path / "app")
    assert tomllib.loads((project / "pyproject.toml").read_text())["tool"]["ruff"]["target-version"] == "py311"
    run([sys.executable, "-m", "ruff", "format", "--no-cache", "--target-version", "py314", "."], cwd=project)
    compiled = run([SYSTEM_PYTHON, "-m", "compileall", "-q", "."], cwd=project, check=False)
    assert compiled.returncode != 0 and "SyntaxError" in compiled.stdout, compiled.stdout


@pytest.fixture(scope="session")
def production_root():
    """A root with the baked .python-version (tests/sidroot.py), built on the first run on a machine."""
    if os.geteuid() != 0:
        pytest.fail("the production Python lives in a Debian root of its own, which needs root: sudo bash .ci/run")
    started = time.monotonic()
    with realstack.host_network():  # debootstrap needs the Debian archive
        root = sidroot.python_root(open_dir(TEST_DIR))
    seconds = time.monotonic() - started
    figure(f"Python {sidroot.VERSION} root ready (debootstrap when not cached)", f"{seconds:.0f} s")
    return root


@pytest.mark.stack  # builds the root: not in the quick `bake` set (conftest.py)
def test_the_root_has_the_baked_python(bake_once, production_root):
    """Heroku installs what .python-version names; the root runs that version, not Debian 12's."""
    version = (bake_once() / ".python-version").read_text().strip()
    assert version == sidroot.VERSION
    reported = sidroot.run(production_root, f"{sidroot.PYTHON} -c 'import sys; print(sys.version)'").stdout
    assert reported.startswith(f"{version}."), reported


def copy_project(project, destination):
    shutil.copytree(
        project, destination, ignore=shutil.ignore_patterns(".venv", "staticfiles", "__pycache__", "*.sqlite3")
    )
    return destination


def web_command(project):
    """The Procfile's web command without the buildpacks' wrappers (no nginx, no PgBouncer here)."""
    processes = dict(line.split(": ", 1) for line in (project / "Procfile").read_text().splitlines() if line)
    words = processes["web"].split()
    assert words[:2] == ["bin/start-nginx", "bin/start-pgbouncer"], words
    return " ".join(words[2:])


GET_HEALTH = """
import socket, sys, time
deadline = time.monotonic() + 60
while True:
    try:
        open("/tmp/app-initialized").close()
        break
    except FileNotFoundError:
        if time.monotonic() > deadline:
            sys.exit("no /tmp/app-initialized within 60 s")
        time.sleep(0.2)
with socket.socket(socket.AF_UNIX) as client:
    client.settimeout(10)
    client.connect("/tmp/nginx.socket")
    client.sendall(b"GET /health/ HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n")
    response = b""
    while chunk := client.recv(65536):
        response += chunk
print(response.decode())
"""

RUN_A_TASK = """
from django_q.tasks import async_task, result
task = async_task("math.floor", 7.5)
print("result:", result(task, wait=60000))
"""


@pytest.mark.parametrize("server", SERVERS)
def test_production_python_runs_the_bake(bake_once, production_root, postgres, tmp_path, server):
    """On the production Python, Heroku's way: requirements-dev.txt installs (pip compiles uWSGI, psycopg is
    its binary build), the baked tests pass; against PostgreSQL, migrate, the Procfile's server answers /health/
    over its socket with the database up, and django-q2's qcluster runs a task the app enqueued."""
    project = copy_project(bake_once(wsgi_server=server, use_worker=True, task_broker="orm"), tmp_path / "app")
    venv = tmp_path / "venv"
    with realstack.host_network():  # pip needs PyPI
        sidroot.run(
            production_root,
            f"{sidroot.PYTHON} -m venv {venv} && {venv}/bin/pip install --quiet --disable-pip-version-check "
            "-r requirements-dev.txt",
            binds=[tmp_path],
            cwd=project,
            timeout=1800,
        )
    probe = "import sys, psycopg; print(sys.version.split()[0], psycopg.pq.__impl__)"
    version, impl = sidroot.run(
        production_root, f"{venv}/bin/python -c {shlex.quote(probe)}", binds=[tmp_path]
    ).stdout.split()
    assert version.startswith(f"{sidroot.VERSION}.") and impl == "binary"
    env = {"PATH": f"{venv}/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    tests = sidroot.run(
        production_root, "python -m pytest -q -p no:cacheprovider", binds=[tmp_path], cwd=project, env=env
    )
    assert " passed" in tests.stdout and "failed" not in tests.stdout

    env["DATABASE_URL"] = postgres.create_database(f"py314_{server}")
    sidroot.run(production_root, "python manage.py migrate --noinput", binds=[tmp_path], cwd=project, env=env)
    serve = f"({web_command(project)} > {tmp_path}/web.log 2>&1 &) && python -c {shlex.quote(GET_HEALTH)}"
    result = sidroot.run(production_root, serve, binds=[tmp_path], cwd=project, env=env, timeout=300, check=False)
    log = (tmp_path / "web.log").read_text()
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n--- {server}\n{log}"
    assert result.stdout.startswith("HTTP/1.") and " 200 " in result.stdout.splitlines()[0], result.stdout + log
    assert '"database": "postgresql"' in result.stdout

    qcluster = f"(python manage.py qcluster > {tmp_path}/qcluster.log 2>&1 &)"
    work = f"{qcluster} && python manage.py shell -c {shlex.quote(RUN_A_TASK)}"
    result = sidroot.run(production_root, work, binds=[tmp_path], cwd=project, env=env, timeout=300, check=False)
    log = (tmp_path / "qcluster.log").read_text()
    assert "result: 7" in result.stdout, f"{result.stdout}\n{result.stderr}\n--- qcluster\n{log}"
