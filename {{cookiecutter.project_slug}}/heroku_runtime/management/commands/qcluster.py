"""`manage.py qcluster`: django-q2's cluster, made to stop cleanly when Heroku stops the dyno.

Django runs this command instead of django_q's own because `heroku_runtime` comes before `django_q` in
INSTALLED_APPS (settings.py says so there, and the project's tests fail if it does not), so
the Procfile line stays `worker: bin/start-pgbouncer python manage.py qcluster`.

Why it is needed. Heroku stops a dyno (every deploy, config change and daily restart) by sending SIGTERM
to every process in it at once, and SIGKILL 30 s later (R12 in the logs). django-q2 1.11 expects SIGTERM
in its main process only: its sentinel process resets SIGTERM to the default action, and the pusher,
monitor and workers that the sentinel forks inherit that. So the broadcast kills all of them on the spot,
running tasks included, while the main process's handler (Cluster.stop) sets the multiprocessing stop
Event. Event.set() wakes whoever sleeps on the event's Condition and waits for them to acknowledge: the
sentinel sleeps there between its guard cycles, but it is dead, so the main process waits forever, until
SIGKILL. (SIGTERM to the main process alone works: the sentinel is alive to wake up.)

What this command changes, and nothing else:
- SIGTERM and SIGINT are blocked before the cluster starts its processes, which inherit the signal mask,
  so the broadcast no longer kills them (a blocked signal just stays pending);
- this process alone takes the signal and stops the cluster the way django-q2 does it itself, through
  the stop event, from its main loop rather than from the signal handler: the pusher stops fetching
  tasks, the workers finish the tasks they have, the monitor saves and acknowledges their results, then
  everything exits;
- whatever still runs Q_SHUTDOWN_TIMEOUT seconds after the signal (default 6, well inside Heroku's 30)
  is killed. Its tasks were not acknowledged, so the ORM broker delivers them again Q_RETRY seconds after
  they were fetched: at least once, which is why tasks must be idempotent. (The Redis broker loses them:
  with it, keep tasks shorter than Q_SHUTDOWN_TIMEOUT.)

Programs that tasks start inherit the blocked signals too: stop one with Popen.kill(), not terminate().

Two faults that leave django-q2's cluster broken without anything restarting it, handled here too:
- A cluster process killed on its own (the kernel's OOM killer on a dyno short of memory, a kill -9).
  The processes share multiprocessing queues, each guarded by locks that live in shared memory: an idle
  worker holds the task queue's read lock while it waits for a task, the monitor the result queue's, a
  worker's feeder thread the result queue's write lock while it sends a result. A lock held by a dead
  process is never released, so django-q2's sentinel starts a replacement that waits forever beside the
  others, and the dyno looks healthy while no task runs. So when a process of the cluster dies on a
  signal, the sentinel stops fetching tasks and this process replaces the whole cluster (new queues, new
  locks): the same stop as for SIGTERM, Q_SHUTDOWN_TIMEOUT for running tasks to finish, then a new
  cluster. The same if the sentinel itself dies (the processes it started die with it) or its guard
  loop stops going round (STALLED_AFTER).
  Tasks that were fetched but not finished are delivered again Q_RETRY seconds after they were fetched
  (ORM broker). More than MAX_RESTARTS restarts within RESTART_WINDOW seconds: the command exits 1, and
  Heroku restarts the dyno.
- A task stuck in C code past Q_TIMEOUT. django-q2's timeout is a SIGALRM handler, which runs only between
  Python bytecodes, and its guard then ends the worker with SIGTERM, which is blocked here. So the guard
  kills a worker that is still running KILL_GRACE seconds after its time is up, and starts a new one.
"""

import collections
import ctypes
import multiprocessing
import multiprocessing.util
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django_q import cluster as django_q_cluster
from django_q.cluster import Cluster
from django_q.conf import Conf, logger
from django_q.management.commands import qcluster

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
DEFAULT_SHUTDOWN_TIMEOUT = 6
# Heroku sends SIGKILL 30 s after SIGTERM; PgBouncer stops only after this process has exited.
MAX_SHUTDOWN_TIMEOUT = 25
# A worker still running this long after django-q2's guard found it past Q_TIMEOUT (Q_TIMEOUT + 3 s after
# it started) is stuck outside Python: killed. One that timed out in Python exits well within it.
KILL_GRACE = 1
# The guard loop goes round every 0.5 s, and once a minute runs the scheduler's queries (each bounded
# by PgBouncer's query_wait_timeout); a guard silent for this long is stuck.
STALLED_AFTER = 60
# Replacing the cluster more often than this means something kills it again and again (a task that
# always outgrows the dyno's memory): exit, so that Heroku restarts the dyno and shows it crashing.
MAX_RESTARTS, RESTART_WINDOW = 5, 600


def shutdown_timeout():
    value = os.environ.get("Q_SHUTDOWN_TIMEOUT", str(DEFAULT_SHUTDOWN_TIMEOUT))
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if not 0 <= seconds <= MAX_SHUTDOWN_TIMEOUT:
        raise CommandError(
            f"Q_SHUTDOWN_TIMEOUT={value!r}: give the seconds running tasks may take to finish after SIGTERM, "
            f"from 0 to {MAX_SHUTDOWN_TIMEOUT} (Heroku kills the dyno 30 s after SIGTERM)."
        )
    return seconds


def parents():
    """{pid: parent pid} of every process: from /proc on Linux (a dyno), from ps elsewhere (macOS)."""
    table = {}
    if Path("/proc/self/stat").exists():
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                table[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # exited meanwhile
    else:
        listing = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True)  # noqa: S607
        for line in listing.stdout.splitlines():
            pid, parent = line.split()
            table[int(pid)] = int(parent)
    return table


def descendants(root):
    """Pids of every process below `root`."""
    children = {}
    for pid, parent in parents().items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def die_with_parent():
    """Have the kernel SIGKILL this process when the process that started it dies (Linux; a no-op
    elsewhere). The cluster's processes ignore SIGTERM, so without it those of a sentinel that was killed
    would run on, orphaned, beside the cluster that replaces it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Heartbeat:
    """The sentinel's stop event, noting the time whenever the guard loop waits on it, once a cycle."""

    def __init__(self, event, beat):
        self.event, self.beat = event, beat

    def wait(self, timeout=None):
        self.beat.value = time.monotonic()
        return self.event.wait(timeout)

    def __getattr__(self, name):
        return getattr(self.event, name)


class WatchedSentinel(django_q_cluster.Sentinel):
    """django-q2's sentinel, reporting the faults it cannot recover from (see the docstring above)."""

    # Shared with the command's process: set there before the cluster forks, inherited by the fork.
    beat = None  # when the guard loop last went round (time.monotonic())
    broken = None  # 1 once a process of the cluster died on a signal

    def __init__(self, stop_event, *args, **kwargs):
        die_with_parent()  # with the command's process; and each process it starts, with it
        multiprocessing.util.register_after_fork(self, lambda sentinel: die_with_parent())
        super().__init__(Heartbeat(stop_event, self.beat), *args, **kwargs)

    def reincarnate(self, process):
        if self.broken.value:
            return  # the command replaces the whole cluster
        if process in self.pool and process.timer.value == 0 and process.is_alive():
            # Past Q_TIMEOUT + 3 s: django-q2 would send SIGTERM, which this cluster blocks.
            process.join(KILL_GRACE)
            if process.is_alive():
                process.kill()
                process.join(5)
                logger.error(
                    "qcluster: killed worker %s (pid %s): its task was still running %s s past Q_TIMEOUT, "
                    "outside Python",
                    process.name,
                    process.pid,
                    3 + KILL_GRACE,
                )
        elif process.exitcode is not None and process.exitcode < 0:
            role = "monitor" if process == self.monitor else "pusher" if process == self.pusher else "worker"
            logger.critical(
                "qcluster: %s %s (pid %s) was killed by %s: the cluster's queues may be locked for good, "
                "so it is replaced; tasks it had fetched run again Q_RETRY s after they were fetched",
                role,
                process.name,
                process.pid,
                signal.Signals(-process.exitcode).name,
            )
            self.event_out.set()  # the pusher fetches no more tasks for this cluster
            self.broken.value = 1
            return
        super().reincarnate(process)


class Command(qcluster.Command):
    help = "Starts a Django Q cluster that stops cleanly on the SIGTERM Heroku sends to every process of a dyno."

    def handle(self, *args, **options):
        if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks, no Heroku either
            return super().handle(*args, **options)
        if not settings.SECRET_KEY:  # as django-q2's command: tasks are signed with it
            raise CommandError("SECRET_KEY is not set.")
        timeout = shutdown_timeout()
        if options.get("cluster_name"):
            # django-q2 reads the name when it is imported, before any command runs: --name changes nothing.
            raise CommandError("--name has no effect here: set the Q_CLUSTER_NAME environment variable instead.")
        received, restarts = [], collections.deque()
        while True:
            cluster = self.start_cluster(received)
            if options.get("run_once"):
                break
            trouble = self.wait(cluster, received)
            if trouble is None:
                break
            logger.critical("qcluster: %s: replacing the cluster", trouble)
            self.stop(cluster, timeout)
            if received:  # SIGTERM came meanwhile: the dyno is stopping
                return
            now = time.monotonic()
            restarts.append(now)
            while restarts[0] < now - RESTART_WINDOW:
                restarts.popleft()
            if len(restarts) > MAX_RESTARTS:
                raise CommandError(
                    f"the cluster broke {len(restarts)} times in {RESTART_WINDOW} s ({trouble}): exiting, "
                    "for the dyno to restart"
                )
        self.stop(cluster, timeout)

    def start_cluster(self, received):
        # Blocked while the cluster forks its processes, so blocked in them for good (see the docstring).
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        context = multiprocessing.get_context("fork")
        WatchedSentinel.beat = context.RawValue("d", time.monotonic())
        WatchedSentinel.broken = context.RawValue("i", 0)
        # Cluster.start() forks django_q.cluster.Sentinel by its module-level name.
        django_q_cluster.Sentinel = WatchedSentinel
        cluster = Cluster()
        cluster.start()
        # This process alone takes the signals, and only takes note of them (Cluster() installed
        # handlers that would stop the cluster from inside the handler, without a time limit).
        for signum in STOP_SIGNALS:
            signal.signal(signum, lambda signum, frame: received.append(signum))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # one that came meanwhile arrives now
        cluster.processes = []  # the sentinel's descendants, as last seen
        return cluster

    def wait(self, cluster, received):
        """Until a stop signal (returns None) or the cluster is broken (returns what happened)."""
        sentinel, checks = cluster.sentinel, 0
        while not received:
            if not sentinel.is_alive():
                # The sentinel died on its own (killed for memory, say): what it started may still run,
                # with SIGTERM blocked; stop() kills it.
                return f"the cluster's sentinel process exited with {sentinel.exitcode}"
            if WatchedSentinel.broken.value:
                return "a process of the cluster was killed"
            if time.monotonic() - WatchedSentinel.beat.value > STALLED_AFTER:
                return f"the sentinel's guard loop has not gone round for {STALLED_AFTER} s"
            if checks % 20 == 0:
                cluster.processes = descendants(sentinel.pid)
            checks += 1
            time.sleep(0.25)
        logger.info("qcluster got %s: stopping the cluster", signal.Signals(received[0]).name)
        return None

    def stop(self, cluster, timeout):
        started = time.monotonic()
        sentinel = cluster.sentinel
        if not sentinel.is_alive():
            kill(cluster.processes)  # orphans of a dead sentinel
            return
        # Event.set() waits for the sentinel to wake up. It does, as it has SIGTERM blocked; the thread
        # only keeps a sentinel that died anyway from hanging this process the way it hung django-q2's.
        threading.Thread(target=cluster.stop_event.set, daemon=True).start()
        sentinel.join(timeout)
        if sentinel.is_alive():
            processes = descendants(sentinel.pid)
            logger.warning(
                "qcluster: %d process(es) still running %.0f s after the signal (Q_SHUTDOWN_TIMEOUT): killing "
                "them; their tasks were not acknowledged%s",
                len(processes) + 1,
                timeout,
                f" and run again {Conf.RETRY} s after they were fetched (Q_RETRY)" if Conf.ORM else "",
            )
            kill([sentinel.pid, *processes])  # the sentinel first, so it starts no replacement
            sentinel.join(5)
        logger.info("qcluster stopped in %.1f s", time.monotonic() - started)
