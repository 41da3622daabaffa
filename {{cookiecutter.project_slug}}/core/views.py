import logging
import math
import select
import threading
import time

import psycopg
from django.contrib.admin.views.decorators import staff_member_required
from django.core.cache import cache
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


# The example's one use of Django's cache: the count of stored results, kept for a few seconds (so it may lag
# behind a task that just ran). A cache only saves work, so a cache add-on that is down or hung counts as a
# miss: the page is rendered from the database after at most the add-on's timeout (docs/, the cache's file),
# and the failure is logged. (A view that lets the error through answers 503: core/middleware.py.)
RESULT_COUNT_KEY, RESULT_COUNT_SECONDS = "example:result-count", 10


def cached_result_count():
    try:
        count = cache.get(RESULT_COUNT_KEY)
    except Exception as error:  # each backend raises its own (redis.exceptions.RedisError, OSError, ...)
        log.warning("cache unavailable, counting in the database: %s", str(error).strip() or type(error).__name__)
        return ExampleResult.objects.count()
    if count is None:
        count = ExampleResult.objects.count()
        try:
            cache.set(RESULT_COUNT_KEY, count, RESULT_COUNT_SECONDS)
        except Exception as error:
            log.warning("cache unavailable, count not stored: %s", str(error).strip() or type(error).__name__)
    return count


def index(request):
    context = {
        "result_count": cached_result_count(),
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
    """SELECT 1 on a probe connection of this thread's own (through PgBouncer on a dyno), within `timeout` s.

    Not on Django's connection: a query abandoned at the deadline leaves a connection unusable, and
    Django's own check of a reused connection (CONN_HEALTH_CHECKS) is a SELECT 1 with no deadline.
    Closing the probe at the deadline also takes its query out of PgBouncer's queue.

    The probe is kept between calls as long as Django keeps its own connections (CONN_MAX_AGE): opening
    one per call (a login with a SCRAM exchange) made /health/ about a fifth as fast as a one-query view
    (benchmarks/README.md, "/health/"). An idle client connection to PgBouncer in
    transaction mode holds no PostgreSQL connection; in session mode CONN_MAX_AGE is 0 and the probe is
    closed after each call, as Django's connection is. A kept probe that fails at once (PgBouncer or
    PostgreSQL restarted since) is replaced by a new one within the same deadline.
    """
    deadline = time.monotonic() + timeout
    kept = getattr(_probe, "connection", None)
    if kept is not None:
        _probe.connection = None
        if time.monotonic() < _probe.expires:
            try:
                _select_one(kept, deadline, timeout)
            except TimeoutError:
                kept.close()
                raise
            except (psycopg.Error, OSError) as error:
                kept.close()
                log.info("health probe connection replaced: %s", str(error).strip() or type(error).__name__)
            else:
                _keep(kept, expires=_probe.expires)
                return
        else:
            kept.close()
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"no answer from the database within {timeout} s")
    params = connection.get_connection_params()
    params["connect_timeout"] = max(2, math.ceil(remaining))  # libpq: whole seconds, 2 at least
    probe = psycopg.connect(autocommit=True, **params)
    try:
        _select_one(probe, deadline, timeout)
    except BaseException:
        probe.close()
        raise
    max_age = connection.settings_dict.get("CONN_MAX_AGE", 0)
    if max_age == 0:
        probe.close()
    else:
        _keep(probe, expires=math.inf if max_age is None else time.monotonic() + max_age)


# One probe connection per thread (gunicorn's gthread, waitress and uWSGI threads each answer on their own).
_probe = threading.local()


def _keep(probe, expires):
    _probe.connection, _probe.expires = probe, expires


def _select_one(probe, deadline, timeout):
    """SELECT 1 on `probe`, every result read (so the connection is idle again for the next call)."""
    pgconn = probe.pgconn
    pgconn.send_query(b"SELECT 1")
    results = []
    while True:
        while pgconn.is_busy():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer from the database within {timeout} s")
            readable, _, _ = select.select([pgconn.socket], [], [], remaining)
            if readable:
                pgconn.consume_input()
        result = pgconn.get_result()  # does not block: a whole result (or the end of them) has arrived
        if result is None:
            break
        results.append(result)
    if not results or results[0].status != psycopg.pq.ExecStatus.TUPLES_OK:
        message = results[0].error_message.decode(errors="replace") if results else "no result"
        raise psycopg.DatabaseError(message)


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
