"""Start the dyno's processes, notice when one exits, and stop them all the way Heroku stops a dyno.

Not honcho (or foreman): their managers start a Procfile's processes side by side and stop them all with
SIGTERM and a SIGKILL 5 s later (honcho's KILL_WAIT), while a dyno needs an order: PgBouncer started before
the app, nginx only once the app is ready, PgBouncer stopped with SIGINT only once the app has gone (it would
drop the app's last queries on SIGTERM), the add-ons after the dyno, and Heroku's 30 s before the SIGKILL.
And bin/dyno must run before any package is installed.
"""

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

from dynolib import ON_OUTPUT_CLOSED, OUTPUT_CLOSED, Fail, say

KILL_AFTER = 30  # Heroku's SIGTERM-to-SIGKILL grace period


def children_of(pid):
    """Pids whose parent is `pid`, from /proc (Linux; nothing elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def alive(group):
    try:
        os.killpg(group, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class Supervisor:
    """The dyno's processes share one process group, so that one killpg reaches them all at once, as
    Heroku's SIGTERM does; it is not the terminal's group, so that Ctrl-C reaches only bin/dyno. PgBouncer
    and the add-ons each get a group of their own and a stop signal, and are stopped after the dyno."""

    def __init__(self):
        self.processes = {}  # name -> Popen
        self.group = None  # the process group of the dyno's processes
        self.apart = []  # (name, stop signal, is an add-on), in start order
        self.signals = 0
        self.last_signal = None
        self.let_go = set()  # pids of add-ons left running for another bin/dyno of the project
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self.on_signal)
        ON_OUTPUT_CLOSED.append(self.output_closed)
        if OUTPUT_CLOSED.is_set():
            self.output_closed()
        try:  # Linux: orphaned grandchildren become our children, so none escapes the final wait
            ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        except (OSError, AttributeError):
            pass

    def on_signal(self, signum, frame):
        self.signals += 1
        self.last_signal = signum
        if self.signals == 2:
            say("second signal: killing every process now")

    def output_closed(self):
        if not self.signals:  # already stopping: not a second signal
            say("the output was closed: stopping")
            self.on_signal(signal.SIGHUP, None)

    def leave_running(self, name):
        """An add-on another bin/dyno of the project still uses: not stopped, not killed, when this one exits."""
        self.apart = [entry for entry in self.apart if entry[0] != name]
        self.let_go.add(self.processes.pop(name).pid)

    def start(self, name, argv, stop_signal=None, addon=False, **options):
        """Start argv in the dyno's group, or with stop_signal in a group of its own."""
        say(f"starting {name}: {' '.join(map(str, argv))}")
        apart = stop_signal is not None
        group = 0 if apart or self.group is None else self.group
        options.setdefault("stdin", subprocess.DEVNULL)
        try:
            process = subprocess.Popen(argv, process_group=group, **options)
        except OSError as error:
            raise Fail(f"cannot start {name} ({argv[0]}): {error.strerror}") from error
        if apart:
            self.apart.append((name, stop_signal, addon))
        elif self.group is None:
            self.group = process.pid
        self.processes[name] = process
        return process

    def reap(self):
        """Collect exited children (adopted ones too); returns the names of ours that have exited."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            for process in self.processes.values():
                if process.pid == pid:
                    process.returncode = os.waitstatus_to_exitcode(status)
        return [name for name, process in self.processes.items() if process.returncode is not None]

    def wait(self, condition=lambda: False, timeout=None, every=0.1):
        """Until condition() holds, a process exits (its name is returned), a signal comes or time is up.
        condition() is asked at once, then every `every` seconds; exits and signals are seen within 0.1 s."""
        now = time.monotonic()
        deadline = now + (timeout if timeout is not None else float("inf"))
        ask = now
        while not self.signals and time.monotonic() < deadline:
            exited = self.reap()
            if exited:
                return exited[0]
            if time.monotonic() >= ask:
                if condition():
                    return None
                ask += every
            time.sleep(0.1)
        return None

    def wait_until(self, done, deadline):
        while not done() and time.monotonic() < deadline and self.signals < 2:
            self.reap()
            time.sleep(0.1)

    def foreground(self, name, argv, **options):
        """Run a one-off command on the terminal (stdin included), as `heroku run` does; its exit status.

        It stays in our process group, so Ctrl-C reaches it straight from the terminal; a SIGTERM or
        SIGHUP sent to bin/dyno alone is passed on, and SIGKILL follows 30 s later."""
        say(f"running {name}: {' '.join(map(str, argv))}")
        try:
            process = subprocess.Popen(argv, **options)
        except OSError as error:
            raise Fail(f"cannot run {argv[0]}: {error.strerror}") from error
        self.processes[name] = process
        forwarded, deadline = 0, float("inf")
        while name not in self.reap():
            if self.signals > forwarded:
                forwarded = self.signals
                if self.last_signal != signal.SIGINT:  # the terminal sent SIGINT to it already
                    process.send_signal(signal.SIGTERM)
                deadline = min(deadline, time.monotonic() + KILL_AFTER)
            if time.monotonic() > deadline or self.signals >= 2 and self.last_signal != signal.SIGINT:
                process.kill()
            time.sleep(0.1)
        del self.processes[name]
        code = process.returncode
        return 128 - code if code < 0 else code

    def stop_dyno(self):
        """SIGTERM to the dyno's group, then PgBouncer's own signal once the app is gone; SIGKILL to
        what is left 30 s after the SIGTERM. The add-ons keep running (the release phase runs first)."""
        deadline = time.monotonic() + KILL_AFTER
        if self.group and alive(self.group):
            say(f"sending SIGTERM to every process (SIGKILL in {KILL_AFTER} s)")
            os.killpg(self.group, signal.SIGTERM)
            self.wait_until(lambda: not alive(self.group), deadline)
        groups = [self.group] if self.group else []
        for name, stop_signal, addon in reversed(self.apart):
            if not addon:
                groups.append(self.stop_one(name, stop_signal, deadline))
        self.kill_left(groups)
        dyno = [name for name, _signal, addon in self.apart if not addon]
        self.apart = [entry for entry in self.apart if entry[2]]
        addons = {name for name, _signal, _addon in self.apart}
        self.processes = {name: process for name, process in self.processes.items() if name in addons}
        self.group = None
        return dyno

    def stop_one(self, name, stop_signal, deadline):
        process = self.processes[name]
        if process.returncode is None:
            process.send_signal(stop_signal)
            self.wait_until(lambda: process.returncode is not None, deadline)
        return process.pid

    def kill_left(self, groups):
        if any(map(alive, groups)):
            say("sending SIGKILL to what is left")
            for group in filter(alive, groups):
                os.killpg(group, signal.SIGKILL)
        for _ in range(50):  # reap them, for at most 5 s
            self.reap()
            if not any(map(alive, groups)):
                break
            time.sleep(0.1)

    def stop(self):
        """The dyno, then each add-on (last started first) with its own signal and 30 s; then anything
        left among our children gets SIGKILL, so nothing outlives bin/dyno but the add-ons it leaves
        running for another bin/dyno of the project (leave_running)."""
        self.stop_dyno()
        groups = []
        for name, stop_signal, _addon in reversed(self.apart):
            say(f"stopping {name}")
            groups.append(self.stop_one(name, stop_signal, time.monotonic() + KILL_AFTER))
        self.apart = []
        self.kill_left(groups)
        left = set(children_of(os.getpid())) - self.let_go
        if left:
            say("sending SIGKILL to what is left")
            for pid in left:
                os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            self.reap()
            if not set(children_of(os.getpid())) - self.let_go:
                break
            time.sleep(0.1)
