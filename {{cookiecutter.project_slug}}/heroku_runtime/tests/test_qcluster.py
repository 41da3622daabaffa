"""heroku_runtime's qcluster command: the cluster stops when every one of its processes gets SIGTERM, as on Heroku."""

import contextlib
import json
import os
import re
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


# What the command is for, against whatever django-q2 is installed: each test runs the cluster as a dyno does.


@contextlib.contextmanager
def running_cluster(tmp_path, environ, **extra):
    """`manage.py qcluster` in its own process group, once it says it runs; killed at the end, whatever happened."""
    output = tmp_path / "qcluster.log"
    with open(output, "w") as log:
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=PROJECT_DIR,
            env={**environ, **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_for(lambda: " running." in output.read_text(), 60), output.read_text()
        yield cluster, output
    finally:
        try:
            os.killpg(cluster.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        cluster.wait(10)


def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def manage_shell(environ, code):
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=PROJECT_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1]  # after shell's own line on what it imported


def enqueue(environ, func, *args):
    return manage_shell(environ, f"from django_q.tasks import async_task; print(async_task({func!r}, *{args!r}))")


def results(environ):
    """{task id: success} of every task the cluster finished."""
    code = (
        "import json; from django_q.models import Task; "
        "print(json.dumps(dict(Task.objects.values_list('id', 'success'))))"
    )
    return json.loads(manage_shell(environ, code))


def process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_as_heroku_does(cluster, output):
    os.killpg(cluster.pid, signal.SIGTERM)
    cluster.wait(timeout=20)
    assert cluster.returncode == 0, output.read_text()


def test_sigterm_to_every_process_loses_no_task(tmp_path, cluster_environment):
    """A task running when the dyno stops finishes (well within Q_SHUTDOWN_TIMEOUT) and its result is saved."""
    with running_cluster(tmp_path, cluster_environment, Q_POLL="0.2") as (cluster, output):
        task = enqueue(cluster_environment, "time.sleep", 2)
        assert wait_for(lambda: "processing" in output.read_text(), 20), output.read_text()
        stop_as_heroku_does(cluster, output)
    assert results(cluster_environment) == {task: True}, output.read_text()


def test_a_killed_idle_worker_is_replaced_and_the_next_task_runs(tmp_path, cluster_environment):
    """django-q2 alone would start a worker that waits forever on the dead one's queue lock."""
    with running_cluster(tmp_path, cluster_environment, Q_POLL="0.2") as (cluster, output):
        workers = re.findall(r"ready for work at (\d+)", output.read_text())
        assert workers, output.read_text()
        os.kill(int(workers[0]), signal.SIGKILL)  # as the kernel's OOM killer would
        assert wait_for(lambda: output.read_text().count(" running.") == 2, 30), output.read_text()
        assert "replacing the cluster" in output.read_text()
        task = enqueue(cluster_environment, "math.sqrt", 9)
        assert wait_for(lambda: results(cluster_environment).get(task), 30), output.read_text()
        stop_as_heroku_does(cluster, output)


def test_a_task_stuck_in_c_is_ended_and_the_next_task_runs(tmp_path, cluster_environment):
    """A billion rounds of PBKDF2 run in OpenSSL's C, where django-q2's SIGALRM timeout never lands (its handler
    runs only between Python bytecodes)."""
    with running_cluster(tmp_path, cluster_environment, Q_POLL="0.2", Q_TIMEOUT="1", Q_WORKERS="1") as (
        cluster,
        output,
    ):
        enqueue(cluster_environment, "hashlib.pbkdf2_hmac", "sha256", b"key", b"salt", 10**9)
        assert wait_for(lambda: "'hashlib.pbkdf2_hmac'" in output.read_text(), 20), output.read_text()
        name = re.search(r"(\S+) processing \S+ 'hashlib.pbkdf2_hmac'", output.read_text())[1]
        stuck = int(re.search(rf"{name} ready for work at (\d+)", output.read_text())[1])
        assert wait_for(lambda: "qcluster: killed worker" in output.read_text(), 30), output.read_text()
        assert wait_for(lambda: not process_exists(stuck), 5), f"worker {stuck} still runs its task"
        task = enqueue(cluster_environment, "math.sqrt", 9)
        assert wait_for(lambda: results(cluster_environment).get(task), 30), output.read_text()
        stop_as_heroku_does(cluster, output)
