"""The README's two commands, verbatim, on a clean Debian 12 root (tests/freshroot.py): the honest proof that
a new user's machine needs nothing else.

- Command 1 runs as a cloud image's ordinary user (sudo without password, as cloud-init sets it up) with a
  copy of this checkout, made a git repository for cruft to clone, in place of the GitHub address (GitHub
  is not reachable from every CI machine).
  Everything up to `runserver` runs as written; `runserver` then runs in a network namespace of its own
  (port 8000 on this machine may be anyone's) and `/` and `/health/` must answer 200.
- Command 2 runs from a clone under /root (mode 700, closed to the dyno user) with a subset of the suite
  passed through `.ci/run`'s arguments: the real stack (two at once), the schema checks and the lookup of
  PostgreSQL's programs; then the README's test command runs in a new login shell, as a user would.

The durations go to the run's "figures" summary.
"""

import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import freshroot
import realstack as rs
from conftest import ROOT, TEST_DIR, figure, open_dir
from freshroot import readme_commands

# The real stack two at once, the schema checks, the lookup of PostgreSQL's programs, and every test that
# reads what the machine has: its Python's wording (the NUL-byte slug), .ci/run's own checks, the Heroku
# CLI and Node.js (the README's commands), uv's view of the CA store and /proc.
SUBSET = [
    "tests/test_isolation.py",
    "tests/test_bake.py",
    "tests/test_hooks.py",
    "tests/test_ci_script.py",
    "tests/test_browser.py",
    "tests/test_uv_stack.py",
    "-k",
    "two_stacks or postgresql_programs or dyno_user_can_run or may_enter or app_json_validates"
    " or (awkward_answer and nul) or ci_run or readme_command"
    " or every_command_of_the_readme or uv_bake_boots",
]


@pytest.fixture(scope="module")
def tarball():
    if os.geteuid() != 0:
        pytest.fail("building and entering a Debian root needs root: sudo bash .ci/run")
    started = time.monotonic()
    path = freshroot.base_tarball(open_dir(TEST_DIR))
    figure("clean Debian 12 root ready (debootstrap when not cached)", f"{time.monotonic() - started:.0f} s")
    return path


@pytest.fixture
def fresh_root(tarball):
    base = Path(tempfile.mkdtemp(prefix="fresh-root-", dir=open_dir(TEST_DIR)))
    try:
        yield freshroot.make_root(tarball, base / "root"), base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_readme_command_1_bakes_and_serves_on_a_clean_debian_12(fresh_root):
    root, base = fresh_root
    home = f"/home/{freshroot.CLOUD_USER}"
    freshroot.copy_checkout(ROOT, root / home.lstrip("/") / "heroku-django")
    freshroot.run_in_root(root, f"chown -R {freshroot.CLOUD_USER}: {home}/heroku-django")
    # cruft clones the template with git: the copy becomes a repository, as a clone of GitHub's would be.
    identity = "-c user.name=admin -c user.email=admin@localhost -c commit.gpgsign=false"
    freshroot.run_in_root(
        root,
        f"cd ~/heroku-django && git init -q && git add -A && git {identity} commit -q -m template",
        user=freshroot.CLOUD_USER,
    )
    command = readme_commands()["1"]
    assert "https://github.com/org/heroku-django" in command
    steps = command.replace("https://github.com/org/heroku-django", "~/heroku-django").split(" && ")
    serve = steps.pop()
    assert serve == ".venv/bin/python manage.py runserver"
    cd = next(step for step in steps if step.startswith("cd "))

    started = time.monotonic()
    freshroot.run_in_root(root, " && ".join(steps), user=freshroot.CLOUD_USER, timeout=1800)
    figure("README command 1 up to runserver on a clean Debian 12 root", f"{time.monotonic() - started:.0f} s")

    log = base / "runserver.log"
    with rs.StackNamespace(base / "net"), open(log, "wb") as output:
        server = subprocess.Popen(
            freshroot.root_command(root, f"{cd} && {serve}", user=freshroot.CLOUD_USER),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={"PATH": freshroot.SBIN_PATH, "LANG": "C.UTF-8"},
        )
        try:
            statuses, deadline = {}, time.monotonic() + 90
            while time.monotonic() < deadline and set(statuses.values()) != {200}:
                assert server.poll() is None, f"runserver exited {server.returncode}:\n{log.read_text()[-3000:]}"
                for path in ("/", "/health/"):
                    try:
                        statuses[path] = rs.http_request(8000, "GET", path, timeout=5)[0]
                    except OSError as error:
                        statuses[path] = repr(error)
                time.sleep(0.5)
            assert statuses == {"/": 200, "/health/": 200}, f"{statuses}\n{log.read_text()[-3000:]}"
        finally:
            # unshare ignores SIGTERM while it waits; its --kill-child takes everything in the root along
            server.kill()
            server.wait(30)


def test_readme_command_2_passes_from_a_clone_under_root(fresh_root):
    root, _base = fresh_root
    freshroot.copy_checkout(ROOT, root / "root/heroku-django")
    assert oct((root / "root").stat().st_mode & 0o777) == "0o700"
    command = readme_commands()["2"]
    assert command == "sudo bash .ci/run"

    started = time.monotonic()
    result = freshroot.run_in_root(
        root, f"cd /root/heroku-django && {command} {shlex.join(SUBSET)}", timeout=2400, check=False
    )
    figure("README command 2 (with the subset) on a clean Debian 12 root", f"{time.monotonic() - started:.0f} s")
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"{summary}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary

    # Afterwards, in a plain login shell: the README's test command finds everything (PostgreSQL's
    # programs off PATH included).
    test_command = readme_commands()["test"]
    assert test_command.endswith(" tests")
    one_test = test_command.removesuffix(" tests") + " tests/test_isolation.py -k postgresql_programs"
    result = freshroot.run_in_root(root, f"cd /root/heroku-django && {one_test}", check=False)
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
