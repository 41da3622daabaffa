"""Started as root, bin/dyno runs the whole dyno as an unprivileged user, as Heroku runs dynos.

PostgreSQL and PgBouncer refuse to run as root, and containers, CI and cloud shells are often root. The
user is DYNO_USER if set, else the one who ran sudo, else `dyno` (created with useradd when missing).
bin/dyno gives it .dyno/, then drops root for good before it starts anything, so every process it starts
(nginx, PgBouncer, the app, the add-ons) runs as that user, which it says. The project and its .venv must
be readable by that user: a project under /root, or a virtualenv made with a Python under /root (pyenv),
is refused with what to do.
"""

import os
import pwd
import subprocess

from dynolib import ROOT, STATE, Fail, say

DEFAULT_USER = "dyno"


def choose_user(environ):
    name = environ.get("DYNO_USER") or environ.get("SUDO_USER") or DEFAULT_USER
    if name == "root":
        name = DEFAULT_USER
    try:
        return pwd.getpwnam(name)
    except KeyError:
        if name != DEFAULT_USER:
            raise Fail(f"DYNO_USER={name}: no such user") from None
    command = ["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", DEFAULT_USER]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise Fail(f"running as root, and `{' '.join(command)}` failed: {result.stderr.strip()}")
    say(f"created the user {DEFAULT_USER} to run the dyno")
    return pwd.getpwnam(DEFAULT_USER)


def give(path, user):
    for directory, subdirectories, files in os.walk(path):
        for name in [directory, *(os.path.join(directory, entry) for entry in subdirectories + files)]:
            os.lchown(name, user.pw_uid, user.pw_gid)


def drop_root(environ):
    """As root: become the dyno's user and return the environment to go on with; otherwise unchanged."""
    if os.geteuid() != 0:
        return environ
    user = choose_user(environ)
    STATE.mkdir(mode=0o700, exist_ok=True)
    give(STATE, user)
    os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)  # for good: real, effective and saved ids
    say(
        f"running as root: the dyno runs as the unprivileged user {user.pw_name} (uid {user.pw_uid}); "
        "set DYNO_USER to choose another"
    )
    problems = []
    if not os.access(ROOT / "Procfile", os.R_OK) or not os.access(STATE, os.W_OK | os.X_OK):
        problems.append(
            f"{user.pw_name} cannot read {ROOT}: put the project where every user can read it, not under /root"
        )
    python = ROOT / ".venv" / "bin" / "python"
    if os.path.lexists(python) and not os.access(python, os.X_OK):
        problems.append(
            f"{user.pw_name} cannot run .venv/bin/python ({os.path.realpath(python)}): recreate "
            "the virtualenv with a Python every user can run, e.g. "
            "rm -rf .venv && /usr/bin/python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"
        )
    if problems:
        raise Fail("cannot start:\n  - " + "\n  - ".join(problems))
    env = dict(environ, HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
    return env
