"""Faults of the worker dyno on the real stack: cluster processes killed on their own, tasks stuck in C code.

`bin/dyno worker` (PgBouncer and `manage.py qcluster` as an ordinary user, ORM broker, against a throwaway
PostgreSQL; see realstack.py), with app.json's config vars and a short Q_TIMEOUT/Q_RETRY so that timeouts
and redeliveries happen within seconds:

- an idle worker process SIGKILLed (the OOM killer does that on a dyno): it held the task queue's read
  lock, which nobody can take again; the cluster must come back by itself and a task enqueued afterwards
  must run;
- both workers SIGKILLed in the middle of a task: the cut task is delivered again, later tasks run;
- the sentinel SIGKILLed: what it started dies with it, and a new cluster runs;
- tasks stuck in C code past Q_TIMEOUT, delivered again and again: each time the worker process ends,
  so the cluster's process count stays the same and at most one core's worth of CPU is spent per worker.

The figures go to the run's "figures" summary and are quoted in the baked docs/reliability.md, "Reliability".
"""

import hashlib
import json
import os
import re
import signal
import time
import uuid
from pathlib import Path

import pytest

import realstack as rs
from conftest import figure

SECRET_KEY = "worker-faults-" + "k" * 60
Q_TIMEOUT, Q_RETRY = 2, 12  # a stuck task is killed Q_TIMEOUT + 3 + 1 s after it started, before Q_RETRY
# What the README promises: the cluster runs again within this many seconds of a process being killed.
RECOVERY_BOUND = 20
ENQUEUE = """
from django_q.tasks import async_task
for name, function, args, timeout in {tasks!r}:
    async_task(function, *args, task_name=name, **({{"timeout": timeout}} if timeout else {{}}))
"""


@pytest.fixture(scope="module")
def worker(bake_once, baked_venv, user, workdir, postgres):
    project = rs.prepare_project(bake_once(), workdir / "worker_faults", user, baked_venv, build=False)
    url = postgres.create_database("worker_faults")
    app_json = json.loads((project / "app.json").read_text())
    config_vars = {key: spec["value"] for key, spec in app_json["env"].items() if "value" in spec}
    env = rs.base_env(
        user,
        baked_venv,
        DJANGO_SECRET_KEY=SECRET_KEY,
        DATABASE_URL=url,
        Q_WORKERS=2,
        Q_TIMEOUT=Q_TIMEOUT,
        Q_RETRY=Q_RETRY,
        **config_vars,
    )
    rs.run_as(user, [f"{baked_venv}/bin/python", "manage.py", "migrate", "--noinput"], env=env, cwd=project)
    return project, env


def enqueue(dyno, baked_venv, tasks):
    dyno.run_in_dyno([f"{baked_venv}/bin/python", "manage.py", "shell", "-c", ENQUEUE.format(tasks=tasks)])


def example(key, seconds=0):
    # Its own timeout, above Q_TIMEOUT when it sleeps longer, below Q_RETRY so that it is not run twice.
    return (f"example-{key}", "example.tasks.compute_example", (key, seconds), Q_RETRY - 2 if seconds else None)


def results(postgres, keys):
    listed = ", ".join(f"'{key}'" for key in keys)
    rows = postgres.sql(f"SELECT key, digest, runs FROM example_exampleresult WHERE key IN ({listed})", "worker_faults")
    return {key: (digest, int(runs)) for key, digest, runs in rows}


def clusters_running(dyno):
    return len(re.findall(r"Q Cluster .* running\.", dyno.output))


def worker_pids(dyno):
    """The current cluster's worker processes, from their "ready for work at PID" lines, still alive."""
    pids = [int(pid) for pid in re.findall(r"ready for work at (\d+)", dyno.output)]
    return [pid for pid in pids if Path(f"/proc/{pid}").exists() and pid in rs.process_table()]


def wchan(pid):
    try:
        return Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return ""


def descendants(pid):
    table, found, frontier = rs.process_table(), [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, *_rest) in table.items():
            if ppid == parent:
                found.append(child)
                frontier.append(child)
    return found


def cpu_seconds(pid, children=True):
    """CPU seconds of a process, and of its children it has waited for (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(field) for field in fields[11 : 15 if children else 13]) / 100  # utime stime cutime cstime


def cluster_cpu(app):
    """CPU seconds of the qcluster command and every process below it, the dead ones included: the
    sentinel waits for each worker it replaces, which adds the worker's CPU time to its own cutime."""
    return sum(cpu_seconds(pid) for pid in [app, *descendants(app)])


def start_worker(worker, user, postgres, workdir, name):
    project, env = worker
    dyno = rs.Dyno(project, "worker", env, user, workdir / f"{name}.log", postgres).__enter__()
    dyno.wait_for(lambda: clusters_running(dyno), "the cluster to run", timeout=90)
    dyno.wait_for(lambda: len(worker_pids(dyno)) == 2, "both workers", timeout=30)
    time.sleep(1.5)  # into the guard loop, both workers idle and waiting for a task
    return dyno


def test_idle_worker_killed_the_cluster_recovers(worker, user, postgres, workdir, baked_venv):
    """SIGKILL the idle worker that waits on the task pipe (it holds the task queue's read lock); then a
    task enqueued afterwards runs, within RECOVERY_BOUND s, on the same dyno."""
    dyno = start_worker(worker, user, postgres, workdir, "idle-killed")
    try:
        readers = dyno.wait_for(
            lambda: [pid for pid in worker_pids(dyno) if "pipe" in wchan(pid)], "a worker reading the task pipe", 15
        )
        app = dyno.app_pid()
        os.kill(readers[0], signal.SIGKILL)
        killed = time.monotonic()
        time.sleep(1)
        key = f"after-kill-{uuid.uuid4().hex[:8]}"
        enqueue(dyno, baked_venv, [example(key)])
        dyno.wait_for(lambda: clusters_running(dyno) >= 2, "a new cluster", timeout=RECOVERY_BOUND + 10)
        recovered = time.monotonic() - killed
        dyno.wait_for(lambda: results(postgres, [key]), f"task {key} to run", timeout=RECOVERY_BOUND + 10)
        task_done = time.monotonic() - killed
        same_app = dyno.app_pid() == app and dyno.process.poll() is None
        record = dyno.stop()
    finally:
        dyno.stop()
    figure("idle worker killed", cluster_running_again_s=recovered, task_done_s=task_done)
    assert recovered < RECOVERY_BOUND, f"the cluster took {recovered:.1f} s to come back"
    assert task_done < RECOVERY_BOUND + 5
    assert "was killed by SIGKILL" in dyno.output, dyno.output[-3000:]
    assert same_app, "the dyno restarted instead of the cluster recovering in place"
    digest, runs = results(postgres, [key])[key]
    assert digest == hashlib.sha256(key.encode()).hexdigest() and runs == 1
    assert record["returncode"] == 0 and not record["leftovers"], record


def test_both_workers_killed_mid_task_the_task_runs_again(worker, user, postgres, workdir, baked_venv):
    """Both workers SIGKILLed while one runs an 8 s task: that task runs again Q_RETRY s after it was
    fetched, and a task enqueued after the kill runs as soon as the cluster is back. Each runs once."""
    dyno = start_worker(worker, user, postgres, workdir, "both-killed")
    long_key, later_key = f"long-{uuid.uuid4().hex[:8]}", f"later-{uuid.uuid4().hex[:8]}"
    try:
        enqueue(dyno, baked_venv, [example(long_key, 8)])
        dyno.wait_for(lambda: f"processing example-{long_key} " in dyno.output, "the long task to start", 30)
        started = time.monotonic()
        pids = worker_pids(dyno)
        assert len(pids) == 2, pids
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        enqueue(dyno, baked_venv, [example(later_key)])
        dyno.wait_for(lambda: results(postgres, [later_key]), "the later task", timeout=RECOVERY_BOUND + 10)
        later_done = time.monotonic() - started
        dyno.wait_for(lambda: results(postgres, [long_key]), "the cut task to run again", timeout=Q_RETRY + 40)
        long_done = time.monotonic() - started
        record = dyno.stop()
    finally:
        dyno.stop()
    figure("both workers killed mid-task", later_task_done_s=later_done, cut_task_done_s=long_done, q_retry_s=Q_RETRY)
    done = results(postgres, [long_key, later_key])
    assert {key: runs for key, (_digest, runs) in done.items()} == {long_key: 1, later_key: 1}, done
    assert later_done < RECOVERY_BOUND + 5, f"the later task ran {later_done:.1f} s after the kill"
    queued = postgres.sql("SELECT count(*) FROM django_q_ormq", "worker_faults")
    assert queued == [["0"]], f"tasks left in the queue: {queued}"
    assert record["returncode"] == 0 and not record["leftovers"], record


def test_sentinel_killed_the_cluster_is_replaced(worker, user, postgres, workdir, baked_venv):
    """SIGKILL the sentinel: the processes it started die with it (none is left orphaned, each with
    SIGTERM blocked), a new cluster runs, and a task enqueued afterwards runs."""
    dyno = start_worker(worker, user, postgres, workdir, "sentinel-killed")
    try:
        app = dyno.app_pid()
        old = descendants(app)
        sentinel = [pid for pid, (ppid, *_rest) in rs.process_table().items() if ppid == app]
        assert len(sentinel) == 1, sentinel
        os.kill(sentinel[0], signal.SIGKILL)
        killed = time.monotonic()
        key = f"after-sentinel-{uuid.uuid4().hex[:8]}"
        enqueue(dyno, baked_venv, [example(key)])
        dyno.wait_for(lambda: clusters_running(dyno) >= 2, "a new cluster", timeout=RECOVERY_BOUND + 10)
        recovered = time.monotonic() - killed
        dyno.wait_for(lambda: results(postgres, [key]), f"task {key} to run", timeout=RECOVERY_BOUND + 10)
        orphans = [pid for pid in old if pid in rs.process_table()]
        same_app = dyno.app_pid() == app and dyno.process.poll() is None
        record = dyno.stop()
    finally:
        dyno.stop()
    figure("sentinel killed", cluster_running_again_s=recovered, orphans=len(orphans))
    assert not orphans, f"processes of the killed sentinel still running: {orphans}"
    assert recovered < RECOVERY_BOUND and same_app
    assert "the cluster's sentinel process exited with -9" in dyno.output, dyno.output[-3000:]
    assert record["returncode"] == 0 and not record["leftovers"], record


def test_tasks_stuck_in_c_code_do_not_pile_up(worker, user, postgres, workdir, baked_venv):
    """Tasks that spin in C code (hashlib.pbkdf2_hmac with 10**9 iterations) past Q_TIMEOUT, redelivered
    every Q_RETRY s: every timed-out worker process is killed, the cluster's process count never grows,
    and the CPU spent is no more than the stuck tasks' allotted time."""
    dyno = start_worker(worker, user, postgres, workdir, "stuck")
    spin = [(f"spin-{i}", "hashlib.pbkdf2_hmac", ("sha256", b"x", b"y", 10**9), None) for i in range(3)]
    target_kills = 4
    try:
        app = dyno.app_pid()
        baseline = len(descendants(app))  # sentinel, 2 workers, monitor, pusher
        counts, cpu_before = [], cluster_cpu(app)
        enqueue(dyno, baked_venv, spin)
        started = time.monotonic()
        deadline = started + 3 * Q_RETRY + 30
        while dyno.output.count("qcluster: killed worker") < target_kills and time.monotonic() < deadline:
            counts.append(len(descendants(app)))
            time.sleep(0.5)
        time.sleep(1)
        elapsed = time.monotonic() - started
        kills = dyno.output.count("qcluster: killed worker")
        started_tasks = dyno.output.count("processing spin-")
        cpu = cluster_cpu(app) - cpu_before
        final = len(descendants(app))
        spinning = [pid for pid in descendants(app) if cpu_seconds(pid, children=False) > Q_TIMEOUT + 6]
        same_app = dyno.process.poll() is None and dyno.app_pid() == app
        record = dyno.stop()
    finally:
        dyno.stop()
    figure(
        "tasks stuck in C code",
        timeouts_killed=kills,
        seconds=elapsed,
        processes_baseline=baseline,
        processes_max=max(counts),
        processes_after=final,
        tasks_started=started_tasks,
        cpu_s=cpu,
    )
    assert kills >= target_kills, f"{kills} stuck workers killed in {elapsed:.0f} s\n{dyno.output[-3000:]}"
    assert max(counts) <= baseline and final == baseline, (baseline, counts, final)
    assert not spinning, f"processes still spinning after their timeout: {spinning}"
    # Each stuck task spins until the guard kills it, Q_TIMEOUT + 3 + 1 s after it started, and no longer
    # (CPU seconds, not wall-clock: on a busy machine a spinning process gets less, never more).
    assert cpu <= started_tasks * (Q_TIMEOUT + 3 + 1 + 1) + 5, (cpu, started_tasks, elapsed)
    assert same_app, "the dyno restarted"
    assert record["returncode"] == 0 and not record["leftovers"], record
