"""A baked project gets the template's later fixes the way its README says, with its owner's changes kept.

As an owner would: bake by the template README's command 1 (cruft, from a git repository of this working tree),
commit, make the project one's own (example/ deleted as the README says, an app of one's own in its place, a
setting, a URL, a dependency), commit; the template then fixes each of its parts (nginx.conf.erb, heroku_runtime,
bin/, a pin, a docs file). The commands of the baked README's "Updating from the template" bring every fix in,
with no conflict in the owner's files, and the project's own tests pass. For three owners, sharing one template
and its one later commit."""

import importlib.util
import json
import re
import shlex
import shutil
import sys

import pytest
from test_project import clean_environ

from conftest import CONTEXT, ROOT, run
from freshroot import readme_commands

CRUFT = [sys.executable, "-m", "cruft"]
TEMPLATE_URL = "https://github.com/org/heroku-django"
OWNERS = {
    "default": {},
    "waitress-redis-uv": {"wsgi_server": "waitress", "cache": "redis", "task_broker": "redis", "package_manager": "uv"},
    "no-worker": {"use_worker": False},
}
DEPENDENCY = "django-filter==26.2"  # the one docs/pip.md and docs/uv.md add as their example
# The template's later commit: (file under the project template, text replaced, its replacement). Each part of the
# template gets one fix; a pin moves in both package-manager files, as tests/test_uv.py holds them to the same pins.
FIXES = [
    ("config/nginx.conf.erb", "\tserver_tokens off;\n", "\tserver_tokens off;\n\tetag on;\n"),
    ("heroku_runtime/views.py", "\nHEALTH_TIMEOUT = ", "\n# A later fix of the template.\nHEALTH_TIMEOUT = "),
    ("bin/dynolib/supervisor.py", "\nKILL_AFTER = ", "\n# A later fix of the template.\nKILL_AFTER = "),
    ("requirements.txt", "whitenoise==6.12.0\n", "whitenoise==6.11.0\n"),
    ("pyproject.toml", '"whitenoise==6.12.0",\n', '"whitenoise==6.11.0",\n'),
    ("docs/pgbouncer.md", "## Config vars\n", "## Config vars\n\nA later fix of the template.\n"),
]


def git(*args, cwd):
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    return run(["git", *identity, *args], cwd=cwd)


def snapshot_template(destination):
    """The working tree as a git repository of its own, so a test can commit template changes to it."""
    shutil.copytree(
        ROOT, destination, ignore=shutil.ignore_patterns(".git", ".cache", ".venv", "__pycache__", ".*_cache")
    )
    git("init", "-q", "-b", "main", cwd=destination)
    git("add", "-A", cwd=destination)
    git("commit", "-q", "-m", "template v1", cwd=destination)


def bake_as_the_readme_says(template, directory, answers):
    """Command 1's bake step, with the template's repository in place of GitHub's; returns the project."""
    steps = readme_commands()["1"].split(" && ")
    bake = shlex.split(next(step for step in steps if step.startswith("pipx run cruft create")))
    assert bake[:3] == ["pipx", "run", "cruft"] and TEMPLATE_URL in bake, bake
    command = [*CRUFT, *[str(template) if word == TEMPLATE_URL else word for word in bake[3:]]]
    if answers:
        command += ["--extra-context", json.dumps(answers)]
    directory.mkdir()
    run(command, cwd=directory)
    project = directory / next(step for step in steps if step.startswith("cd ")).split()[1]
    assert (project / ".cruft.json").exists()
    return project


def uv(*args, cwd):
    from test_uv import UV, uv_env

    return run([UV, *args], cwd=cwd, env=uv_env(), timeout=600)


def make_it_mine(project, answers):
    """The owner's changes: example/ replaced by an app of their own, a setting, a URL, a dependency."""
    slug = project.name
    shutil.rmtree(project / "example")  # "delete the folder and its lines in settings.py and urls.py"
    settings = project / slug / "settings.py"
    text, count = re.subn(r'(?m)^(\s*)"example",.*$', r'\1"shop",', settings.read_text())
    assert count == 1, "settings.py has no INSTALLED_APPS line for example"
    settings.write_text(text + '\n# The shop\'s name on its pages.\nSHOP_NAME = "Acme"\n')
    urls = project / slug / "urls.py"
    text, count = re.subn(
        r'(?m)^(\s*)path\("", include\("example\.urls"\)\),.*$', r'\1path("", include("shop.urls")),', urls.read_text()
    )
    assert count == 1, "urls.py has no line for example"
    urls.write_text(text)
    (project / "shop/tests").mkdir(parents=True)
    (project / "shop/__init__.py").write_text("")
    (project / "shop/views.py").write_text(
        "from django.conf import settings\nfrom django.http import HttpResponse\n\n\n"
        'def index(request):\n    return HttpResponse(f"Welcome to {settings.SHOP_NAME}")\n'
    )
    (project / "shop/urls.py").write_text(
        'from django.urls import path\n\nfrom . import views\n\nurlpatterns = [path("", views.index, name="shop")]\n'
    )
    (project / "shop/tests/__init__.py").write_text("")
    (project / "shop/tests/test_views.py").write_text(
        'def test_the_home_page_is_the_shop(client):\n    assert client.get("/").content == b"Welcome to Acme"\n'
    )
    if answers.get("package_manager") == "uv":
        uv("add", "--no-sync", DEPENDENCY, cwd=project)  # docs/uv.md's way: pyproject.toml and uv.lock together
    else:
        with open(project / "requirements.txt", "a") as requirements:  # docs/pip.md's way
            requirements.write(f"{DEPENDENCY}\n")


def relock(template, answers):
    """The template's uv lock for these answers, made again after its pin moved, as its maintainers do
    (scripts/uv_lock.py, here for this one dependency set)."""
    spec = importlib.util.spec_from_file_location("snapshot_uv_lock", template / "scripts/uv_lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    full = {key: value[0] if isinstance(value, list) else value for key, value in CONTEXT.items()} | answers
    for context in module.contexts():
        if all(context["cookiecutter"][key] == full[key] for key in module.choice_keys()):
            stored = template / "templates" / module.lock_name(context)
            stored.write_text(module.lock(module.render(module.PROJECT / "pyproject.toml", context), stored, False))
            return
    raise AssertionError(f"no uv bake for {full}")


@pytest.fixture(scope="module")
def owned_projects(tmp_path_factory):
    """{owner: project}: each baked from the template's first commit and made its owner's; then the template
    gets its later commit with a fix in each part."""
    base = tmp_path_factory.mktemp("updates")
    template = base / "template"
    snapshot_template(template)
    projects = {}
    for owner, answers in OWNERS.items():
        project = bake_as_the_readme_says(template, base / owner, answers)
        git("init", "-q", "-b", "main", cwd=project)
        git("add", "-A", cwd=project)
        git("commit", "-q", "-m", "baked", cwd=project)
        make_it_mine(project, answers)
        git("add", "-A", cwd=project)
        git("commit", "-q", "-m", "our shop", cwd=project)
        projects[owner] = project

    for name, old, new in FIXES:
        path = template / "{{cookiecutter.project_slug}}" / name
        assert path.read_text().count(old) == 1, f"{name}: the fix's anchor {old!r} is not there once"
        path.write_text(path.read_text().replace(old, new))
    for answers in OWNERS.values():
        if answers.get("package_manager") == "uv":
            relock(template, answers)
    git("commit", "-q", "-am", "template v2: a fix in each part", cwd=template)
    return projects


def update_commands(project):
    """The cruft commands the baked README's "Updating from the template" shows: {subcommand: arguments}."""
    section = re.search(r"^## Updating from the template\n(.*?)^## ", (project / "README.md").read_text(), re.S | re.M)
    assert section, "the baked README has no 'Updating from the template' section"
    commands = {}
    for shown in re.findall(r"`(pipx run cruft [^`]+)`", section.group(1)):
        words = shlex.split(shown)
        commands[words[3]] = words[3:]
    assert set(commands) == {"check", "diff", "update"}, commands
    return section.group(1), commands


@pytest.mark.parametrize("owner", OWNERS)
def test_the_readmes_update_brings_every_template_fix_into_an_owned_project(owned_projects, venv_python, owner):
    project, answers = owned_projects[owner], OWNERS[owner]
    section, commands = update_commands(project)

    behind = run([*CRUFT, *commands["check"]], cwd=project, check=False)
    assert behind.returncode != 0, f"cruft check should see the template moved on:\n{behind.stdout}"
    ours = run([*CRUFT, *commands["diff"]], cwd=project).stdout
    assert "SHOP_NAME" in ours and "shop.urls" in ours, "cruft diff shows the owner's own changes"
    update = run([*CRUFT, *commands["update"]], cwd=project)
    if answers.get("package_manager") == "uv":
        assert "`uv lock`" in section
        uv("lock", cwd=project)

    # No conflict anywhere: no .rej file, no conflict marker, nothing unmerged.
    rejected = sorted(str(path.relative_to(project)) for path in project.rglob("*.rej"))
    assert not rejected, f"{rejected}\n{update.stdout}\n{update.stderr}"
    status = run(["git", "status", "--porcelain"], cwd=project).stdout
    assert not re.search(r"(?m)^(UU|AA|DU|UD) ", status), status
    markers = run(["git", "grep", "-l", "-e", "^<<<<<<< ", "-e", "^>>>>>>> "], cwd=project, check=False).stdout
    assert not markers, markers

    # Every fix is in.
    baked = "pyproject.toml" if answers.get("package_manager") == "uv" else "requirements.txt"
    for name, _old, new in FIXES:
        if name in ("requirements.txt", "pyproject.toml") and name != baked:
            continue
        assert new in (project / name).read_text(), f"{name} did not get the template's fix"
    if answers.get("package_manager") == "uv":
        uv("lock", "--check", cwd=project)
        assert 'name = "whitenoise"\nversion = "6.11.0"' in (project / "uv.lock").read_text()

    # The owner's changes are all still there, and nothing of the example came back.
    slug = project.name
    settings = (project / slug / "settings.py").read_text()
    assert '"shop",' in settings and 'SHOP_NAME = "Acme"' in settings and '"example"' not in settings
    assert 'include("shop.urls")' in (project / slug / "urls.py").read_text()
    assert DEPENDENCY in (project / baked).read_text()
    assert not (project / "example").exists()
    # The answers hold: only the chosen server's files, the worker only where it was chosen.
    recorded = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
    assert {key: recorded[key] for key in answers} == answers
    server = answers.get("wsgi_server", "gunicorn")
    assert {path.name for path in (project / "config").iterdir()} == {
        "nginx.conf.erb",
        {"gunicorn": "gunicorn.conf.py", "uwsgi": "uwsgi.ini", "waitress": "serve_waitress.py"}[server],
    }
    assert (project / slug / "worker.py").exists() == answers.get("use_worker", True)

    run([*CRUFT, *commands["check"]], cwd=project)  # up to date now
    result = run([venv_python, "-m", "pytest", "-v", "-p", "no:cacheprovider"], cwd=project, env=clean_environ())
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and not re.search(r"failed|error|skipped", summary), summary
    assert "shop/tests/test_views.py::test_the_home_page_is_the_shop PASSED" in result.stdout
