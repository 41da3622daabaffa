"""`manage.py migrate`, as the release phase runs it: also sets the role's statement_timeout.

Django runs this command instead of its own because `core` comes first in INSTALLED_APPS, so the Procfile's
`release: python manage.py migrate --noinput` stays as it is.

PostgreSQL's statement_timeout can't be set per connection through PgBouncer: PgBouncer refuses startup
parameters it does not know (`options=-c statement_timeout=...`), and a SET on a connection in transaction
mode lands on whichever server connection runs it. A default for the role in this database is read by
every new server connection, whatever the pool mode, so that is where DATABASE_STATEMENT_TIMEOUT goes:

    ALTER ROLE CURRENT_USER IN DATABASE <db> SET statement_timeout = '25s'

An ordinary role may set its own defaults; it takes effect for connections opened afterwards (a deploy
restarts the dynos, and with them PgBouncer, after the release phase).

The migrations themselves are not cut short by it: connected straight to PostgreSQL (the release phase,
`heroku run`), this session runs with no statement timeout. Through the dyno's PgBouncer a SET would
outlive the session in transaction mode, so there they keep the role's timeout.
"""

from django.conf import settings
from django.core.management.commands import migrate
from django.db import connections

from core.pgbouncer import LOCAL_POOL_URL


def through_pgbouncer(connection):
    dsn = "@{HOST}:{PORT}/{NAME}".format(
        **{key: connection.settings_dict.get(key) or "" for key in ("HOST", "PORT", "NAME")}
    )
    return bool(LOCAL_POOL_URL.search(dsn))


class Command(migrate.Command):
    def handle(self, *args, **options):
        connection = connections[options["database"]]
        postgres = connection.vendor == "postgresql"
        if postgres and not through_pgbouncer(connection):
            with connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = 0")  # this session only: migrations may take long
        super().handle(*args, **options)
        if postgres:
            set_role_statement_timeout(connection, settings.DATABASE_STATEMENT_TIMEOUT, self.stdout)


def set_role_statement_timeout(connection, timeout, stdout=None):
    """Make `timeout` ("25s"; "" or "0": none) the default of this connection's role in its database."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        name = cursor.fetchone()[0]
        database = quote(name)
        if timeout and timeout != "0":
            # Checked against a pattern in the settings: digits and a unit, nothing to quote.
            cursor.execute(f"ALTER ROLE CURRENT_USER IN DATABASE {database} SET statement_timeout = '{timeout}'")
        else:
            cursor.execute(f"ALTER ROLE CURRENT_USER IN DATABASE {database} RESET statement_timeout")
    if stdout is not None:
        stdout.write(f"statement_timeout for this role in {name}: {timeout if timeout not in ('', '0') else 'none'}")
