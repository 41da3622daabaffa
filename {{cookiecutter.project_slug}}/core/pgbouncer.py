"""Read PgBouncer's admin console, as the pgbouncer buildpack sets it up on a dyno.

The buildpack configures no admin_users: the console is reached as the dyno's own OS user over the unix
socket in /tmp, as user "pgbouncer" with no password. SHOW commands need autocommit.
https://www.pgbouncer.org/usage.html#admin-console
"""

import psycopg
from psycopg.rows import dict_row

SOCKET_DIR = "/tmp"
PORT = 6000
SHOW_COMMANDS = ("STATS", "POOLS")


class PgBouncerUnavailable(Exception):
    pass


def show(what):
    """Rows of `SHOW <what>` as dicts; raises PgBouncerUnavailable with the reason and what to check."""
    if what not in SHOW_COMMANDS:
        raise ValueError(f"SHOW {what} is not one of {', '.join(SHOW_COMMANDS)}")
    try:
        with psycopg.connect(
            host=SOCKET_DIR, port=PORT, dbname="pgbouncer", user="pgbouncer", autocommit=True, connect_timeout=3
        ) as connection:
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
