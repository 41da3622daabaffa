import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    # The manifest storage needs collectstatic's output; tests render templates without running it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def fresh_settings():
    """Evaluate an expression over freshly imported settings, in a new interpreter with the given environment.

    Settings are read once per process, so each environment needs its own interpreter. Returns the
    expression's value (JSON) or raises AssertionError with the process's stderr when the import fails.
    """

    def evaluate(expression, **environ):
        clean = {key: value for key, value in os.environ.items() if key not in {"DYNO", "CI", "DJANGO_SECRET_KEY"}}
        clean.update(environ)
        code = (
            "import json, django; django.setup(); from django.conf import settings; "
            f"print(json.dumps({expression}, default=str))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=PROJECT_DIR, env=clean, capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            raise AssertionError(result.stderr)
        return json.loads(result.stdout.splitlines()[-1])

    return evaluate
