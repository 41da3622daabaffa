"""The template's own GitHub workflow (.github/workflows/ci.yml at the repository root): actionlint accepts it,
it runs .ci/run for pushes and pull requests, its fast job names test files that exist and collect, and its
actions are the versions the baked workflows use."""

import shlex
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run

WORKFLOW = ROOT / ".github/workflows/ci.yml"
BAKED_WORKFLOWS = sorted((ROOT / "{{cookiecutter.project_slug}}/.github/workflows").glob("*.yml"))
# actionlint's binary from PyPI (tests/requirements.txt), next to the Python running the tests.
ACTIONLINT = Path(sys.executable).parent / "actionlint"


def load(path):
    return yaml.safe_load(path.read_text())


def ci_run_arguments(job):
    """The arguments of the job's one `.ci/run` step."""
    (command,) = [step["run"] for step in job["steps"] if ".ci/run" in step.get("run", "")]
    words = shlex.split(command)
    assert words[:2] == ["bash", ".ci/run"], command
    return words[2:]


def actionlint(path):
    assert ACTIONLINT.exists(), f"{ACTIONLINT} is missing: pip install -r tests/requirements.txt"
    return run([str(ACTIONLINT), "-no-color", str(path)], cwd=ROOT, check=False)


def test_actionlint_accepts_the_workflow():
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_copy(tmp_path):
    """The lint can fail: an unknown runner label and a job that needs a job which does not exist."""
    broken = tmp_path / ".github/workflows/ci.yml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text().replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.4", 1)
    broken.write_text(text.replace("  full:\n", "  full:\n    needs: [missing]\n", 1))
    result = actionlint(broken)
    assert result.returncode != 0
    assert "ubuntu-24.4" in result.stdout and "missing" in result.stdout, result.stdout


def test_runs_ci_run_for_pushes_and_pull_requests():
    workflow = load(WORKFLOW)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert {"push", "pull_request"} <= set(triggers)
    assert set(workflow["jobs"]) == {"fast", "full", "buildpacks"}
    for job in workflow["jobs"].values():
        assert job["runs-on"] == "ubuntu-24.04"
        assert "--privileged" in job["container"]["options"]  # namespaces and debootstrap
        assert job["steps"][0]["uses"].startswith("actions/checkout@")
        assert any(".ci/run" in step.get("run", "") for step in job["steps"])
    assert ci_run_arguments(workflow["jobs"]["full"]) == []  # no arguments: all of tests/


def test_the_full_suite_runs_on_each_debian_release_the_readme_names():
    """The README promises the two commands on Debian 12 and 13: the full job runs on both images."""
    full = load(WORKFLOW)["jobs"]["full"]
    assert full["container"]["image"] == "${{ matrix.image }}"
    assert full["strategy"]["matrix"]["image"] == ["debian:12", "debian:13"]
    assert full["strategy"]["fail-fast"] is False  # one release's failure does not hide the other's
    readme = (ROOT / "README.md").read_text()
    assert "Debian 12" in readme and "Debian 13" in readme and "Ubuntu" not in readme.split("## ")[0]


def test_the_buildpacks_job_runs_real_buildpacks_on_the_three_it_clones():
    steps = load(WORKFLOW)["jobs"]["buildpacks"]["steps"]
    script = "\n".join(step.get("run", "") for step in steps)
    for name in ("python", "pgbouncer", "nginx"):
        assert f"--{name} ../buildpack-{name}" in script
    assert (
        "https://github.com/heroku/heroku-buildpack-$name" in script and "for name in python pgbouncer nginx" in script
    )
    assert "scripts/real_buildpacks.py" in script and (ROOT / "scripts/real_buildpacks.py").is_file()


def test_fast_jobs_test_files_exist_and_collect():
    """Every file the fast job names exists, and pytest collects tests from each with the job's options (a
    renamed file, or a marker that leaves a file empty, fails here, not on GitHub)."""
    arguments = ci_run_arguments(load(WORKFLOW)["jobs"]["fast"])
    files = [argument for argument in arguments if argument.startswith("tests/")]
    assert files and all(name.startswith("tests/test_") for name in files), arguments
    for name in files:
        assert (ROOT / name).is_file(), f"{name} does not exist"
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *arguments]
    collected = run(collect, cwd=ROOT)
    for name in files:
        assert f"{name}::" in collected.stdout, f"no test collected from {name}"
    # The hook and bake tests are the point of the fast job.
    assert {"tests/test_hooks.py", "tests/test_bake.py"} <= set(files)


@pytest.mark.parametrize("baked", BAKED_WORKFLOWS, ids=lambda path: path.name)
def test_actions_are_the_versions_the_baked_workflows_use(baked):
    """One version of each action across the template: the baked workflows' (tests/test_workflow.py holds
    those to the current majors)."""

    def uses(path):
        return {
            step["uses"].split("@")[0]: step["uses"].split("@")[1]
            for job in load(path)["jobs"].values()
            for step in job["steps"]
            if "uses" in step
        }

    ours, theirs = uses(WORKFLOW), uses(baked)
    assert ours, "the template workflow uses no action"
    for action, version in ours.items():
        assert action in theirs, f"{action} is not used by {baked.name}: no version to agree with"
        assert version == theirs[action], f"{action}@{version} here, @{theirs[action]} in {baked.name}"
