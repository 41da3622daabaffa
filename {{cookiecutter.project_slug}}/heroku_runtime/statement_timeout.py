"""DATABASE_STATEMENT_TIMEOUT, applied by Django's own `manage.py migrate` through its migrate signals.

PostgreSQL's statement_timeout can't be set per connection through PgBouncer: PgBouncer refuses startup
parameters it does not know (`options=-c statement_timeout=...`), and a SET on a connection in transaction
mode lands on whichever server connection runs it. A default for the role in this database is read by
every new server connection, whatever the pool mode, so that is where DATABASE_STATEMENT_TIMEOUT goes:

    ALTER ROLE CURRENT_USER IN DATABASE <db> SET statement_timeout = '25s'

The release phase (`python manage.py migrate --noinput`) sets it after the migrations (post_migrate). An
ordinary role may set its own defaults; it takes effect for connections opened afterwards (a deploy
restarts the dynos, and with them PgBouncer, after the release phase).

The migrations themselves are not cut short by it: connected straight to PostgreSQL (the release phase,
`heroku run`), the migrating session runs with no statement timeout (pre_migrate). Through the dyno's
PgBouncer a SET would outlive the session in transaction mode, so there they keep the role's timeout.

Django sends both signals once per app that has a models module, with that app as sender; apps.py
connects these handlers for this app alone, so they run once per migrate (models.py is why it has one).
https://docs.djangoproject.com/en/5.2/ref/signals/#pre-migrate
"""

from django.conf import settings
from django.db import connections

from heroku_runtime.pgbouncer import through_pgbouncer


def no_timeout_while_migrating(sender, using, **kwargs):
    """pre_migrate: this session only, straight to PostgreSQL: migrations may take long."""
    connection = connections[using]
    if connection.vendor == "postgresql" and not through_pgbouncer(connection):
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")


def set_role_timeout_after_migrating(sender, using, verbosity=1, stdout=None, **kwargs):
    """post_migrate: DATABASE_STATEMENT_TIMEOUT becomes the role's default in this database."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        set_role_statement_timeout(connection, settings.DATABASE_STATEMENT_TIMEOUT, stdout if verbosity else None)


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
