"""bin/dyno's parts, one job each (bin/dyno itself only puts them together):

  buildpacks.py  what the Python, pgbouncer and nginx buildpacks do on a dyno: the Procfile line, the
                 dyno's environment, nginx's and PgBouncer's configs
  config.py      the config vars: .env (read as `heroku local` reads it) and app.json's generated secrets
  addons.py      local stand-ins for the add-ons: PostgreSQL, Redis, memcached, under .dyno/
  account.py     started as root: the unprivileged user the dyno runs as
  supervisor.py  starting the processes and stopping them the way Heroku stops a dyno

Standard library only: bin/dyno runs before any virtualenv exists.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent  # the project: bin/dynolib/ -> bin/ -> project
STATE = ROOT / ".dyno"  # everything bin/dyno writes (git-ignored)


def venv_command():
    """How this project's .venv is made, with a Python every user can run: uv's when it has a uv.lock."""
    if (ROOT / "uv.lock").exists():
        return "uv sync --python /usr/bin/python3"
    return "/usr/bin/python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"


class Fail(Exception):
    """A problem the user can fix: printed as a plain message, exit status 2."""


def say(message):
    print(f"dyno: {message}", flush=True)
