import logging

from django.contrib.admin.views.decorators import staff_member_required
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.shortcuts import render

from core import pgbouncer
from core.models import ExampleResult

log = logging.getLogger(__name__)


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
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        log.warning("health check failed: %s", error)
        # Drop the broken connection so the next request opens a fresh one once the database is back.
        connection.close_if_unusable_or_obsolete()
        return JsonResponse({"status": "unavailable", "database": connection.vendor}, status=503)
    return JsonResponse({"status": "ok", "database": connection.vendor})


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
