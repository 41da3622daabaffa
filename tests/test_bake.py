"""Every combination of answers bakes, and what it bakes parses: no template left, the right files."""

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

from conftest import MATRIX, ROOT, SCHEMA_FILES, SERVERS, answers_id, bake, run

SCHEMAS = SCHEMA_FILES
SERVER_FILES = {
    "gunicorn": "config/gunicorn.conf.py",
    "uwsgi": "config/uwsgi.ini",
    "waitress": "config/serve_waitress.py",
}
WEB_COMMANDS = {
    # The Python buildpack sets GUNICORN_CMD_ARGS=--access-logfile -, which gunicorn applies over its config
    # file: every request would be logged twice, once by nginx and once by gunicorn.
    "gunicorn": "bin/start-nginx bin/start-pgbouncer env -u GUNICORN_CMD_ARGS "
    "gunicorn --config config/gunicorn.conf.py",
    "uwsgi": "bin/start-nginx bin/start-pgbouncer uwsgi --ini config/uwsgi.ini",
    "waitress": "bin/start-nginx bin/start-pgbouncer python config/serve_waitress.py",
}
TEMPLATE_MARKER = re.compile(r"\{\{ *cookiecutter|\{%-? *[a-z]+[^%]*cookiecutter\.|cookiecutter\.[a-z_]+ *\}\}")
JINJA_TAG = re.compile(r"\{%-? *(if|elif|else|endif|for|endfor|set|raw|endraw)\b")


def parse_procfile(path):
    processes = {}
    for line in path.read_text().splitlines():
        name, separator, command = line.partition(":")
        assert separator and re.fullmatch(r"[a-z]+", name), f"not a Procfile line: {line!r}"
        assert name not in processes, f"{name} defined twice"
        processes[name] = command.strip()
    return processes


def text_files(project):
    for path in project.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path, path.read_text()


@pytest.fixture(params=MATRIX, ids=answers_id)
def baked(request, cookies):
    return request.param, bake(cookies, **request.param)


def test_no_template_markers_survive(baked):
    _, project = baked
    for path, text in text_files(project):
        assert not TEMPLATE_MARKER.search(text), f"template marker left in {path}"
        # Django templates legitimately use {% if %}; nothing else in the bake should.
        if "templates" not in path.parts:
            assert not JINJA_TAG.search(text), f"Jinja tag left in {path}"


def test_only_the_chosen_servers_files(baked):
    answers, project = baked
    for server, path in SERVER_FILES.items():
        assert (project / path).exists() == (server == answers["wsgi_server"]), path
    requirements = (project / "requirements.txt").read_text().lower()
    for server in SERVERS:
        assert (f"\n{server}==" in requirements) == (server == answers["wsgi_server"])
    assert ("django-q2==" in requirements) == answers["use_worker"]


def test_procfile_process_types(baked):
    answers, project = baked
    processes = parse_procfile(project / "Procfile")
    expected = {
        "release": "python manage.py migrate_release --noinput",
        "web": WEB_COMMANDS[answers["wsgi_server"]],
    }
    if answers["use_worker"]:
        expected["worker"] = "bin/start-pgbouncer python manage.py qcluster"
    assert processes == expected
    # bin/start-nginx re-splits its arguments on whitespace: no quoting would survive.
    assert not re.search(r"[\"'\\$]", processes["web"])


@pytest.mark.parametrize("schema_path", SCHEMAS, ids=lambda path: path.name)
def test_app_json_validates(baked, schema_path):
    answers, project = baked
    app = json.loads((project / "app.json").read_text())
    jsonschema.validate(app, json.loads(schema_path.read_text()))
    assert app["stack"] == "heroku-24"
    assert [pack["url"] for pack in app["buildpacks"]] == [
        "heroku/python",
        "heroku/pgbouncer",
        "heroku-community/nginx",
    ]
    assert app["env"]["DJANGO_SECRET_KEY"]["generator"] == "secret"
    assert app["env"]["PGBOUNCER_POOL_MODE"]["value"] == answers["pgbouncer_pool_mode"]
    assert int(app["env"]["PGBOUNCER_DEFAULT_POOL_SIZE"]["value"]) > 1
    assert any(addon["plan"].startswith("heroku-postgresql:") for addon in app["addons"])
    assert set(app["formation"]) == ({"web", "worker"} if answers["use_worker"] else {"web"})
    assert "pytest" in app["environments"]["test"]["scripts"]["test"]


def test_python_parses_and_lints(baked):
    _, project = baked
    for path in project.rglob("*.py"):
        ast.parse(path.read_text(), filename=str(path))
    run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=project)
    run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."],
        cwd=project,
    )


def test_heroku_build_files(baked):
    answers, project = baked
    python_version = (project / ".python-version").read_text().strip()
    assert python_version == "3.14"
    # ruff formats for the oldest Python the bake runs on, Debian 12's (tests/test_project.py shows why).
    ruff = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["target-version"] == "py311"
    package_manager_files = {
        "requirements.txt",
        "Pipfile.lock",
        "poetry.lock",
        "uv.lock",
        "Pipfile",
        "runtime.txt",
    }
    assert {path.name for path in project.iterdir()} & package_manager_files == {"requirements.txt"}
    for line in (project / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][0-9A-Za-z.]*", line), f"unpinned: {line}"
    assert (project / "requirements-dev.txt").read_text().splitlines()[1] == "-r requirements.txt"
    recorded = json.loads((project / ".cookiecutter.json").read_text())
    assert {key: recorded[key] for key in answers} == answers
    assert not any(key.startswith("_") for key in recorded)
    assert (project / "bin/dyno").stat().st_mode & 0o111


def test_nginx_conf_renders_and_nginx_accepts_it(cookies, tmp_path):
    project = bake(cookies)
    environ = {
        "PATH": "/usr/bin:/bin:/usr/sbin",
        "PORT": "5555",
        "NGINX_CLIENT_MAX_BODY_SIZE": "1m",
    }
    rendered = subprocess.run(
        ["erb", str(project / "config/nginx.conf.erb")],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "listen 5555;" in rendered and "client_max_body_size 1m;" in rendered
    assert "<%" not in rendered
    (tmp_path / "logs/nginx").mkdir(parents=True)
    (tmp_path / "nginx.conf").write_text(rendered)
    shutil.copy("/etc/nginx/mime.types", tmp_path / "mime.types")
    result = run(
        [
            "nginx",
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
            "-e",
            "stderr",
        ]
    )
    assert "test is successful" in result.stderr


# What varies with the answers lives in whole files that the post-generation hook keeps or removes; a file
# that needs more than a handful of conditionals wants to be two files (STYLE.md, "whole files, not lines").
HANDFUL = 5
JINJA_IF = re.compile(r"\{%-? *if\b")


def test_template_files_hold_a_handful_of_conditionals_at_most():
    counts = {
        path.relative_to(ROOT): len(JINJA_IF.findall(path.read_text()))
        for path in (ROOT / "{{cookiecutter.project_slug}}").rglob("*")
        if path.is_file() and "templates" not in path.parts
    }
    assert counts[Path("{{cookiecutter.project_slug}}/README.md")] > 0  # the pattern finds them
    too_many = {str(path): count for path, count in counts.items() if count > HANDFUL}
    assert not too_many, f"more than {HANDFUL} conditionals: move what one answer needs into its own file: {too_many}"


def test_template_tree_has_no_stray_files():
    project_template = ROOT / "{{cookiecutter.project_slug}}"
    stray = [path for path in project_template.rglob("*") if path.name in {"__pycache__", "db.sqlite3", "staticfiles"}]
    assert not stray, stray


ENVIRON_READS = [
    re.compile(r"""os\.environ(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]*)["']"""),  # Python
    re.compile(r"""env_(?:bool|list|addresses)\(\s*["']([A-Z][A-Z0-9_]*)["']"""),  # settings helpers
    re.compile(r"""ENV\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""),  # erb
    re.compile(r"\$\(([A-Z][A-Z0-9_]*)\)|if-not-env = ([A-Z][A-Z0-9_]*)"),  # uWSGI ini
]


def test_every_environment_variable_is_in_the_readme_table(baked):
    """In README.md's table, or in the table of the docs/ file of the option that reads it."""
    _, project = baked
    readme = "\n".join(path.read_text() for path in [project / "README.md", *project.glob("docs/*.md")])
    table = {
        name
        for row in readme.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1])
    }
    sources = [*project.glob("config/*"), *(path for path in project.rglob("*.py") if "tests" not in path.parts)]
    read = set()
    for path in sources:
        for pattern in ENVIRON_READS:
            read |= {
                name
                for match in pattern.findall(path.read_text())
                for name in (match if isinstance(match, tuple) else (match,))
                if name
            }
    assert read, "the patterns found no environment reads at all"
    assert read - table == set(), f"read but not documented in README.md or docs/: {sorted(read - table)}"


def test_template_code_is_lint_clean():
    """The template's own hooks, tests, benchmarks and scripts, with ruff.toml's rules."""
    code = ["hooks", "tests", "benchmarks", "scripts"]
    run([sys.executable, "-m", "ruff", "check", "--no-cache", *code], cwd=ROOT)
    run([sys.executable, "-m", "ruff", "format", "--check", "--no-cache", *code], cwd=ROOT)
