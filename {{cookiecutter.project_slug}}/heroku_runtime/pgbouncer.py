"""Read PgBouncer's admin console, as the pgbouncer buildpack sets it up on a dyno.

The buildpack configures no admin_users: the console is reached as the dyno's own OS user over the unix
socket in /tmp, as user "pgbouncer" with no password. SHOW commands need autocommit.
https://www.pgbouncer.org/usage.html#admin-console
"""

import logging
import os
import re
import time

import psycopg
from psycopg.rows import dict_row

SOCKET_DIR = "/tmp"
PORT = 6000  # the buildpack's; a local formation gives each process type its own (bin/dyno)
SHOW_COMMANDS = ("STATS", "POOLS")


# What bin/start-pgbouncer points DATABASE_URL at: this process talks to the dyno's own PgBouncer.
LOCAL_POOL_URL = re.compile(r"@127\.0\.0\.1:(\d+)/db\d+$")

log = logging.getLogger(__name__)


def through_pgbouncer(connection):
    """Whether this Django connection goes to the dyno's own PgBouncer."""
    dsn = "@{HOST}:{PORT}/{NAME}".format(
        **{key: connection.settings_dict.get(key) or "" for key in ("HOST", "PORT", "NAME")}
    )
    return connection.vendor == "postgresql" and bool(LOCAL_POOL_URL.search(dsn))


class PgBouncerUnavailable(Exception):
    pass


def pool_port():
    """The port of the dyno's PgBouncer, from DATABASE_URL as bin/start-pgbouncer rewrote it."""
    match = LOCAL_POOL_URL.search(os.environ.get("DATABASE_URL", ""))
    return int(match[1]) if match else PORT


def pool_size():
    """PostgreSQL connections the dyno's PgBouncer keeps per database and user: app.json's
    PGBOUNCER_DEFAULT_POOL_SIZE, or the buildpack's default of 1 when the config var is unset."""
    return int(os.environ.get("PGBOUNCER_DEFAULT_POOL_SIZE") or 1)


def reserve_pool_size():
    """Connections PgBouncer may add when clients wait: PGBOUNCER_RESERVE_POOL_SIZE, the buildpack's 1 unset."""
    return int(os.environ.get("PGBOUNCER_RESERVE_POOL_SIZE") or 1)
{% if cookiecutter.wsgi_server == "waitress" %}


def waitress_threads(pool=None):
    """waitress's threads: WAITRESS_THREADS, else as many as the pool (`pool`, else the dyno's), since each
    thread holds a connection and more would only queue in PgBouncer (and after
    PGBOUNCER_RESERVE_POOL_TIMEOUT open its reserve)."""
    return int(os.environ.get("WAITRESS_THREADS") or pool or pool_size())
{% endif %}


def connect_admin():
    return psycopg.connect(
        host=SOCKET_DIR, port=pool_port(), dbname="pgbouncer", user="pgbouncer", autocommit=True, connect_timeout=3
    )


def shorten_login_retry(wait_seconds=3.0):
    """Set PgBouncer's server_login_retry from PGBOUNCER_SERVER_LOGIN_RETRY (default 1 s) at run time.

    After one failed connection to PostgreSQL, PgBouncer fails every query at once and tries the server
    again only after server_login_retry: 15 s by default, and the buildpack has no variable for it. So
    after a database restart or failover every request would fail for up to 15 s more. The admin console
    can change it while PgBouncer runs; bin/start-pgbouncer starts the app right after PgBouncer, so wait
    for the console briefly. Returns whether it was set.
    """
    if not LOCAL_POOL_URL.search(os.environ.get("DATABASE_URL", "")):
        return False
    seconds = int(os.environ.get("PGBOUNCER_SERVER_LOGIN_RETRY", "1"))
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with connect_admin() as connection:
                connection.execute(f"SET server_login_retry = {seconds}")
            return True
        except psycopg.Error as error:
            if time.monotonic() > deadline:
                log.warning("could not set PgBouncer's server_login_retry: %s", str(error).strip())
                return False
            time.sleep(0.1)


def show(what):
    """Rows of `SHOW <what>` as dicts; raises PgBouncerUnavailable with the reason and what to check."""
    if what not in SHOW_COMMANDS:
        raise ValueError(f"SHOW {what} is not one of {', '.join(SHOW_COMMANDS)}")
    try:
        with connect_admin() as connection:
            with connection.cursor(row_factory=dict_row) as cursor:
                cursor.execute(f"SHOW {what}")
                return cursor.fetchall()
    except psycopg.Error as error:
        raise PgBouncerUnavailable(
            f"PgBouncer is not running on this dyno or refused the admin connection "
            f"({SOCKET_DIR}/.s.PGSQL.{PORT}: {str(error).strip() or type(error).__name__}). "
            f"It runs only inside bin/start-pgbouncer (the Procfile's web and worker lines, or bin/dyno "
            f"locally), not in `heroku run` or the release phase."
        ) from error
