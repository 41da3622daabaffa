import logging
import math
import select
import time

import psycopg
from django.contrib.admin.views.decorators import staff_member_required
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.shortcuts import render

from core import pgbouncer
from core.models import ExampleResult

log = logging.getLogger(__name__)

# /health/ answers within about this many seconds, whatever the database does. While PostgreSQL is down
# (a restart, a failover) PgBouncer keeps a query waiting for a server connection for its
# query_wait_timeout, 120 s by default: longer than Heroku's router waits (30 s) and than uptime checkers
# wait. Neither libpq's connect_timeout (the connection to PgBouncer succeeds) nor a statement_timeout
# (enforced by PostgreSQL, which the waiting query never reaches) can end that wait, so the check keeps
# its own deadline. Measured figures: README.md, "Reliability".
HEALTH_TIMEOUT = 3


def index(request):
    context = {
        "result_count": ExampleResult.objects.count(),
        "recent_results": ExampleResult.objects.order_by("-updated_at")[:10],
        "tasks_enabled": _tasks_enabled(),
    }
    return render(request, "core/index.html", context)


def health(request):
    """200 when the database answers a query, 503 when it does not: for uptime checks and load balancers."""
    try:
        _database_answers(HEALTH_TIMEOUT)
    except (DatabaseError, psycopg.Error, OSError) as error:
        log.warning("health check failed: %s", str(error).strip() or type(error).__name__)
        # Drop a broken connection so the next request opens a fresh one once the database is back.
        connection.close_if_unusable_or_obsolete()
        return JsonResponse({"status": "unavailable", "database": connection.vendor}, status=503)
    return JsonResponse({"status": "ok", "database": connection.vendor})


def _database_answers(timeout):
    if connection.vendor == "postgresql":
        _postgres_answers(timeout)
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()


def _postgres_answers(timeout):
    """SELECT 1 on a connection of its own (through PgBouncer on a dyno), all within `timeout` seconds.

    Not on Django's connection: a query abandoned at the deadline leaves a connection unusable, and
    Django's own check of a reused connection (CONN_HEALTH_CHECKS) is a SELECT 1 with no deadline.
    Closing this connection at the deadline also takes its query out of PgBouncer's queue.
    """
    deadline = time.monotonic() + timeout
    params = connection.get_connection_params()
    params["connect_timeout"] = max(2, math.ceil(timeout))  # libpq: whole seconds, 2 at least
    probe = psycopg.connect(autocommit=True, **params)
    try:
        pgconn = probe.pgconn
        pgconn.send_query(b"SELECT 1")
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer from the database within {timeout} s")
            readable, _, _ = select.select([pgconn.socket], [], [], remaining)
            if readable:
                pgconn.consume_input()
                if not pgconn.is_busy():
                    break
        result = pgconn.get_result()
        if result is None or result.status != psycopg.pq.ExecStatus.TUPLES_OK:
            raise psycopg.DatabaseError(result.error_message.decode(errors="replace") if result else "no result")
    finally:
        probe.close()


@staff_member_required
def pgbouncer_stats(request):
    """SHOW STATS and SHOW POOLS, for staff only: pool sizes and client waits are operational secrets."""
    tables, error = {}, None
    try:
        for what in pgbouncer.SHOW_COMMANDS:
            tables[what] = pgbouncer.show(what)
    except pgbouncer.PgBouncerUnavailable as unavailable:
        error = str(unavailable)
    return render(request, "core/pgbouncer.html", {"tables": tables, "error": error})


def _tasks_enabled():
    from django.apps import apps

    return apps.is_installed("django_q")
