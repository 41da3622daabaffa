"""bin/dyno with no process type: every type of app.json's formation at once, as `heroku local` runs them.

Each type is its own dyno: a `bin/dyno TYPE` of its own (its own PgBouncer on its own port, see
pgbouncer.py), exactly what a second terminal would run, its output prefixed with its name. They share the
add-ons this process started. Ctrl-C or SIGTERM: SIGTERM to every dyno at once (each stops its processes as
Heroku stops a dyno, SIGKILL 30 s later), then the add-ons, last. When one dyno exits on its own, the
others are stopped too, and the exit status is 1, as `heroku local` does.
"""

import signal
import subprocess
import sys
import threading
import time

from dynolib import ROOT, say
from dynolib.supervisor import KILL_AFTER

PRINT = threading.Lock()


def relay(name, stream):
    width = 10
    for line in iter(stream.readline, b""):
        with PRINT:
            sys.stdout.write(f"{name:<{width}}| {line.decode(errors='replace')}")
            sys.stdout.flush()


def run(types, environ, supervisor):
    """Start `bin/dyno TYPE` for each type; their exit status once they are all stopped."""
    names = [f"{process_type}.1" for process_type in types]
    for process_type, name in zip(types, names, strict=True):
        process = supervisor.start(
            name,
            [sys.executable, str(ROOT / "bin" / "dyno"), process_type],
            stop_signal=signal.SIGTERM,
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(target=relay, args=(name, process.stdout), daemon=True).start()
    exited = supervisor.wait()
    if exited:
        say(f"{exited} exited with status {supervisor.processes[exited].returncode}: stopping the other dynos")
    running = [name for name in names if supervisor.processes[name].returncode is None]
    if running:
        say(f"sending SIGTERM to {', '.join(running)}")
    for name in running:
        supervisor.processes[name].send_signal(signal.SIGTERM)
    # Each dyno sends SIGKILL to its own processes KILL_AFTER s after its SIGTERM; a little more for itself.
    deadline = time.monotonic() + KILL_AFTER + 10
    supervisor.wait_until(lambda: all(supervisor.processes[name].returncode is not None for name in names), deadline)
    return 1 if exited else 0
