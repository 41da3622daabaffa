"""The baked project's GitHub Actions workflow: valid structure, and the steps that make it meaningful."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from contextlib import nullcontext
from pathlib import Path

import pytest
import yaml
from uv import find_uv_bin

import realstack
from conftest import POOL_MODES, SYSTEM_PYTHON

UV = find_uv_bin()


@pytest.fixture(params=POOL_MODES)
def workflow_and_project(request, bake_once):
    project = bake_once(pgbouncer_pool_mode=request.param)
    return yaml.safe_load((project / ".github/workflows/ci.yml").read_text()), project


def steps_running(steps, text):
    return [step for step in steps if text in step.get("run", "")]


def test_workflow_structure(workflow_and_project):
    workflow, _ = workflow_and_project
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert {"push", "pull_request"} <= set(triggers)
    assert set(workflow["jobs"]) == {"test"}
    job = workflow["jobs"]["test"]
    assert job["runs-on"].startswith("ubuntu-")
    assert 0 < job["timeout-minutes"] <= 60
    assert job["services"]["postgres"]["image"].startswith("postgres:")
    for step in job["steps"]:
        assert ("uses" in step) != ("run" in step), f"a step needs exactly one of uses/run: {step}"


def test_workflow_tests_through_pgbouncer_in_app_json_pool_mode(workflow_and_project):
    workflow, project = workflow_and_project
    job = workflow["jobs"]["test"]
    steps = job["steps"]
    setup_python = next(step for step in steps if step.get("uses", "").startswith("actions/setup-python"))
    assert setup_python["with"]["python-version-file"] == ".python-version"
    assert steps_running(steps, "pip install -r requirements-dev.txt")
    assert steps_running(steps, "ruff check .") and steps_running(steps, "ruff format --check .")
    (pgbouncer_step,) = steps_running(steps, "pgbouncer -d")
    # The pool comes from app.json at run time, so the copied-as-is workflow follows the bake's answer and
    # app.json stays the one place for its sizes.
    assert "json.load(open('app.json'))['env']" in pgbouncer_step["run"]
    for name in ("POOL_MODE", "DEFAULT_POOL_SIZE", "RESERVE_POOL_SIZE"):
        assert f"'{name}'" in pgbouncer_step["run"]
    for line in ("pool_mode = $mode", "default_pool_size = $pool", "reserve_pool_size = $reserve"):
        assert line in pgbouncer_step["run"]
    mode = json.loads((project / "app.json").read_text())["env"]["PGBOUNCER_POOL_MODE"]["value"]
    assert mode in POOL_MODES
    assert ":6000/" in job["env"]["DATABASE_URL"]
    (test_step,) = [step for step in steps if step.get("run", "").startswith("pytest")]
    test_step_index = steps.index(test_step)
    assert steps.index(pgbouncer_step) < test_step_index


# The newest major of each action the workflow uses (November 2026: checkout v7.0.1 and setup-python v7.0.0,
# both on Node 24; GitHub forces Node 24 on older majors since June 2026 and removes Node 20 from runners).
CURRENT_MAJORS = {"actions/checkout": 7, "actions/setup-python": 7}


def test_workflow_uses_current_action_majors(workflow_and_project):
    workflow, _ = workflow_and_project
    used = {}
    for step in workflow["jobs"]["test"]["steps"]:
        if "uses" in step:
            action, _, version = step["uses"].partition("@")
            assert re.fullmatch(r"v\d+", version), f"{step['uses']}: pin a major, which Dependabot keeps current"
            used[action] = int(version[1:])
    assert used == CURRENT_MAJORS


def test_dependabot_keeps_actions_and_pins_current(workflow_and_project):
    _, project = workflow_and_project
    config = yaml.safe_load((project / ".github/dependabot.yml").read_text())
    assert config["version"] == 2
    updates = {update["package-ecosystem"]: update for update in config["updates"]}
    assert set(updates) == {"github-actions", "pip"}
    for update in updates.values():
        assert update["directory"] == "/" and update["schedule"]["interval"] in ("daily", "weekly", "monthly")
    # Dependabot's pip ecosystem reads requirements*.txt where `directory` points.
    assert (project / "requirements.txt").exists() and (project / ".github/workflows/ci.yml").exists()


# --- the job, run here ---------------------------------------------------------------------------------
#
# The workflow's `run:` steps are executed as written, in order, each as GitHub runs it (`bash --noprofile
# --norc -eo pipefail`, from the workspace, GITHUB_ENV read back after each step, the rest skipped after a
# failure except `if: always()`). Only what GitHub provides is substituted:
# - the runner (ubuntu-24.04, user `runner` with passwordless sudo): the ordinary stack user, in this module's
#   network namespace and /tmp; `sudo` is a shim that answers `apt-get update` and checks that what
#   `apt-get install` names is installed (dpkg), so the test never changes this machine's packages;
# - actions/checkout: a copy of the bake; actions/setup-python (.python-version's Python): a fresh venv of
#   Debian's Python 3.11 first on PATH, and UV_PYTHON naming it for uv, which would otherwise look for
#   .python-version's Python and, with downloads off, fail; astral-sh/setup-uv: the test tools' uv, the
#   version the workflow pins (tests/requirements.txt);
# - the postgres service container: the `postgres` fixture's PostgreSQL with the container's user (a
#   superuser, as the image makes it), password and database; its port replaces 5432 in pgbouncer.ini;
# - the runner's internet: the "Install dependencies" step runs in the host's network, with this machine's CA
#   bundle and proxy variables (HOST_NETWORK_ENV) to reach PyPI; the others in the namespace, where PgBouncer's
#   fixed 127.0.0.1:6000 is free;
# - the job's environment: GitHub's CI, GITHUB_ACTIONS, GITHUB_ENV, GITHUB_WORKSPACE, RUNNER_TEMP, HOME, plus
#   the job's `env:`.

# How this machine reaches PyPI (its CA bundle, a proxy if any), for the step that goes online.
HOST_NETWORK_ENV = {
    name: value
    for name, value in os.environ.items()
    if name in {"SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE"}
    or name.lower() in {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}
}
SUBSTITUTED_ACTIONS = {"actions/checkout", "actions/setup-python", "astral-sh/setup-uv"}
SUDO_SHIM = """#!/bin/sh
# The runner's sudo, for apt-get only: nothing is installed here, what would be installed must already be.
[ "$1" = apt-get ] || { echo "sudo shim: only apt-get is expected, got: $*" >&2; exit 1; }
shift
case "$1" in
  update) exit 0 ;;
  install)
    shift
    for package in "$@"; do
      case "$package" in -*) continue ;; esac
      dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \\
        || { echo "sudo shim: $package is not installed on this machine" >&2; exit 100; }
    done ;;
  *) echo "sudo shim: unexpected apt-get $*" >&2; exit 1 ;;
esac
"""


def read_github_env(path):
    """GITHUB_ENV's NAME=value lines and NAME<<DELIMITER blocks."""
    values, lines = {}, path.read_text().splitlines() if path.exists() else []
    while lines:
        line = lines.pop(0)
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            while lines and lines[0] != delimiter:
                block.append(lines.pop(0))
            lines.pop(0)
            values[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
    return values


def service_database(postgres, service):
    """The postgres service's database, fresh as a new container's: its user a superuser, its database empty."""
    env = service["env"]
    user, password, database = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]
    for name in ("test_" + database, database):  # left by the previous run (pytest --reuse-db)
        postgres.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    if not postgres.sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'"):
        postgres.sql(f"CREATE ROLE {user} LOGIN")
    postgres.sql(f"ALTER ROLE {user} SUPERUSER PASSWORD '{password}'")
    postgres.sql(f"CREATE DATABASE {database} OWNER {user}")
    assert service["ports"] == ["5432:5432"]
    return 5432


def stop_pgbouncer(pidfile):
    """PgBouncer was started with -d: stop the daemon by the pid it wrote (the runner would be thrown away)."""
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text().split()[0])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("package_manager", ["pip", "uv"])
@pytest.mark.parametrize("pool_mode", POOL_MODES)
def test_workflow_job_runs_here(bake_once, workdir, user, postgres, pool_mode, package_manager):
    baked = bake_once(pgbouncer_pool_mode=pool_mode, package_manager=package_manager)
    # The post-generation hook keeps the package manager's workflow as ci.yml.
    job = yaml.safe_load((baked / ".github/workflows/ci.yml").read_text())["jobs"]["test"]
    used = {step["uses"].partition("@")[0] for step in job["steps"] if "uses" in step}
    assert used == SUBSTITUTED_ACTIONS - ({"astral-sh/setup-uv"} if package_manager == "pip" else set())

    # The runner: workspace (actions/checkout), tools, temp, and the Python of actions/setup-python.
    runner = workdir / f"runner-{package_manager}-{pool_mode}"
    workspace, tools, temp = runner / "work" / baked.name, runner / "bin", runner / "temp"
    shutil.copytree(baked, workspace, ignore=shutil.ignore_patterns(".venv", "staticfiles", "__pycache__"))
    tools.mkdir()
    temp.mkdir()
    (tools / "sudo").write_text(SUDO_SHIM)
    (tools / "sudo").chmod(0o755)
    if package_manager == "uv":
        shutil.copy(UV, tools / "uv")
    user.chown(runner)
    realstack.run_as(user, [SYSTEM_PYTHON, "-m", "venv", runner / "python"])

    service_port = service_database(postgres, job["services"]["postgres"])
    env = {
        "PATH": f"{runner / 'python/bin'}:{tools}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": user.home,
        "USER": user.name,
        "LANG": "C.UTF-8",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "RUNNER_TEMP": str(temp),
        "UV_PYTHON": SYSTEM_PYTHON,
        **{name: str(value) for name, value in job["env"].items()},
    }
    outputs, failed = [], None
    try:
        for index, step in enumerate(job["steps"]):
            if "run" not in step:
                continue
            if failed and step.get("if") != "always()":
                outputs.append((step.get("name", step["run"]), "skipped", ""))
                continue
            script = step["run"]
            assert "${{" not in script, f"a GitHub expression this test does not evaluate: {script}"
            if f"port={service_port}" in script:
                assert script.count(f"port={service_port}") == 1
                script = script.replace(f"port={service_port}", f"port={postgres.port}")
            script_file = runner / f"step-{index}.sh"
            script_file.write_text(script)
            github_env = runner / f"github-env-{index}"
            github_env.write_text("")
            user.chown(runner)
            online = step.get("name") == "Install dependencies"
            started = time.monotonic()
            with realstack.host_network() if online else nullcontext():
                result = realstack.run_as(
                    user,
                    ["bash", "--noprofile", "--norc", "-eo", "pipefail", script_file],
                    env={**env, **(HOST_NETWORK_ENV if online else {}), "GITHUB_ENV": str(github_env)},
                    cwd=workspace,
                    timeout=900,
                    check=False,
                )
            print(f"step {step.get('name', index)!r}: exit {result.returncode} in {time.monotonic() - started:.1f} s")
            env.update(read_github_env(github_env))
            outputs.append((step.get("name", script), result.returncode, result.stdout + result.stderr))
            if result.returncode != 0 and not failed:
                failed = step.get("name", script)
    finally:
        stop_pgbouncer(temp / "pgbouncer/pgbouncer.pid")
    report = "\n".join(f"--- {name}: {status}\n{output[-3000:]}" for name, status, output in outputs)
    assert failed is None, f"step {failed!r} failed\n{report}"

    # PgBouncer ran in app.json's pool mode, and the tests reached PostgreSQL through it.
    mode = json.loads((workspace / "app.json").read_text())["env"]["PGBOUNCER_POOL_MODE"]["value"]
    assert mode == pool_mode and env["PGBOUNCER_POOL_MODE"] == mode
    assert f"pool_mode = {mode}\n" in (temp / "pgbouncer/pgbouncer.ini").read_text()
    log = (temp / "pgbouncer/pgbouncer.log").read_text()
    assert "db=test_app user=app" in log and "db=app user=app" in log, log[-3000:]
    names = [name for name, _, _ in outputs]
    assert names[-1] == "PgBouncer log" and all(status == 0 for _, status, _ in outputs), report
    test_output = dict((name, output) for name, _, output in outputs)["Test"]
    assert re.search(r"\d+ passed", test_output) and "failed" not in test_output, test_output[-3000:]
    migrations = dict((name, output) for name, _, output in outputs)["Migrations"]
    assert "No changes detected" in migrations, migrations


# --- the migration check: each pattern docs/reliability.md lists, through the workflow's own step ----------------

MIGRATION = """from django.contrib.postgres.operations import AddIndexConcurrently  # noqa: F401
from django.db import migrations, models


class Migration(migrations.Migration):
{extra}    dependencies = [("example", "{previous}")]
    operations = [
{operations}
    ]
"""
# name: ([operations of each migration after 0001_initial, with an optional class line], what the step says)
UNSAFE_MIGRATIONS = {
    "remove_field": (['migrations.RemoveField("exampleresult", "digest")'], "SeparateDatabaseAndState"),
    "delete_model": (['migrations.DeleteModel("ExampleResult")'], "SeparateDatabaseAndState"),
    "rename_field": (['migrations.RenameField("exampleresult", "runs", "count")'], "copy the data"),
    "rename_model": (['migrations.RenameModel("ExampleResult", "Result")'], "copy the data"),
    "not_null_without_db_default": (
        ['migrations.AddField("exampleresult", "flag", models.BooleanField(default=False))'],
        "db_default=",
    ),
    "alter_to_not_null": (
        [
            'migrations.AddField("exampleresult", "note", models.TextField(null=True))',
            'migrations.AlterField("exampleresult", "note", models.TextField(default=""))',
        ],
        "NOT VALID",
    ),
    "alter_type": (['migrations.AlterField("exampleresult", "runs", models.CharField(max_length=9))'], "new type"),
    "add_index": (
        ['migrations.AddIndex("exampleresult", models.Index(fields=["runs"], name="runs_idx"))'],
        "AddIndexConcurrently",
    ),
    "add_unique_field": (
        ['migrations.AddField("exampleresult", "code", models.CharField(max_length=9, null=True, unique=True))'],
        "AddIndexConcurrently",
    ),
    "add_constraint": (
        [
            'migrations.AddConstraint("exampleresult", models.CheckConstraint('
            'condition=models.Q(runs__lt=10**6), name="runs_bound"))'
        ],
        "NOT VALID",
    ),
}
SAFE_MIGRATIONS = {
    "nullable_field": ['migrations.AddField("exampleresult", "note", models.TextField(null=True))'],
    "db_default": ['migrations.AddField("exampleresult", "flag", models.BooleanField(db_default=False))'],
    "new_model_with_index_and_constraint": [
        'migrations.CreateModel("Tag", [("id", models.BigAutoField(primary_key=True)), '
        '("name", models.CharField(max_length=9, unique=True))], options={"indexes": '
        '[models.Index(fields=["name"], name="tag_name_idx")]})\n'
        '        , migrations.AddConstraint("tag", '
        'models.CheckConstraint(condition=~models.Q(name=""), name="tag_name"))'
    ],
    "index_concurrently": [
        (
            "    atomic = False\n",
            'AddIndexConcurrently("exampleresult", models.Index(fields=["runs"], name="runs_idx"))',
        )
    ],
    "two_deploys": [
        'migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField("exampleresult", "runs")])',
        (
            '    second_deploy = "the release before stopped using ExampleResult.runs"\n',
            'migrations.SeparateDatabaseAndState(state_operations=[migrations.AddField("exampleresult", "runs", '
            'models.PositiveIntegerField(null=True))]), migrations.RemoveField("exampleresult", "runs")',
        ),
    ],
}


def add_migrations(project, migrations):
    """Write each entry (operations, or (class lines, operations)) as example's next migration; their names."""
    previous, names = "0001_initial", []
    for number, entry in enumerate(migrations, start=2):
        extra, operations = entry if isinstance(entry, tuple) else ("", entry)
        name = f"{number:04d}_case"
        text = MIGRATION.format(extra=extra, previous=previous, operations=f"        {operations},")
        (project / "example/migrations" / f"{name}.py").write_text(text)
        previous = name
        names.append(name)
    return names


def run_migration_check_step(baked, workspace, venv):
    """The workflow's "Migrations are safe to deploy" step, as the job test runs a step, with the bake's venv
    as actions/setup-python's (pip) or as uv's project environment, not synced again (uv: offline)."""
    shutil.copytree(baked, workspace, ignore=shutil.ignore_patterns(".venv", "staticfiles", "__pycache__"))
    job = yaml.safe_load((baked / ".github/workflows/ci.yml").read_text())["jobs"]["test"]
    (step,) = [step for step in job["steps"] if step.get("name") == "Migrations are safe to deploy"]
    return (
        step,
        workspace,
        {
            "PATH": f"{venv}/bin:{Path(UV).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(workspace),
            "LANG": "C.UTF-8",
            "CI": "true",
            "UV_PROJECT_ENVIRONMENT": str(venv),
            "UV_NO_SYNC": "1",
            "UV_OFFLINE": "1",
            "UV_PYTHON_DOWNLOADS": "never",
            **{name: str(value) for name, value in job["env"].items()},
        },
    )


def run_step(step, workspace, env):
    script = workspace.parent / "step.sh"
    script.write_text(step["run"])
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("package_manager", ["pip", "uv"])
@pytest.mark.parametrize("case", sorted(UNSAFE_MIGRATIONS))
def test_workflow_refuses_a_migration_the_running_code_cannot_live_through(
    bake_once, baked_venv, tmp_path, package_manager, case
):
    baked = bake_once(package_manager=package_manager)
    step, workspace, env = run_migration_check_step(baked, tmp_path / baked.name, baked_venv)
    migrations, safe_way = UNSAFE_MIGRATIONS[case]
    names = add_migrations(workspace, migrations)
    result = run_step(step, workspace, env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    flagged = f"example/migrations/{names[-1]}.py (example.{names[-1]}): "
    assert flagged in output and "Safe: " in output and safe_way in output, output
    assert 'second_deploy = "' in output, output


@pytest.mark.parametrize("package_manager", ["pip", "uv"])
@pytest.mark.parametrize("case", sorted(SAFE_MIGRATIONS))
def test_workflow_accepts_the_safe_ways(bake_once, baked_venv, tmp_path, package_manager, case):
    baked = bake_once(package_manager=package_manager)
    step, workspace, env = run_migration_check_step(baked, tmp_path / baked.name, baked_venv)
    add_migrations(workspace, SAFE_MIGRATIONS[case])
    result = run_step(step, workspace, env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "safe to apply while the app runs" in output, output
    if case == "two_deploys":
        assert "example.0003_case: accepted as a second deploy: the release before stopped" in output, output
