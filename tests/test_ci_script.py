""".ci/run and the README's set-up commands, read and run with stand-ins for apt, service and Python.

.ci/run is run for real from a copy of it, with apt-get, service, the Heroku CLI, the system Python and
the venv's pip and pytest replaced by small scripts that log what they were asked to do: the tests then
check what it did (pip only from the venv it made, the README's test command, arguments passed on,
pytest's exit status kept, exit 5 a failure) and what it left (services as found: one that ran before
still runs, one a package started is stopped again, none started past policy-rc.d, and policy-rc.d gone
afterwards). The end-to-end run on a clean Debian root is tests/test_fresh_machine.py.
"""

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, SCHEMA_FILES
from freshroot import readme_commands

CI_RUN = ROOT / ".ci" / "run"


def test_readme_command_1_installs_what_a_fresh_image_lacks_and_never_pip_installs_on_the_system():
    command = readme_commands()["1"]
    steps = command.split(" && ")
    assert steps[0] == "sudo apt-get update"
    install = shlex.split(steps[1])
    assert install[:4] == ["sudo", "apt-get", "install", "-y"] and {"python3-venv", "pipx"} <= set(install)
    assert steps[2].startswith("pipx run cruft create --no-input https://github.com/")
    # pip is only ever the project's venv pip: PEP 668 refuses the system one, and fresh images have none.
    for step in steps:
        words = shlex.split(step)
        for index, word in enumerate(words):
            if word == "pip" or word.endswith("/pip") or word == "pip3" or (word == "-m" and words[index + 1] == "pip"):
                assert word == ".venv/bin/pip", step
    assert steps[-3:] == [
        ".venv/bin/pip install -r requirements-dev.txt",
        ".venv/bin/python manage.py migrate",
        ".venv/bin/python manage.py runserver",
    ]


@pytest.mark.parametrize("readme", ["README.md", "benchmarks/README.md"])
def test_no_command_in_the_readmes_runs_pip_outside_a_venv(readme):
    """PEP 668 refuses pip on the system Python and fresh images have none: every pip in a shown command
    is a venv's (`.venv/bin/pip`), in the set-up commands and the benchmark's alike."""
    text = (ROOT / readme).read_text()
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, re.DOTALL)
    # Inline commands are the spans that chain steps; `pip install` alone in prose names what is refused.
    shown = blocks + [span for span in re.findall(r"`([^`\n]+)`", text) if "&&" in span]
    pips = []
    for command in shown:
        words = command.replace("&&", " ").split()
        for index, word in enumerate(words):
            if (
                word in ("pip", "pip3")
                or word.endswith(("/pip", "/pip3"))
                or words[index - 1 : index + 1] == ["-m", "pip"]
            ):
                pips.append(word)
    assert pips, f"{readme} shows no pip command: this test would check nothing"
    assert set(pips) == {".venv/bin/pip"}, pips


def test_readme_command_2_is_the_ci_script_and_the_test_command_is_what_it_runs():
    commands = readme_commands()
    assert commands["2"] == "sudo bash .ci/run"
    assert commands["test"] == "sudo .venv/bin/python -m pytest tests"


def script_lines():
    return [
        line.strip() for line in CI_RUN.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def test_ci_run_never_runs_pip_outside_the_venv_it_makes():
    pip_lines = [line for line in script_lines() if re.search(r"\bpip3?\b", line)]
    assert pip_lines, "no pip at all: where do the test tools come from?"
    for line in pip_lines:
        assert re.fullmatch(r"\.venv/bin/pip install .*-r tests/requirements\.txt", line), line
    assert any(re.search(r"-m venv \.venv$", line) for line in script_lines())


def test_ci_run_installs_every_tool_the_tests_look_for():
    import realstack

    packages = set(re.search(r"PACKAGES=\(([^)]*)\)", CI_RUN.read_text(), re.S).group(1).split())
    # postgresql-client comes with postgresql
    needed = {"postgresql" if package.startswith("postgresql") else package for package in realstack.TOOLS.values()}
    assert needed <= packages
    # python3-venv: the venv module (Debian splits it out); debootstrap: the fresh-machine test's root
    assert {"python3-venv", "python3-dev", "build-essential", "debootstrap", "redis-server", "memcached"} <= packages


STUBS = {
    # apt-get: logs, and on install behaves like packages' maintainer scripts: postgresql starts its
    # service through invoke-rc.d (which asks policy-rc.d first), redis-server starts regardless.
    "apt-get": """#!/bin/sh
echo "apt-get $*" >> "$LOG"
case "$*" in *install*)
  if [ -x "$POLICY_RC_D" ]; then echo "policy-rc.d present during install" >> "$LOG"; fi
  if ! [ -x "$POLICY_RC_D" ] || "$POLICY_RC_D" postgresql start; then touch "$STATE/postgresql"; fi
  touch "$STATE/redis-server";;
esac
""",
    "service": """#!/bin/sh
case "$2" in
  status) test -e "$STATE/$1";;
  stop) echo "service $1 stop" >> "$LOG"; rm -f "$STATE/$1";;
  *) exit 1;;
esac
""",
    # the Heroku CLI, found on PATH so that .ci/run does not install it (a fresh machine has none, and the
    # real install takes minutes)
    "heroku": """#!/bin/sh
echo "heroku $*" >> "$LOG"
""",
    # the system Python: makes a venv whose pip and python log their arguments
    "python3": """#!/bin/sh
echo "system-python $*" >> "$LOG"
mkdir -p .venv/bin
printf '#!/bin/sh\\necho "venv-pip $*" >> "$LOG"\\n' > .venv/bin/pip
printf '#!/bin/sh\\necho "venv-python $*" >> "$LOG"\\nexit "$PYTEST_STATUS"\\n' > .venv/bin/python
chmod +x .venv/bin/pip .venv/bin/python
""",
}


@pytest.fixture
def ci_run(tmp_path):
    """Run a copy of .ci/run with the stand-ins; returns (run(*args, status=0) -> result, log, state)."""
    if os.geteuid() != 0:
        pytest.fail(".ci/run re-runs itself through sudo when not root; run these tests as root")
    checkout, stubs, state = tmp_path / "checkout", tmp_path / "bin", tmp_path / "state"
    (checkout / ".ci").mkdir(parents=True)
    (checkout / "tests").mkdir()
    shutil.copy(CI_RUN, checkout / ".ci/run")
    shutil.copy(ROOT / "tests/requirements.txt", checkout / "tests/requirements.txt")
    stubs.mkdir()
    state.mkdir()
    for name, text in STUBS.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    log = tmp_path / "log"
    log.touch()
    policy = tmp_path / "policy-rc.d"

    def run(*args, status=0):
        env = {
            "PATH": f"{stubs}:/usr/bin:/bin",
            "LOG": str(log),
            "STATE": str(state),
            "POLICY_RC_D": str(policy),
            "SYSTEM_PYTHON": str(stubs / "python3"),
            "PYTEST_STATUS": str(status),
        }
        return subprocess.run(
            ["bash", str(checkout / ".ci/run"), *args], env=env, capture_output=True, text=True, timeout=60
        )

    return run, log, state, policy


def test_ci_run_makes_a_venv_installs_the_test_tools_there_and_runs_the_readme_test_command(ci_run):
    run, log, _state, _policy = ci_run
    result = run()
    assert result.returncode == 0, result.stderr
    lines = log.read_text().splitlines()
    assert "system-python -m venv .venv" in lines
    assert any(line.startswith("venv-pip install") and "-r tests/requirements.txt" in line for line in lines)
    ran = [line for line in lines if line.startswith("venv-python")]
    readme_test = readme_commands()["test"].split()
    assert readme_test[:2] == ["sudo", ".venv/bin/python"]
    assert ran == ["venv-python " + " ".join(readme_test[2:])]
    # the venv comes before its pip, its pip before pytest
    order = [
        next(i for i, line in enumerate(lines) if line.startswith(prefix))
        for prefix in ("system-python", "venv-pip", "venv-python")
    ]
    assert order == sorted(order)


def test_ci_run_passes_its_arguments_to_pytest(ci_run):
    run, log, _state, _policy = ci_run
    assert run("tests/test_bake.py", "-x", "-k", "app json").returncode == 0
    assert "venv-python -m pytest tests/test_bake.py -x -k app json" in log.read_text().splitlines()


@pytest.mark.parametrize("status", [1, 2, 5])
def test_ci_run_fails_when_pytest_does_including_no_tests_collected(ci_run, status):
    run, _log, _state, _policy = ci_run
    result = run(status=status)
    assert result.returncode == status
    if status == 5:
        assert "collected no tests" in result.stderr


def test_ci_run_leaves_the_machines_services_as_it_found_them(ci_run):
    run, log, state, policy = ci_run
    (state / "nginx").touch()  # the machine's own nginx runs before
    result = run()
    assert result.returncode == 0, result.stderr
    lines = log.read_text().splitlines()
    assert "policy-rc.d present during install" in lines
    assert not policy.exists(), "policy-rc.d must be removed afterwards"
    assert not (state / "postgresql").exists(), "policy-rc.d should have kept PostgreSQL from starting"
    assert not (state / "redis-server").exists(), "a service the install started must be stopped again"
    assert "service redis-server stop" in lines and "service nginx stop" not in lines
    assert (state / "nginx").exists(), "a service that ran before must be left running"


def test_ci_run_keeps_an_existing_policy_rc_d(ci_run):
    run, _log, _state, policy = ci_run
    policy.write_text("#!/bin/sh\nexit 101\n# the machine's own\n")
    policy.chmod(0o755)
    assert run().returncode == 0
    assert policy.read_text().endswith("# the machine's own\n")


def test_schemas_are_vendored_beside_the_tests():
    """A plain clone validates app.json against both schemas: none is looked for outside the checkout."""
    names = {path.name for path in SCHEMA_FILES}
    assert names == {"app-json.schema.json", "app-json.heroku-mcp-server.schema.json"}
    notes = (ROOT / "tests/schemas/README.md").read_text()
    assert all(name in notes for name in names) and "at 331c0476735d840a6842b22359932e7624d051d2" in notes
    for path in set((ROOT / "tests").glob("*.py")) - {Path(__file__)}:
        assert "ROOT.parent" not in path.read_text(), f"{path.name} reaches outside the checkout"


def test_nothing_the_dyno_user_runs_lives_in_the_checkout():
    """A clone under /root or a home directory (mode 700) is closed to the dyno user."""
    import conftest

    for path in (conftest.VENV_CACHE, conftest.STACKS_DIR):
        assert not Path(path).resolve().is_relative_to(ROOT), path
