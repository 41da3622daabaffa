"""package_manager=uv: the lock is right for every combination of answers, it pins what the pip bake pins,
and the uv bake installs as Heroku's Python buildpack installs it, passes its tests and boots on the real stack.

uv comes from PyPI (tests/requirements.txt). It never downloads a Python here (UV_PYTHON_DOWNLOADS=never):
it uses Debian's, or the one .python-version names (tests/sidroot.py) where that is the point of the test.
`uv lock --check` and `uv add` may use the network (PyPI); the bake itself never does.
"""

import json
import os
import re
import shlex
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from test_project import production_root  # noqa: F401 - a fixture, used by name
from uv import find_uv_bin

import realstack
import sidroot
from conftest import ROOT, SERVERS, SYSTEM_PYTHON, answers_id, make_venv, run

sys.path.insert(0, str(ROOT / "scripts"))
import uv_lock  # noqa: E402 - scripts/ is not a package

UV = find_uv_bin()
# Every valid combination of the answers that can change a bake, with package_manager=uv.
UV_MATRIX = uv_lock.valid_answers()
# heroku-buildpack-python v351 (August 2026) installs this uv (its requirements/uv.txt).
BUILDPACK_UV = "0.12.5"
# What the buildpack sets for uv (lib/uv.sh): no uv-managed Python, never a download.
BUILDPACK_UV_ENV = {"UV_NO_MANAGED_PYTHON": "1", "UV_PYTHON_DOWNLOADS": "never"}
IGNORED = shutil.ignore_patterns(".venv", "staticfiles", "__pycache__")


def uv_id(answers):
    return answers_id({key: value for key, value in answers.items() if key != "package_manager"})


def uv_env(python=SYSTEM_PYTHON, **extra):
    """Our environment, with uv held to installed interpreters (`python`, or .python-version's when None)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("UV_", "VIRTUAL_ENV"))}
    env.update(BUILDPACK_UV_ENV)
    if python:
        env["UV_PYTHON"] = python
    env.update(extra)
    return env


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins(path):
    """{normalized name: (extras, version)} of a pip requirements file's `name[extras]==version` lines."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-r"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[([a-z0-9,]+)\])?==([^\s;]+)", line)
        assert match, f"not an exact pin in {path.name}: {line!r}"
        pins[normalize(match[1])] = (tuple(sorted(filter(None, (match[2] or "").split(",")))), match[3])
    return pins


def lock_pins(requirements):
    """The same form from uv.lock's root requirements ({name, extras, specifier})."""
    pins = {}
    for requirement in requirements:
        specifier = requirement["specifier"]
        assert specifier.startswith("==") and "," not in specifier, f"not an exact pin: {requirement}"
        pins[requirement["name"]] = (tuple(sorted(requirement.get("extras", []))), specifier[2:])
    return pins


def read_lock(project):
    lock = tomllib.loads((project / "uv.lock").read_text())
    (root,) = [package for package in lock["package"] if package["source"] == {"virtual": "."}]
    resolved = {package["name"]: package["version"] for package in lock["package"] if package is not root}
    return lock, root, resolved


@pytest.fixture(scope="module")
def uv_project(bake_once):
    return bake_once(package_manager="uv")


# --- the lock: right for every combination, same pins as pip ------------------------------------------


@pytest.mark.parametrize("answers", UV_MATRIX, ids=uv_id)
def test_uv_lock_check_agrees_with_the_bake(bake_once, answers):
    """`uv lock --check` fails when uv.lock is not what `uv lock` would write for pyproject.toml."""
    project = bake_once(**answers)
    result = run([UV, "lock", "--check"], cwd=project, env=uv_env())
    assert "needs to be updated" not in result.stderr
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    _, root, _ = read_lock(project)
    assert root["name"] == pyproject["project"]["name"]


@pytest.mark.parametrize("answers", UV_MATRIX, ids=uv_id)
def test_uv_resolves_to_the_pip_bakes_pins(bake_once, answers):
    """Same packages, extras and versions as requirements.txt and requirements-dev.txt for the same answers."""
    pip_project = bake_once(**{**answers, "package_manager": "pip"})
    uv_project = bake_once(**answers)
    _, root, resolved = read_lock(uv_project)
    app = requirement_pins(pip_project / "requirements.txt")
    dev = requirement_pins(pip_project / "requirements-dev.txt")
    assert lock_pins(root["metadata"]["requires-dist"]) == app
    assert lock_pins(root["metadata"]["requires-dev"]["dev"]) == dev
    for name, (_extras, version) in {**app, **dev}.items():
        assert resolved[name] == version, f"uv.lock resolves {name} to {resolved[name]}, pip pins {version}"
    # The root's locked edges are the same packages, with the same extras.
    assert {dep["name"]: tuple(sorted(dep.get("extra", []))) for dep in root["dependencies"]} == {
        name: extras for name, (extras, _) in app.items()
    }


@pytest.fixture(scope="module")
def dependency_sets():
    return uv_lock.dependency_sets()


def test_every_stored_lock_is_used(dependency_sets):
    """templates/uv-locks/ holds the lock of every dependency set and nothing else (the script removes the
    stale ones); the bakes above prove each one is included by the answers that need it."""
    stored = {f"uv-locks/{path.name}" for path in (ROOT / "templates/uv-locks").glob("*")}
    assert set(dependency_sets) == stored


def test_one_lock_per_dependency_set(dependency_sets):
    """Answers with the same pyproject.toml share one lock file; different ones never do (the script refuses)."""
    assert len(set(dependency_sets.values())) == len(dependency_sets)


def test_uv_lock_script_reproduces_the_stored_locks(tmp_path):
    """The template README's regeneration command, on a copy of the template: every stored lock is what uv
    writes for its dependency set today (starting from it, as the script does), so nothing changes."""
    from test_updates import git, snapshot_template

    template = tmp_path / "template"
    snapshot_template(template)
    result = run([sys.executable, "scripts/uv_lock.py"], cwd=template, env=uv_env(), timeout=1800)
    lines = result.stdout.splitlines()
    assert len(lines) == len(list((template / "templates/uv-locks").glob("*.lock"))), result.stdout
    assert all(line.startswith("unchanged: templates/uv-locks/") for line in lines), result.stdout
    assert git("status", "--porcelain", cwd=template).stdout == ""


# --- what a uv bake contains ---------------------------------------------------------------------------


@pytest.mark.parametrize("package_manager", ["pip", "uv"])
def test_one_package_manager_file_per_bake(bake_once, package_manager):
    """Heroku's buildpack fails with more than one of requirements.txt, Pipfile.lock, poetry.lock, uv.lock."""
    project = bake_once(package_manager=package_manager)
    found = {
        name for name in ("requirements.txt", "Pipfile.lock", "poetry.lock", "uv.lock") if (project / name).exists()
    }
    assert found == {"uv.lock" if package_manager == "uv" else "requirements.txt"}
    assert (project / "requirements-dev.txt").exists() == (package_manager == "pip")
    assert (project / ".python-version").read_text().strip() == "3.14"  # required by the buildpack with uv
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert ("project" in pyproject) == ("dependency-groups" in pyproject) == (package_manager == "uv")
    assert "tool" in pyproject and "pytest" in pyproject["tool"] and "ruff" in pyproject["tool"]
    assert sorted(path.name for path in (project / ".github/workflows").iterdir()) == ["ci.yml"]


def test_uv_pyproject_fits_the_buildpack(uv_project):
    pyproject = tomllib.loads((uv_project / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["name"] == "my-heroku-app"
    # .python-version (what Heroku installs) must satisfy requires-python, or `uv sync` fails the build.
    minimum = tuple(map(int, project["requires-python"].removeprefix(">=").split(".")))
    assert project["requires-python"].startswith(">=") and (3, 14) >= minimum
    # and so must Debian 12's Python, which the real-stack tests run the bake on.
    assert (3, 11) >= minimum
    assert "build-system" not in pyproject  # a virtual project: uv installs the dependencies, not the project
    assert set(pyproject["dependency-groups"]) == {"dev"}  # the one group Heroku CI adds


def test_uv_app_json_ci_script(uv_project, bake_once):
    """Heroku CI installs the dev group itself (`uv sync --locked`), so the test script only runs pytest."""
    script = json.loads((uv_project / "app.json").read_text())["environments"]["test"]["scripts"]["test"]
    assert script == "pytest"
    pip_script = json.loads((bake_once() / "app.json").read_text())["environments"]["test"]["scripts"]["test"]
    assert pip_script == "pip install -r requirements-dev.txt && pytest"


def test_uv_workflow(uv_project, bake_once):
    workflow = yaml.safe_load((uv_project / ".github/workflows/ci.yml").read_text())
    pip_workflow = yaml.safe_load((bake_once() / ".github/workflows/ci.yml").read_text())
    pip_uses = {step["uses"] for step in pip_workflow["jobs"]["test"]["steps"] if "uses" in step}
    # The actions both workflows use stay on the same (current) majors.
    assert pip_uses <= {step.get("uses") for step in workflow["jobs"]["test"]["steps"]}
    steps = workflow["jobs"]["test"]["steps"]
    uses = [step["uses"] for step in steps if "uses" in step]
    (setup_uv,) = [use for use in uses if use.startswith("astral-sh/setup-uv@")]
    # setup-uv publishes no major tags since v8: only an exact release resolves.
    major = re.fullmatch(r"astral-sh/setup-uv@v(\d+)\.\d+\.\d+", setup_uv)
    assert major and int(major[1]) >= 10, setup_uv
    assert uses.index(setup_uv) > uses.index(next(use for use in uses if use.startswith("actions/setup-python@")))
    runs = [step["run"] for step in steps if "run" in step]
    assert "uv sync --locked" in runs
    assert any("uv run ruff check ." in run and "uv run ruff format --check ." in run for run in runs)
    assert "uv run pytest --reuse-db" in runs
    assert not any("pip install" in run for run in runs)
    assert workflow["jobs"]["test"]["env"]["UV_PYTHON_DOWNLOADS"] == "never"
    # Dependabot's uv ecosystem updates pyproject.toml and uv.lock together.
    dependabot = yaml.safe_load((uv_project / ".github/dependabot.yml").read_text())
    assert {update["package-ecosystem"] for update in dependabot["updates"]} == {"github-actions", "uv"}


@pytest.mark.parametrize("package_manager", ["pip", "uv"])
def test_docs_say_how_to_add_a_dependency_with_its_tool(bake_once, package_manager):
    project = bake_once(package_manager=package_manager)
    other = "pip" if package_manager == "uv" else "uv"
    assert not (project / f"docs/{other}.md").exists()
    readme = (project / "README.md").read_text()
    assert f"](docs/{package_manager}.md)" in readme
    doc = (project / f"docs/{package_manager}.md").read_text()
    section = doc.split("## Add a dependency\n", 1)[1].split("\n## ", 1)[0]
    if package_manager == "uv":
        assert "uv add 'django-filter==" in section and "uv add --dev" in section
        assert "pip install -r" not in readme + doc and ".venv/bin/pip" not in readme + doc
    else:
        assert ">> requirements.txt" in section and ".venv/bin/pip install -r requirements-dev.txt" in section
        assert "uv add" not in readme + doc and "uv sync" not in readme


def shown_commands(*texts, section=None):
    """The lines of the bash blocks of `texts` (of their `section` when given), comments removed, in order."""
    commands = []
    for text in texts:
        if section and section in text:
            text = text.split(section, 1)[1].split("\n## ", 1)[0]
        for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
            commands += [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    return commands


def test_readme_uv_commands_run(uv_project, tmp_path):
    """Every uv command the README and docs/uv.md show, in their order, in a copy of the bake (runserver:
    `check` instead), adding a dependency included."""
    project = tmp_path / uv_project.name
    shutil.copytree(uv_project, project, ignore=IGNORED)
    readme, doc = (project / "README.md").read_text(), (project / "docs/uv.md").read_text()
    commands = [command for command in shown_commands(readme, doc) if command.startswith("uv ")]
    expected = ["uv sync", "uv run pytest", "uv add 'django-filter==26.2'", "uv sync --locked --no-default-groups"]
    assert set(expected) <= set(commands), commands
    # The README's production-like run comes last: Heroku's install, without the dev group.
    commands.sort(key=lambda command: "--no-default-groups" in command or "--no-sync" in command)
    env = uv_env(PATH=f"{Path(UV).parent}:{os.environ['PATH']}")
    for command in commands:
        command = command.replace("manage.py runserver", "manage.py check")
        run(["bash", "-c", command], cwd=project, env=env, timeout=900)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert "django-filter==26.2" in pyproject["project"]["dependencies"]
    assert "pytest-cov==7.1.0" in pyproject["dependency-groups"]["dev"]
    run([UV, "lock", "--check"], cwd=project, env=env)  # uv add kept the lock in step
    # The last sync was Heroku's: no dev group, so pytest is gone from .venv again.
    assert not list((project / ".venv/lib").glob("python3*/site-packages/pytest"))
    assert list((project / ".venv/lib").glob("python3*/site-packages/django_filters"))


def test_readme_pip_commands_run(bake_once, tmp_path):
    """The pip bake's "Run it locally" and docs/pip.md commands, adding a dependency included."""
    project = tmp_path / "pip_project"
    shutil.copytree(bake_once(), project, ignore=shutil.ignore_patterns(".venv", "staticfiles", "__pycache__"))
    readme, doc = (project / "README.md").read_text(), (project / "docs/pip.md").read_text()
    commands = shown_commands(readme, section="## Run it locally\n") + shown_commands(doc)
    assert any(">> requirements.txt" in command for command in commands)
    env = {**os.environ, "PATH": f"{Path(SYSTEM_PYTHON).parent}:/usr/bin:/bin"}
    for command in commands:
        command = command.replace("manage.py runserver", "manage.py check")
        run(["bash", "-c", command], cwd=project, env=env, timeout=900)
    installed = run([".venv/bin/python", "-m", "pip", "show", "django-filter"], cwd=project, env=env)
    assert "Version: 26.2" in installed.stdout


@pytest.fixture(scope="module")
def buildpack_uv(tmp_path_factory):
    """The uv release Heroku's Python buildpack installs, from PyPI."""
    requirement = tmp_path_factory.mktemp("buildpack-uv") / "requirements.txt"
    requirement.write_text(f"uv=={BUILDPACK_UV}\n")
    return str(make_venv(sys.executable, [requirement], f"uv-{BUILDPACK_UV}") / "bin/uv")


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("which_uv", ["tests' uv", "buildpack's uv"])
def test_uv_sync_as_the_buildpack_does(bake_once, buildpack_uv, production_root, tmp_path, server, which_uv):  # noqa: F811
    """`uv sync --locked --no-default-groups` with the Python .python-version names (3.14, installed in the
    production root, never downloaded), then the build's collectstatic with no config vars, on that Python."""
    uv = Path(UV if which_uv == "tests' uv" else buildpack_uv).resolve()
    project = tmp_path / "app"
    shutil.copytree(bake_once(package_manager="uv", wsgi_server=server), project, ignore=IGNORED)
    version = (project / ".python-version").read_text().strip()
    # Like the buildpack: into an environment of its own choosing (UV_PROJECT_ENVIRONMENT), not .venv.
    environment = tmp_path / "slug-python"
    env = {**BUILDPACK_UV_ENV, "UV_PROJECT_ENVIRONMENT": environment}
    with realstack.host_network():  # uv needs PyPI
        result = sidroot.run(
            production_root,
            f"{uv} sync --locked --no-default-groups",
            binds=[tmp_path, uv.parent],
            cwd=project,
            env=env,
        )
    assert "Downloading cpython" not in result.stderr

    def python(code):
        command = f"{environment}/bin/python -c {shlex.quote(code)}"
        return sidroot.run(production_root, command, binds=[tmp_path]).stdout.strip()

    assert python("import sys; print('%d.%d' % sys.version_info[:2])") == version
    site = Path(python("import sysconfig; print(sysconfig.get_paths()['purelib'])"))
    names = {path.name.split("-")[0].lower() for path in site.glob("*.dist-info")}
    assert {"django", "psycopg", "whitenoise", server.lower()} <= names
    assert not names & {"pytest", "pytest_django", "ruff"}, "the dev group must not reach a dyno"
    build = {"PATH": f"{environment}/bin:/usr/bin:/bin", "HOME": tmp_path, "LANG": "C.UTF-8"}
    sidroot.run(production_root, "python manage.py collectstatic --noinput", binds=[tmp_path], cwd=project, env=build)
    assert (project / "staticfiles/staticfiles.json").exists()


@pytest.mark.parametrize("server", SERVERS)
def test_uv_bake_installs_and_its_tests_pass(bake_once, server):
    """The README's `uv sync` (dev group included), then the baked tests and lint through `uv run`."""
    project = bake_once(package_manager="uv", wsgi_server=server)
    env = uv_env()
    run([UV, "sync", "--locked"], cwd=project, env=env, timeout=900)
    result = run([UV, "run", "--locked", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=env, timeout=900)
    assert " passed" in result.stdout and "failed" not in result.stdout
    run([UV, "run", "--locked", "ruff", "check", "."], cwd=project, env=env)
    run([UV, "run", "--locked", "ruff", "format", "--check", "."], cwd=project, env=env)


# --- cruft update --------------------------------------------------------------------------------------


def test_cruft_update_reaches_a_uv_bake(tmp_path):
    """A template change to the included lock and to the uv workflow (renamed to ci.yml by the hook) reaches
    a uv project through `cruft update`, and the project stays a uv project with a lock uv agrees with."""
    from test_updates import CRUFT, git, snapshot_template

    answers = {"project_name": "Cruft Uv", "wsgi_server": "waitress", "use_worker": False, "package_manager": "uv"}
    template, output = tmp_path / "template", tmp_path / "out"
    snapshot_template(template)
    create = ["create", str(template), "--no-input", "--output-dir", str(output), "--extra-context"]
    run([*CRUFT, *create, json.dumps(answers)])
    project = output / "cruft_uv"
    git("init", "-q", "-b", "main", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "baked", cwd=project)

    lock = template / "templates/uv-locks/waitress.lock"
    lock.write_text(lock.read_text() + "# template v2\n")
    workflow = template / "{{cookiecutter.project_slug}}/.github/workflows/ci-uv.yml"
    workflow.write_text(workflow.read_text().replace("timeout-minutes: 20", "timeout-minutes: 25"))
    git("commit", "-q", "-am", "template v2", cwd=template)

    run([*CRUFT, "update", "--skip-apply-ask", "--allow-untracked-files"], cwd=project)
    assert (project / "uv.lock").read_text().endswith("# template v2\n")
    ci = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    assert ci["jobs"]["test"]["timeout-minutes"] == 25
    assert any(step.get("uses", "").startswith("astral-sh/setup-uv@") for step in ci["jobs"]["test"]["steps"])
    assert not (project / ".github/workflows/ci-uv.yml").exists()
    assert not (project / "requirements.txt").exists() and not (project / "requirements-dev.txt").exists()
    run([UV, "lock", "--check"], cwd=project, env=uv_env())
    run([*CRUFT, "check"], cwd=project)


@pytest.mark.parametrize("package_manager", ["pip", "uv"])
def test_bin_dyno_advises_the_bakes_own_tool_for_its_venv(bake_once, package_manager):
    """bin/dyno's "no .venv" and "cannot run .venv/bin/python" advice names the tool the bake uses."""
    project = bake_once(package_manager=package_manager)
    code = "import sys; sys.path.insert(0, 'bin'); from dynolib import venv_command; print(venv_command())"
    advice = run([sys.executable, "-c", code], cwd=project).stdout.strip()
    if package_manager == "uv":
        assert advice.startswith("uv sync") and "requirements" not in advice
    else:
        assert advice.endswith("pip install -r requirements.txt") and (project / "requirements.txt").exists()
