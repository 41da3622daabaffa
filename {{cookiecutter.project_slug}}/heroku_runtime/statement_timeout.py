"""DATABASE_STATEMENT_TIMEOUT: set by Django's own `manage.py migrate` (a post_migrate handler), for the
dynos that serve requests; lifted for the release phase and one-off dynos (a connection_created handler).

PostgreSQL's statement_timeout can't be set per connection through PgBouncer: PgBouncer refuses startup
parameters it does not know (`options=-c statement_timeout=...`), and a SET on a connection in transaction
mode lands on whichever server connection runs it. A default for the role in this database is read by
every new server connection, whatever the pool mode, so that is where DATABASE_STATEMENT_TIMEOUT goes:

    ALTER ROLE CURRENT_USER IN DATABASE <db> SET statement_timeout = '25s'

The release phase (`python manage.py migrate --noinput`) sets it after the migrations (post_migrate). An
ordinary role may set its own defaults; it takes effect for connections opened afterwards (a deploy
restarts the dynos, and with them PgBouncer, after the release phase).

It guards the dynos that serve requests, web and worker, which all connect through their PgBouncer. The
release phase and one-off dynos (`heroku run`; locally, no DYNO at all) connect straight to PostgreSQL, and
there a migration or a data fix may take long, or wait behind another session's lock: each of their
connections lifts the timeout for its own session. (Through a PgBouncer in transaction mode a SET would
outlive the session, so there the role's timeout stays.)

Django sends post_migrate once per app that has a models module, with that app as sender; apps.py connects
the handler for this app alone, so it runs once per migrate (models.py is why the app has one).
https://docs.djangoproject.com/en/5.2/ref/signals/
"""

import os

from django.conf import settings
from django.db import connections

from heroku_runtime.pgbouncer import through_pgbouncer

# Heroku's DYNO is "release.1234" in the release phase and "run.5678" on a one-off dyno.
UNLIMITED_PROCESS_TYPES = ("release", "run", "")


def no_timeout_outside_request_dynos(sender, connection, **kwargs):
    """connection_created: this session only, straight to PostgreSQL, on a release or one-off dyno."""
    process_type = os.environ.get("DYNO", "").partition(".")[0]
    if process_type in UNLIMITED_PROCESS_TYPES and connection.vendor == "postgresql":
        if not through_pgbouncer(connection):
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
