"""The baked README and docs/ of every combination of answers read true for those answers.

For each combination: every table is well formed, every link to a file in the bake resolves and every
docs/ file is linked, every `bin/...` and `manage.py` command shown exists in that bake (with the options
shown), every environment variable named is read by the project, and no sentence names an option that was
not chosen. The connection_budget example is run and its output compared with what the README shows.
"""

import ast
import itertools
import json
import os
import re
import shutil
from functools import cache

import pytest

from conftest import CONTEXT, answers_id, bake, run

# Every question with a fixed set of answers, from cookiecutter.json: lists are choices, booleans yes/no.
CHOICE_KEYS = [key for key, value in CONTEXT.items() if not key.startswith("_") and isinstance(value, (list, bool))]


def valid(answers):
    """The hook refuses the Redis broker without the worker (tests/test_hooks.py checks that refusal)."""
    return not (answers["task_broker"] == "redis" and not answers["use_worker"])


ALL_ANSWERS = [
    answers
    for answers in (
        dict(zip(CHOICE_KEYS, values, strict=True))
        for values in itertools.product(
            *([True, False] if isinstance(CONTEXT[key], bool) else CONTEXT[key] for key in CHOICE_KEYS)
        )
    )
    if valid(answers)
]

# bin/dyno's own commands besides a Procfile process type (`bin/dyno run COMMAND`, `bin/dyno reset`).
DYNO_SUBCOMMANDS = {"run", "reset"}
# Scripts the buildpacks put into the app at build time (heroku/pgbouncer, heroku-community/nginx in app.json).
BUILDPACK_SCRIPTS = {"bin/start-pgbouncer", "bin/start-nginx"}
# Variables the README names that the project hands to other programs rather than reading itself.
READ_ELSEWHERE = {
    "PGOPTIONS": "libpq (the release phase's lock_timeout)",
    "AWS_ACCESS_KEY_ID": "boto3, from the environment",
    "AWS_SECRET_ACCESS_KEY": "boto3, from the environment",
    "FORWARDED_ALLOW_IPS": "gunicorn; the Python buildpack exports it on every dyno, and bin/dyno does too",
    "UV_PYTHON_DOWNLOADS": "uv (docs/uv.md)",
    "UV_PYTHON": "uv: the Python every uv command uses (README.md, docs/uv.md)",
    "HOME": "the shell: where the README puts uv's own virtualenv",
}
ENVIRON_READS = [
    re.compile(r"""environ(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]*)["']"""),  # os.environ.get("X"), environ["X"]
    re.compile(r"""\benv(?:\.get|\.setdefault)?\(\s*["']([A-Z][A-Z0-9_]*)["']"""),  # bin/dyno's env dict
    re.compile(r"""\benv\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\](?!\s*=[^=])"""),  # env["X"] read, not assigned
    re.compile(r"""["']([A-Z][A-Z0-9_]*)["'] (?:not )?in (?:env|os\.environ)\b"""),
    re.compile(r"""env_(?:bool|list|addresses|seconds)\(\s*["']([A-Z][A-Z0-9_]*)["']"""),  # settings helpers
    re.compile(r"""ENV\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""),  # erb
    re.compile(r"\$\(([A-Z][A-Z0-9_]*)\)|if-(?:not-)?env = ([A-Z][A-Z0-9_]*)"),  # uWSGI ini
    re.compile(r"\benv -u ([A-Z][A-Z0-9_]*)"),  # Procfile: removed on purpose
]

# A project's README is read in a few minutes; what happens when, and measurements, go to docs/.
README_MAX_LINES = 200
# Words that tell how the template changed, which means nothing to a project's owner.
HISTORY = [r"\bused to\b", r"\bBefore:", r"^Now:"]

# Phrases that belong to one answer only; none may appear in a bake without that answer.
SERVER_NAMES = {"gunicorn": r"\bgunicorn\b", "uwsgi": r"\buwsgi\b", "waitress": r"\bwaitress\b"}
PHRASES = {
    "worker": [r"django-q2", r"qcluster", r"\bQ_[A-Z]", r"\bworker dyno", r"bin/dyno worker", r"\btasks?\b"],
    "broker=orm": [r"\borm broker", r"broker-orm", r"Q_CLUSTER\[\"orm\"\]"],
    "broker=redis": [r"\bredis broker", r"broker-redis", r"Q_CLUSTER\[\"redis\"\]"],
    "cache=redis": [r"\bredis cache", r"RedisCache", r"cache-redis"],
    "cache=memcached": [r"memcach"],
    "redis": [r"\bredis\b", r"Key-Value Store"],
    "s3": [r"\bS3\b", r"django-storages", r"\bAWS_", r"boto3", r"s3-media"],
    # A uv bake has no requirements files and no pip venv (docs/pip.md names uv only to say how to switch).
    "pip": [r"requirements-dev\.txt", r"pip install -r", r"\.venv/bin/pip"],
}


def chosen(answers):
    """The phrase groups this bake may use."""
    worker = answers["use_worker"]
    groups = {
        "worker": worker,
        "broker=orm": worker and answers["task_broker"] == "orm",
        "broker=redis": worker and answers["task_broker"] == "redis",
        "cache=redis": answers["cache"] == "redis",
        "cache=memcached": answers["cache"] == "memcached",
        "s3": answers["use_s3_media"],
        "pip": answers["package_manager"] == "pip",
    }
    groups["redis"] = groups["cache=redis"] or groups["broker=redis"]
    return groups


@pytest.fixture(scope="module")
def cookies_module(cookies_session):
    return cookies_session


def markdown_files(project):
    return [project / "README.md", *sorted((project / "docs").glob("*.md"))]


def code_spans(text):
    """Fenced blocks and inline code: where commands and variable assignments are shown."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return fenced + re.findall(r"`([^`\n]+)`", prose)


def blocks(text):
    """Paragraphs, list items and tables: the units a sentence lives in."""
    for chunk in re.split(r"\n\s*\n", text):
        yield from re.split(r"\n(?=\s*(?:[-*]|\d+\.) )", chunk)


def tables(text):
    lines = text.splitlines()
    in_code = False
    current = []
    for line in [*lines, ""]:
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("|"):
            current.append(line)
        elif current:
            yield current
            current = []


def cells(row):
    assert row.startswith("|") and row.rstrip().endswith("|"), f"a table row starts and ends with |: {row!r}"
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip()[1:-1])]


def variables_named(text):
    named = set()
    for table in tables(text):
        if cells(table[0])[0] == "Variable":
            for row in table[2:]:
                named |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", cells(row)[0]))
    for code in code_spans(text):
        named |= set(re.findall(r"(?<![\w$./-])([A-Z][A-Z0-9_]+)=", code))
        named |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)\b", code))
    return named


def variables_read(project):
    sources = [
        path
        for path in project.rglob("*")
        if path.is_file()
        and path.suffix != ".md"
        and "tests" not in path.parts
        and ".github" not in path.parts
        and path.name not in {".cookiecutter.json", "app.json", ".env.example"}
    ]
    read = set()
    for path in sources:
        text = path.read_text()
        for pattern in ENVIRON_READS:
            read |= {name for match in pattern.findall(text) for name in ([match] if isinstance(match, str) else match)}
    # bin/dyno reads PGBOUNCER_<KEY> for every key of its table of the buildpack's defaults.
    dyno = ast.parse((project / "bin/dynolib/pgbouncer.py").read_text())
    for node in dyno.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PGBOUNCER_DEFAULTS":
            read |= {f"PGBOUNCER_{key.value.upper()}" for key in node.value.keys}
    return read - {""}


def environ():
    return {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}


@cache
def management_help(python, project, command=None):
    arguments = ["help", "--commands"] if command is None else [command, "--help"]
    return run([python, "manage.py", *arguments], cwd=project, env=environ()).stdout


@pytest.mark.parametrize("answers", ALL_ANSWERS, ids=answers_id)
def test_baked_docs_are_true_for_the_answers(cookies, answers):
    project = bake(cookies, **answers)
    texts = {path: path.read_text() for path in markdown_files(project)}
    procfile_types = {line.partition(":")[0] for line in (project / "Procfile").read_text().splitlines()}
    read = variables_read(project) | set(READ_ELSEWHERE)
    groups = chosen(answers)
    problems = []
    linked = set()
    for path, text in texts.items():
        name = path.relative_to(project)
        assert "{{" not in text and "{%" not in text, f"template left in {name}"
        # Tables: a header, a separator, and every row with the header's number of cells.
        for table in tables(text):
            width = len(cells(table[0]))
            if len(table) < 2 or not all(re.fullmatch(r":?-{3,}:?", cell) for cell in cells(table[1])):
                problems.append(f"{name}: table without a separator row: {table[0]}")
            for row in table[1:]:
                if len(cells(row)) != width:
                    problems.append(f"{name}: {len(cells(row))} cells, header has {width}: {row[:90]}")
        # Links to files of the bake resolve.
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", text):
            resolved = (path.parent / target).resolve()
            linked.add(resolved)
            if not resolved.exists():
                problems.append(f"{name}: link to {target}, which this bake does not have")
        # Commands shown exist in this bake.
        for code in code_spans(text):
            for script in re.findall(r"(?<![\w./-])(bin/[\w.-]+)", code):
                if script not in BUILDPACK_SCRIPTS and not os.access(project / script, os.X_OK):
                    problems.append(f"{name}: {script} is not an executable file of this bake")
            for process_type in re.findall(r"(?<![\w./-])bin/dyno(?: --dry-run)? ([a-z]+)", code):
                if process_type not in procfile_types | DYNO_SUBCOMMANDS:
                    problems.append(f"{name}: bin/dyno {process_type}, but the Procfile has no {process_type}:")
        # Environment variables named are read.
        for variable in sorted(variables_named(text) - read):
            problems.append(f"{name}: names {variable}, which nothing in this bake reads")
        # No block names an option that was not chosen.
        for block in blocks(text):
            for group, allowed in groups.items():
                for phrase in PHRASES[group]:
                    if not allowed and re.search(phrase, block, flags=re.I):
                        problems.append(f"{name}: names {group} ({phrase}) in: {block.strip()[:120]!r}")
            named = {server for server, pattern in SERVER_NAMES.items() if re.search(pattern, block, flags=re.I)}
            # A block naming every server compares them (measurements across servers); otherwise only the chosen.
            if named - {answers["wsgi_server"]} and named != set(SERVER_NAMES):
                problems.append(f"{name}: names {sorted(named)} in: {block.strip()[:120]!r}")
    readme_lines = len(texts[project / "README.md"].splitlines())
    if readme_lines > README_MAX_LINES:
        problems.append(f"README.md has {readme_lines} lines: reference material belongs in docs/")
    for path, text in texts.items():
        problems += [f"{path.name}: {word!r} tells the template's history" for word in HISTORY if re.search(word, text)]
    for doc in (project / "docs").glob("*.md"):
        if doc.resolve() not in linked:
            problems.append(f"docs/{doc.name} is not linked from the README")
    assert not problems, "\n".join(problems)


def manage_py_commands(text):
    """(command, [options]) for every `manage.py command --option ...` shown."""
    shown = []
    for code in code_spans(text):
        for match in re.finditer(r"manage\.py ([a-z_]+)([^\n`|;&#]*)", code):
            shown.append((match[1], re.findall(r"(?<!\S)(--[a-z][a-z-]*)", match[2])))
    return shown


# One bake per set of answers that changes INSTALLED_APPS or the settings: the commands depend on them.
SETTINGS_KEYS = ("use_worker", "task_broker", "cache", "use_s3_media")
SETTINGS_ANSWERS = {tuple(answers[key] for key in SETTINGS_KEYS): answers for answers in ALL_ANSWERS}


@pytest.mark.parametrize(
    "answers",
    list(SETTINGS_ANSWERS.values()),
    ids=lambda answers: answers_id({key: answers[key] for key in SETTINGS_KEYS}),
)
def test_manage_py_commands_shown_exist(bake_once, venv_python, answers):
    project = bake_once(**answers)
    available = set(management_help(venv_python, project).split())
    problems = []
    for path in markdown_files(project):
        for command, options in manage_py_commands(path.read_text()):
            if command not in available:
                problems.append(f"{path.name}: manage.py {command} is not a command of this bake")
                continue
            usage = management_help(venv_python, project, command)
            problems += [
                f"{path.name}: manage.py {command} has no {option}" for option in options if option not in usage
            ]
    assert not problems, "\n".join(problems)


def test_connection_budget_example_prints_what_the_readme_shows(bake_once, venv_python):
    project = bake_once()
    readme = (project / "docs/pgbouncer.md").read_text()
    example = r"```bash\n(heroku run python manage\.py connection_budget [^\n]*)\n```\n```\n(.*?)```"
    match = re.search(example, readme, re.S)
    assert match, "docs/pgbouncer.md's connection_budget example and its output"
    command = match[1].split()
    # A one-off dyno's environment: app.json's config vars, and the Python buildpack's WEB_CONCURRENCY for
    # app.json's Basic dyno (512 MB).
    app_env = json.loads((project / "app.json").read_text())["env"]
    config_vars = {name: spec["value"] for name, spec in app_env.items() if "value" in spec}
    dyno_env = {**environ(), **config_vars, "WEB_CONCURRENCY": "2"}
    result = run([venv_python, *command[3:]], cwd=project, env=dyno_env, check=False)
    assert result.returncode == 1  # it does not fit
    assert (result.stdout + result.stderr).splitlines() == match[2].splitlines()


def bash_lines(text, section):
    """The lines of the bash blocks in the README section that starts with `section`, in order."""
    body = text.split(section, 1)[1].split("\n## ", 1)[0]
    return [line for block in re.findall(r"```bash\n(.*?)```", body, re.S) for line in block.splitlines() if line]


def test_uv_bake_sets_up_with_only_the_systems_python(bake_once, tmp_path):
    """The uv bake's "Run it locally", then docs/uv.md's test and lint commands, in one shell as a new user
    types them: HOME empty, no uv installed, only /usr/bin's python3 (Debian 12's 3.11, not the 3.14 of
    .python-version), and uv never downloading a Python, so every uv command must use the one named."""
    project = tmp_path / "uv_app"
    shutil.copytree(bake_once(package_manager="uv"), project, ignore=shutil.ignore_patterns(".venv", "__pycache__"))
    readme, doc = (project / "README.md").read_text(), (project / "docs/uv.md").read_text()
    lines = bash_lines(readme, "## Run it locally\n") + bash_lines(doc, "## Install, test, lint\n")
    assert lines[0].startswith("python3 -m venv ") and "pip install uv" in lines[0], lines
    assert not any("pip install uv" in line and "bin/pip" not in line for line in lines), "pip outside a venv"
    script = "\n".join(["set -ex", *(line.replace("manage.py runserver", "manage.py check") for line in lines)])
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "UV_PYTHON_DOWNLOADS": "never"}
    # This machine's way to PyPI (a proxy, its certificates), which a user's machine has set up its own way.
    env |= {key: value for key, value in os.environ.items() if re.search(r"PROXY|SSL_CERT|^PIP_", key, re.I)}
    result = run(["bash", "-c", script], cwd=project, env=env, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "passed" in result.stdout and "failed" not in result.stdout, result.stdout[-2000:]
    version = run([str(project / ".venv/bin/python"), "-c", "import sys; print(sys.version_info[:2])"]).stdout
    system = run(["/usr/bin/python3", "-c", "import sys; print(sys.version_info[:2])"]).stdout
    assert version == system


# docs/email.md's password reset, from the admin login's link to logging in with the new password, through the
# project's URLs and the Django test client (which collects the email instead of sending it).
PASSWORD_RESET = r"""
import json, re
import django
from django.test.utils import setup_test_environment
django.setup()
setup_test_environment()
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.test import Client

call_command("migrate", verbosity=0)
get_user_model().objects.create_superuser("ada", "ada@example.com", "Old-passw0rd-4821")
client = Client(HTTP_HOST="localhost")
shown = {"login": client.get("/admin/login/").content.decode()}
reset = client.post("/accounts/password_reset/", {"email": "ada@example.com"})
shown["done"] = client.get(reset["Location"]).content.decode()
link = re.search(r"http://localhost(/accounts/reset/[^/\s]+/[^/\s]+/)", mail.outbox[0].body)[1]
form = client.get(link)
shown["form"] = client.get(form["Location"]).content.decode()
new = "New-passw0rd-7163"
saved = client.post(form["Location"], {"new_password1": new, "new_password2": new})
shown["complete"] = client.get(saved["Location"]).content.decode()
print(json.dumps({
    "statuses": [reset.status_code, form.status_code, saved.status_code],
    "locations": [reset["Location"], saved["Location"]],
    "logs_in": Client().login(username="ada", password=new),
    "shown": shown,
}))
"""


def test_admin_password_reset_works_as_docs_email_says(bake_once, venv_python, tmp_path):
    project = bake_once()
    assert "/accounts/password_reset/" in (project / "docs/email.md").read_text()
    env = {**environ(), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    env["DJANGO_SETTINGS_MODULE"] = "my_heroku_app.settings"
    result = run([venv_python, "-c", PASSWORD_RESET], cwd=project, env=env, timeout=120)
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["statuses"] == [302, 302, 302], outcome["statuses"]
    assert outcome["locations"] == ["/accounts/password_reset/done/", "/accounts/reset/done/"]
    assert outcome["logs_in"]
    shown = outcome["shown"]
    assert (
        'href="/accounts/password_reset/"' in shown["login"] and "Forgotten your login credentials?" in shown["login"]
    )
    assert 'name="new_password1"' in shown["form"]
    # The admin's templates, headed with the project's name rather than "Django administration".
    for page in shown.values():
        assert "My Heroku App" in page and "Django administration" not in page
