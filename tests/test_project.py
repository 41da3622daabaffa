"""Deep tests per server: the baked project installs, passes its own tests and is production-ready."""

import os
import subprocess

import pytest

from conftest import SERVERS, make_venv, run

PRODUCTION = {
    "DYNO": "web.1",
    "DJANGO_SECRET_KEY": "a-production-secret-of-more-than-fifty-characters-0123456789abcdef",
    # Settings only parse it: nothing connects during `check`.
    "DATABASE_URL": "postgres://user:password@127.0.0.1:6000/db1",
    # Required on Heroku by the S3 media and Redis broker options; ignored by the other bakes.
    "AWS_STORAGE_BUCKET_NAME": "bucket",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
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


def test_baked_tests_pass_on_the_production_python(bake_once):
    """The .python-version Heroku installs (3.13), from pyenv."""
    project = bake_once()
    version = (project / ".python-version").read_text().strip()
    python = subprocess.run(
        ["pyenv", "which", f"python{version}"],
        env={**os.environ, "PYENV_VERSION": version},
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert python, f"Python {version} is not installed through pyenv"
    venv = make_venv(python, [project / "requirements-dev.txt"], f"venv-py{version}")
    result = run(
        [str(venv / "bin/python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=clean_environ(),
    )
    assert " passed" in result.stdout
