"""heroku_runtime's qcluster command: the cluster stops when every one of its processes gets SIGTERM, as on Heroku."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from heroku_runtime.management.commands import qcluster

PROJECT_DIR = Path(__file__).resolve().parents[2]
SETTINGS = os.environ.get("DJANGO_SETTINGS_MODULE", "")


@pytest.mark.parametrize("value", ["-1", "26", "soon"])
def test_shutdown_timeout_must_fit_in_herokus_30_seconds(monkeypatch, value):
    monkeypatch.setenv("Q_SHUTDOWN_TIMEOUT", value)
    with pytest.raises(CommandError, match="Q_SHUTDOWN_TIMEOUT"):
        qcluster.shutdown_timeout()


def test_name_option_points_to_the_environment_variable():
    # django-q2 reads the cluster name at import, so its --name option never took effect on Linux.
    with pytest.raises(CommandError, match="Q_CLUSTER_NAME"):
        call_command("qcluster", "--name", "other")


def test_descendants_finds_children_and_grandchildren():
    code = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import time; time.sleep(30)'])"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while not qcluster.descendants(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        grandchildren = qcluster.descendants(child.pid)
        assert len(grandchildren) == 1
        assert {child.pid, *grandchildren} <= set(qcluster.descendants(os.getpid()))
    finally:
        qcluster.kill([*qcluster.descendants(child.pid), child.pid])
        child.wait(10)


@pytest.fixture
def cluster_environment(tmp_path):
    """A settings module on a SQLite file with the ORM broker, whichever broker the project uses."""
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}
    (tmp_path / "qcluster_test_settings.py").write_text(
        f"from {SETTINGS} import *  # noqa: F403\n"
        f"DATABASES = {dict(default=database)!r}\n"
        "Q_CLUSTER = {**Q_CLUSTER, 'orm': 'default', 'workers': 2}  # noqa: F405\n"
    )
    environ = {key: value for key, value in os.environ.items() if key not in ("DYNO", "DATABASE_URL")}
    environ.update(DJANGO_SETTINGS_MODULE="qcluster_test_settings", PYTHONPATH=f"{tmp_path}{os.pathsep}{PROJECT_DIR}")
    manage = [sys.executable, "manage.py"]
    result = subprocess.run(
        [*manage, "migrate", "-v0"], cwd=PROJECT_DIR, env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return environ


def test_cluster_exits_when_all_its_processes_get_sigterm(tmp_path, cluster_environment):
    """django-q2's own command hangs here until SIGKILL: its processes die at once and its main process
    waits for them forever (see the command's docstring)."""
    output = tmp_path / "qcluster.log"
    with open(output, "w") as log:
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=PROJECT_DIR,
            env=cluster_environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a dyno's processes are all Heroku's to signal
        )
    try:
        deadline = time.monotonic() + 60
        while " running." not in output.read_text() and time.monotonic() < deadline and cluster.poll() is None:
            time.sleep(0.1)
        assert " running." in output.read_text(), output.read_text()
        time.sleep(1.5)  # into the guard loop, where the sentinel waits on the stop event between checks
        started = time.monotonic()
        os.killpg(cluster.pid, signal.SIGTERM)  # every process of the cluster at once, as Heroku does
        cluster.wait(timeout=20)
        assert time.monotonic() - started < 10, output.read_text()
        assert cluster.returncode == 0, output.read_text()
        assert not group_alive(cluster.pid, wait=2), "processes of the cluster outlived it"
    finally:
        try:
            os.killpg(cluster.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        cluster.wait(10)


def group_alive(group, wait):
    deadline = time.monotonic() + wait
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.1)
