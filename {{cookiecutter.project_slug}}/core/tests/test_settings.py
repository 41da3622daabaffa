"""Settings are read once per process, so each case imports them in a fresh interpreter."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
SETTINGS = os.environ.get("DJANGO_SETTINGS_MODULE", "")


def load_settings(**environ):
    clean = {key: value for key, value in os.environ.items() if key not in {"DYNO", "CI", "DJANGO_SECRET_KEY"}}
    clean.update(environ)
    code = f"import {SETTINGS} as s; print(s.DEBUG, s.SECRET_KEY[:16], getattr(s, 'SECURE_SSL_REDIRECT', False))"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, env=clean, capture_output=True, text=True, timeout=60
    )


def test_runs_locally_with_no_environment():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    debug, key, redirect = result.stdout.split()
    assert (debug, redirect) == ("True", "False")
    assert key.startswith("django-insecure")


@pytest.mark.parametrize("secret", ["", "   "])
def test_refuses_to_start_on_heroku_without_the_secret_key(secret):
    result = load_settings(DYNO="web.1", DJANGO_SECRET_KEY=secret)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_production_settings_on_heroku():
    result = load_settings(DYNO="web.1", DJANGO_SECRET_KEY="x" * 64)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "x" * 16, "True"]
