"""Before anything starts: say plainly everything that would make the dyno fail later, all at once."""

import socket

from dynolib import Fail, environment, nginx, venv_command
from dynolib import pgbouncer as pgb

APT_PACKAGE = {"nginx": "nginx", "pgbouncer": "pgbouncer", "erb": "ruby"}


def port_busy(port, host=""):
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx and PgBouncer bind
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def socket_live(path):
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(1)
        return probe.connect_ex(str(path)) == 0


def check(env, uses_nginx, pgbouncer_port, app):
    """pgbouncer_port: the port this dyno's PgBouncer will listen on, or None without PgBouncer."""
    problems = []
    for name in (["nginx", "erb"] if uses_nginx else []) + (["pgbouncer"] if pgbouncer_port else []):
        if not environment.find_program(name, env, sbin=True):
            problems.append(f"{name} is not installed: apt-get install {APT_PACKAGE[name]}")
    if "/" not in app[0] and not environment.find_program(app[0], env):
        problems.append(f"{app[0]} is not on PATH: activate the virtualenv or create .venv ({venv_command()})")
    for name in (env.get("PGBOUNCER_URLS") or "DATABASE_URL").split() if pgbouncer_port else ():
        if env.get(name) and not pgb.URL_FORM.match(env[name]):  # unset: bin/dyno's PostgreSQL will set it
            problems.append(pgb.url_problem(name, env[name]))
    if uses_nginx and port_busy(int(env["PORT"])):
        problems.append(f"port {env['PORT']} (PORT) is in use: stop what listens there or set PORT")
    if pgbouncer_port and port_busy(pgbouncer_port, "127.0.0.1"):
        problems.append(
            f"port {pgbouncer_port} is in use: is this process type already running (another bin/dyno or heroku local)?"
        )
    if uses_nginx and socket_live(nginx.SOCKET):
        problems.append(
            f"an app already serves on {nginx.SOCKET}: is another web dyno (bin/dyno, heroku local) running?"
        )
    for stale in (nginx.READY_FILE, nginx.SOCKET) if uses_nginx and not problems else ():
        try:
            stale.unlink(missing_ok=True)  # nginx must wait for this run's app, not a previous one's
        except OSError as error:
            problems.append(f"cannot remove the stale {stale} ({error.strerror}): remove it as its owner")
    if problems:
        raise Fail("cannot start:\n  - " + "\n  - ".join(problems))
