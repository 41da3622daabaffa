"""bin/dyno's parts, one job each (bin/dyno itself only puts them together):

  configvars.py   the config vars: .env (read as `heroku local` reads it) and app.json's generated secrets
  procfile.py     the Procfile's process types and lines, the buildpacks' wrappers on a line, the formation
  environment.py  the environment a dyno gets from the Python buildpack, and finding programs in it
  build.py        the build step: collectstatic, as the Python buildpack runs it
  preflight.py    what would make the dyno fail (programs, ports, URLs), said all at once before starting
  account.py      started as root: the unprivileged user the dyno runs as, and what it must be able to run
  addons.py       local stand-ins for the add-ons: PostgreSQL, Redis, memcached, under .dyno/
  pgbouncer.py    bin/start-pgbouncer's work: pgbouncer.ini from PGBOUNCER_*, the rewritten database URLs
  nginx.py        bin/start-nginx's work: config/nginx.conf.erb rendered with erb, the ready file it waits for
  supervisor.py   starting the processes and stopping them the way Heroku stops a dyno
  formation.py    every process type of app.json's formation at once, each its own dyno, one set of add-ons

Standard library only: bin/dyno runs before any virtualenv exists.
"""

import os
import re
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent  # the project: bin/dynolib/ -> bin/ -> project
STATE = ROOT / ".dyno"  # everything bin/dyno writes (git-ignored)
OUTPUT_CLOSED = threading.Event()  # set once whoever reads our output has gone
ON_OUTPUT_CLOSED = []  # what stops the dyno then (the Supervisor's)


def venv_command():
    """How this project's .venv is made, with a Python every user can run: uv's when it has a uv.lock."""
    if (ROOT / "uv.lock").exists():
        return "uv sync --python /usr/bin/python3"
    return "/usr/bin/python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"


def hide_password(text):
    return re.sub(r"(://[^:@/]*:)[^@/]*@", r"\1***@", text)


class Fail(Exception):
    """A problem the user can fix: printed as a plain message, exit status 2."""


def say(message):
    write(f"dyno: {message}\n")


def write(text):
    """Our output, unless whoever reads it has gone (`bin/dyno web | head`, a Procfile runner killed): then
    /dev/null from here on, and bin/dyno stops as when its terminal closes, rather than die on the next line
    with the add-ons still running."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        OUTPUT_CLOSED.set()
        for stop in ON_OUTPUT_CLOSED:
            stop()
