"""The baked project's GitHub Actions workflow: valid structure, and the steps that make it meaningful."""

import json

import pytest
import yaml

from conftest import POOL_MODES


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
    # The pool mode comes from app.json at run time, so the copied-as-is workflow follows the bake's answer.
    assert "['env']['PGBOUNCER_POOL_MODE']['value']" in pgbouncer_step["run"]
    assert "pool_mode = $mode" in pgbouncer_step["run"]
    mode = json.loads((project / "app.json").read_text())["env"]["PGBOUNCER_POOL_MODE"]["value"]
    assert mode in POOL_MODES
    assert ":6000/" in job["env"]["DATABASE_URL"]
    (test_step,) = [step for step in steps if step.get("run", "").startswith("pytest")]
    test_step_index = steps.index(test_step)
    assert steps.index(pgbouncer_step) < test_step_index
