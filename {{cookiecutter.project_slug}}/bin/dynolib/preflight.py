"""Before anything starts: say plainly everything that would make the dyno fail later, all at once."""

import socket

from dynolib import Fail, environment, nginx, venv_command
from dynolib import pgbouncer as pgb

APT_PACKAGE = {"nginx": "nginx", "pgbouncer": "pgbouncer", "erb": "ruby"}
# Seconds to wait for a configured database's host to accept a TCP connection before starting anything.
REACH_TIMEOUT = 3


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


def unreachable(name, url):
    """[problem] when nothing answers at the URL's host and port, said now rather than by the app's first query
    (libpq's connect_timeout later, its cause only in PgBouncer's log lines); [] when something does."""
    host, port = url["host"].strip("[]"), int(url["port"])
    try:
        with socket.create_connection((host, port), timeout=REACH_TIMEOUT):
            return []
    except socket.gaierror as error:
        why = f"the host name does not resolve ({error.strerror})"
    except TimeoutError:
        why = f"no answer within {REACH_TIMEOUT} s"
    except OSError as error:
        why = error.strerror or str(error)
    return [
        f"{name} points at {host} port {port}, which does not answer ({why}): is that database running and "
        f"reachable from here? Unset {name} to have bin/dyno run a PostgreSQL of its own"
    ]


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
        elif env.get(name):
            problems += unreachable(name, pgb.URL_FORM.match(env[name]))
    if uses_nginx and port_busy(int(env["PORT"])):
        problems.append(f"port {env['PORT']} (PORT) is in use: stop what listens there or set PORT")
    if pgbouncer_port and port_busy(pgbouncer_port, "127.0.0.1"):
        where = (
            "the port the pgbouncer buildpack gives every dyno's PgBouncer, which the app connects to"
            if pgbouncer_port == pgb.HEROKU_PORT
            else f"{pgb.HEROKU_PORT} + this process type's place among the Procfile's PgBouncer users"
        )
        problems.append(
            f"port {pgbouncer_port} is in use; this dyno's PgBouncer must listen there ({where}), so the port "
            f"cannot be changed: stop the other bin/dyno or heroku local of this project, or find what "
            f"listens with: ss -ltnp 'sport = :{pgbouncer_port}'"
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
