import logging

import psycopg
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.shortcuts import render

from heroku_runtime import pgbouncer, probe

log = logging.getLogger(__name__)

# /health/ answers within about this many seconds, whatever the database does. While PostgreSQL is down
# (a restart, a failover) PgBouncer keeps a query waiting for a server connection for its
# query_wait_timeout, 120 s by default: longer than Heroku's router waits (30 s) and than uptime checkers
# wait. Neither libpq's connect_timeout (the connection to PgBouncer succeeds) nor a statement_timeout
# (enforced by PostgreSQL, which the waiting query never reaches) can end that wait, so the check keeps
# its own deadline. What /health/ answers meanwhile: docs/reliability.md, "PostgreSQL goes away".
HEALTH_TIMEOUT = 3


def health(request):
    """200 when the database answers a query, 503 when it does not: for uptime checks and load balancers."""
    try:
        probe.database_answers(HEALTH_TIMEOUT)
    except (DatabaseError, psycopg.Error, OSError) as error:
        log.warning("health check failed: %s", str(error).strip() or type(error).__name__)
        # Drop a broken connection so the next request opens a fresh one once the database is back.
        connection.close_if_unusable_or_obsolete()
        return JsonResponse({"status": "unavailable", "database": connection.vendor}, status=503)
    return JsonResponse({"status": "ok", "database": connection.vendor})


def pgbouncer_stats(request):
    """The staff page; an anonymous visitor is sent to the admin's login, with a line that says why."""
    if request.user.is_anonymous:
        messages.info(request, "The PgBouncer page is for staff: log in with a staff account to see it.")
    return pgbouncer_stats_for_staff(request)


@staff_member_required
def pgbouncer_stats_for_staff(request):
    """SHOW STATS and SHOW POOLS, for staff only: pool sizes and client waits are operational secrets.

    Each table is shown turned on its side, a line per column and a column per pool: PgBouncer's rows are
    few (a database or a pool each) and its columns many, so the page stays as narrow as a phone's."""
    tables, error = {}, None
    try:
        for what in pgbouncer.SHOW_COMMANDS:
            rows = pgbouncer.show(what)
            tables[what] = [(column, [row[column] for row in rows]) for column in (rows[0] if rows else ())]
    except pgbouncer.PgBouncerUnavailable as unavailable:
        error = str(unavailable)
    return render(request, "heroku_runtime/pgbouncer.html", {"tables": tables, "error": error, **titles()})


def welcome(request):
    """The home page until the project has one of its own: the app runs, and where a view of yours goes."""
    urls_module = settings.ROOT_URLCONF.replace(".", "/") + ".py"
    return render(request, "heroku_runtime/welcome.html", {"urls_module": urls_module, **titles()})


def titles():
    return {"project_name": settings.PROJECT_NAME}
