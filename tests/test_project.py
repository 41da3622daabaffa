"""Deep tests per server: the baked project installs, passes its own tests and is production-ready."""

import os
import pwd
import shutil
import subprocess
from pathlib import Path

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


def python_version_of(python):
    """'3.13' for a working interpreter, None for anything else."""
    try:
        result = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def homes():
    """Our home, and under sudo the invoking user's: their pyenv or uv Pythons count too."""
    found = [Path.home()]
    if os.environ.get("SUDO_USER"):
        try:
            found.append(Path(pwd.getpwnam(os.environ["SUDO_USER"]).pw_dir))
        except KeyError:
            pass
    return found


def find_python(version):
    """Python `version` wherever a user would have it: pyenv's versions, uv's managed Pythons, then
    python<version> on PATH. Each candidate is run to check its version; None when there is none."""
    candidates = []
    pyenv_roots = [os.environ.get("PYENV_ROOT")] + [home / ".pyenv" for home in homes()]
    for root in filter(None, pyenv_roots):
        candidates += sorted(Path(root).glob(f"versions/{version}*/bin/python{version}"), reverse=True)
    uv = shutil.which("uv")
    if uv:
        result = subprocess.run([uv, "python", "find", version], capture_output=True, text=True, timeout=60)
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    uv_dirs = [
        os.environ.get("UV_PYTHON_INSTALL_DIR"),
        os.environ.get("XDG_DATA_HOME") and f"{os.environ['XDG_DATA_HOME']}/uv/python",
    ]
    uv_dirs += [home / ".local/share/uv/python" for home in homes()]
    for directory in filter(None, uv_dirs):
        candidates += sorted(Path(directory).glob(f"cpython-{version}.*/bin/python{version}"), reverse=True)
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(Path(on_path))
    return next((str(path) for path in candidates if python_version_of(path) == version), None)


def production_python(version):
    """The interpreter for `version`; without one, skip saying how to get it, or fail under CI=true:
    our CI machines have it, so coverage of the production Python must not quietly disappear."""
    python = find_python(version)
    if python:
        return python
    message = (
        f"python{version} (the baked .python-version, what Heroku runs) is not installed: not in pyenv, "
        f"uv's Pythons or on PATH; install it with `uv python install {version}` or `pyenv install {version}`"
    )
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{message} (CI=true: CI must run this test)")
    pytest.skip(message)


def test_baked_tests_pass_on_the_production_python(bake_once):
    """The .python-version Heroku installs (3.13), from pyenv, uv or PATH."""
    project = bake_once()
    version = (project / ".python-version").read_text().strip()
    python = production_python(version)
    venv = make_venv(python, [project / "requirements-dev.txt"], f"venv-py{version}")
    result = run(
        [str(venv / "bin/python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=clean_environ(),
    )
    assert " passed" in result.stdout


# --- finding the production Python ---------------------------------------------------------------------


def fake_python(path, version):
    """An executable at `path` that answers the version probe like Python `version` would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def no_pythons(monkeypatch, tmp_path):
    """Nothing to find: no pyenv, no uv, an empty PATH and home."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("PYENV_ROOT", raising=False)
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.delenv("UV_PYTHON_INSTALL_DIR", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    "place",
    [
        "{home}/.pyenv/versions/3.13.2/bin/python3.13",
        "{home}/.local/share/uv/python/cpython-3.13.1-linux-x86_64-gnu/bin/python3.13",
        "{path}/python3.13",
    ],
    ids=["pyenv", "uv", "path"],
)
def test_production_python_is_found_where_users_keep_it(no_pythons, place):
    home, path = no_pythons / "home", no_pythons / "empty-bin"
    python = fake_python(Path(place.format(home=home, path=path)), "3.13")
    assert find_python("3.13") == str(python)


def test_a_python_of_another_version_is_not_taken(no_pythons):
    fake_python(no_pythons / "empty-bin/python3.13", "3.12")
    assert find_python("3.13") is None


@pytest.mark.parametrize("ci", [None, "true"])
def test_missing_production_python_skips_with_how_to_get_it_or_fails_under_ci(no_pythons, monkeypatch, ci):
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome) as raised:
        production_python("3.13")
    assert "python3.13" in str(raised.value) and "uv python install 3.13" in str(raised.value)
