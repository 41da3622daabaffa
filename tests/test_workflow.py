"""The baked project's GitHub Actions workflow: valid structure, and the steps that make it meaningful."""

import json
import re

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
