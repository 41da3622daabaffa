"""`manage.py qcluster`: django-q2's cluster, made to stop cleanly when Heroku stops the dyno.

Django runs this command instead of django_q's own because `core` comes first in INSTALLED_APPS, so the
Procfile line stays `worker: bin/start-pgbouncer python manage.py qcluster`.

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
A worker stuck in C code past Q_TIMEOUT, which django-q2 ends with SIGTERM, is replaced as usual but
lives on until it returns to Python (and gets its timeout exception) or the dyno stops.
"""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django_q.cluster import Cluster
from django_q.conf import Conf, logger
from django_q.management.commands import qcluster

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
DEFAULT_SHUTDOWN_TIMEOUT = 6
# Heroku sends SIGKILL 30 s after SIGTERM; PgBouncer stops only after this process has exited.
MAX_SHUTDOWN_TIMEOUT = 25


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
        # Blocked while the cluster forks its processes, so blocked in them for good (see the docstring).
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        cluster = Cluster()
        cluster.start()
        # This process alone takes the signals, and only takes note of them (Cluster() installed
        # handlers that would stop the cluster from inside the handler, without a time limit).
        received = []
        for signum in STOP_SIGNALS:
            signal.signal(signum, lambda signum, frame: received.append(signum))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # one that came meanwhile arrives now
        if not options.get("run_once"):
            self.wait(cluster, received)
        self.stop(cluster, timeout)

    def wait(self, cluster, received):
        sentinel, processes, checks = cluster.sentinel, [], 0
        while not received:
            if not sentinel.is_alive():
                # The sentinel died on its own (killed for memory, say): what it started may still run,
                # with SIGTERM blocked. Kill it and exit non-zero, so that the dyno restarts, as it would
                # with django-q2's command.
                kill(processes)
                raise CommandError(f"the cluster's sentinel process exited with {sentinel.exitcode}")
            if checks % 20 == 0:
                processes = descendants(sentinel.pid)
            checks += 1
            time.sleep(0.25)
        logger.info("qcluster got %s: stopping the cluster", signal.Signals(received[0]).name)

    def stop(self, cluster, timeout):
        started = time.monotonic()
        sentinel = cluster.sentinel
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
