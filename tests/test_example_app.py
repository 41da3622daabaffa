"""The example app is the user's to delete: its folder and one line each in settings.py and urls.py, and
the project still passes its own tests and `check --deploy` with production settings, / and app.json's
success_url answer a page that says the app runs; the runtime layer (heroku_runtime) does not import it."""

import ast
import json
import shutil

import pytest
from test_project import PRODUCTION, clean_environ

from conftest import run

EXAMPLE_LINES = {
    "settings.py": '    "example",',
    "urls.py": '    path("", include("example.urls")),',
}


@pytest.fixture(scope="module")
def without_example(bake_once, tmp_path_factory):
    source = bake_once()
    project = tmp_path_factory.mktemp("no-example") / source.name
    shutil.copytree(source, project, symlinks=True)
    shutil.rmtree(project / "example")
    package = project / source.name
    for name, start in EXAMPLE_LINES.items():
        lines = (package / name).read_text().splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith(start)]
        assert len(lines) - len(kept) == 1, f"{name}: not exactly one line starts with {start!r}"
        (package / name).write_text("".join(kept))
    return project


def test_the_runtime_layer_does_not_import_the_example(bake_once):
    for path in (bake_once() / "heroku_runtime").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(name.split(".")[0] == "example" for name in names), f"{path} imports the example app"


def test_the_project_tests_pass_without_the_example(without_example, venv_python):
    result = run(
        [venv_python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=without_example, env=clean_environ()
    )
    assert " passed" in result.stdout and "failed" not in result.stdout
    assert "example" not in {path.name for path in without_example.iterdir()}


def test_check_deploy_is_clean_without_the_example(without_example, venv_python):
    result = run(
        [venv_python, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=without_example,
        env=clean_environ(**PRODUCTION),
    )
    assert "System check identified no issues" in result.stdout


def test_migrations_and_health_without_the_example(without_example, venv_python):
    """No migration of the example's is left behind; /health/ still answers, and so do / and app.json's
    success_url (the Deploy Button's "View app"): a page that says the app runs and where a view goes."""
    success_url = json.loads((without_example / "app.json").read_text())["success_url"]
    code = (
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('migrate', verbosity=0); from django.test import Client; client = Client(HTTP_HOST='localhost'); "
        "response = client.get('/health/'); print('HEALTH', response.status_code, response.json()['status']); "
        "import sys; [print('PAGE', url, (r := client.get(url)).status_code, r.content.decode().replace(chr(10), ' ')) "
        "for url in sys.argv[1:]]"
    )
    environ = clean_environ(DJANGO_SETTINGS_MODULE=f"{without_example.name}.settings")
    result = run([venv_python, "-c", code, "/", success_url], cwd=without_example, env=environ)
    assert "HEALTH 200 ok" in result.stdout, result.stdout
    pages = [line.split(" ", 3) for line in result.stdout.splitlines() if line.startswith("PAGE ")]
    assert [(url, status) for _, url, status, _ in pages] == [("/", "200"), (success_url, "200")], result.stdout
    urls_module = f"<code>{without_example.name}/urls.py</code>"
    for _, url, _, html in pages:
        assert "<h1>My Heroku App runs</h1>" in html and "nothing of yours answers this address yet" in html, url
        assert urls_module in html and "startapp" in html, url
