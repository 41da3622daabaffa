"""Started as root, bin/dyno runs the whole dyno as an unprivileged user, as Heroku runs dynos.

PostgreSQL and PgBouncer refuse to run as root, and containers, CI and cloud shells are often root. The
user is DYNO_USER if set, else the one who ran sudo, else `dyno` (created with useradd when missing).
bin/dyno first checks that user can reach the project, runs the build step (collectstatic writes into the
checkout, which root owns), gives it .dyno/, then drops root for good before it starts anything, so
every process it starts (nginx, PgBouncer, the app, the add-ons) runs as that user, which it says. A
project under /root, or a Python under /root (pyenv's) running bin/dyno or in the virtualenv, is refused
with what to do, before anything starts.
"""

import os
import pwd
import subprocess
import sys

from dynolib import ROOT, STATE, Fail, say, venv_command

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


def runs(python):
    """Whether this user can run `python` and its standard library: after bin/dyno drops root, a Python under
    /root (pyenv's) fails at its first lazy import (socket's idna codec: `LookupError: unknown encoding`)."""
    try:
        check = [str(python), "-c", "import encodings.idna, json, socket"]
        return subprocess.run(check, stdin=subprocess.DEVNULL, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def unreachable(user):
    """What `user` cannot reach that the dyno needs, found in a child process that becomes that user."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the user, look, report, exit
        os.close(read)
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        problems = []
        if not os.access(ROOT / "Procfile", os.R_OK):
            problems.append(
                f"{user.pw_name} cannot read {ROOT}: put the project where every user can read it, not under /root"
            )
        if not runs(sys.executable):
            problems.append(
                f"{user.pw_name} cannot run the Python bin/dyno runs under ({sys.executable}): run bin/dyno "
                "with a Python every user can run, e.g. /usr/bin/python3 bin/dyno, or put /usr/bin first on PATH"
            )
        python = ROOT / ".venv" / "bin" / "python"
        if os.path.lexists(python) and not runs(python):
            problems.append(
                f"{user.pw_name} cannot run .venv/bin/python ({os.path.realpath(python)}): recreate the virtualenv "
                f"with a Python every user can run: rm -rf .venv && {venv_command()}"
            )
        os.write(write, "\n".join(problems).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as report:
        problems = report.read().decode()
    os.waitpid(pid, 0)
    return [problem for problem in problems.split("\n") if problem]


def unprivileged_user(environ):
    """As root: the user the dyno will run as, once it is known to reach the project; else None."""
    if os.geteuid() != 0:
        return None
    user = choose_user(environ)
    problems = unreachable(user)
    if problems:
        raise Fail("cannot start as root:\n  - " + "\n  - ".join(problems))
    return user


def become(user, environ):
    """Give .dyno/ to `user` and drop root for good; the environment to go on with."""
    if user is None:
        return environ
    STATE.mkdir(mode=0o700, exist_ok=True)
    give(STATE, user)
    os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)  # for good: real, effective and saved ids
    say(
        f"running as root: the dyno runs as the unprivileged user {user.pw_name} (uid {user.pw_uid}); "
        "set DYNO_USER to choose another"
    )
    return dict(environ, HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
