import logging
import os

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.shortcuts import render

from example.models import ExampleResult
from heroku_runtime.pgbouncer import through_pgbouncer

log = logging.getLogger(__name__)

# What the Procfile's web line runs on a web dyno (and under bin/dyno web or heroku local, which set DYNO
# as Heroku does): nginx in front of the WSGI server this project was made with. Anywhere else it is
# Django's own server (manage.py runserver) or the tests' client.
WEB_DYNO_SERVERS = ["nginx", "{{ {"gunicorn": "gunicorn", "uwsgi": "uWSGI", "waitress": "waitress"}[cookiecutter.wsgi_server] }}"]
RECENT_RESULTS = 10

# The example's one use of Django's cache: the count of stored results, kept for a few seconds (so it may lag
# behind a task that just ran). A cache only saves work, so a cache add-on that is down or hung counts as a
# miss: the page is rendered from the database after at most the add-on's timeout (the cache's docs/ file),
# and the failure is logged. A view that lets the error through answers 503 (heroku_runtime/middleware.py).
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


def index(request, status=200):
    recent = list(ExampleResult.objects.order_by("-updated_at")[:RECENT_RESULTS])
    # The cached count can lag behind the list, read just now: never say fewer than are listed.
    count = max(cached_result_count(), len(recent))
    context = {
        "project_name": settings.PROJECT_NAME,
        "serving_stack": serving_stack(),
        "result_count": count,
        "recent_results": recent,
        "tasks_enabled": apps.is_installed("django_q"),
    }
    return render(request, "example/index.html", context, status=status)


def serving_stack():
    """Outside in: "nginx → gunicorn → PgBouncer → PostgreSQL" on a web dyno, "Django → SQLite"
    with `manage.py runserver` and no DATABASE_URL."""
    parts = WEB_DYNO_SERVERS if os.environ.get("DYNO", "").startswith("web.") else ["Django"]
    if connection.vendor == "postgresql":
        parts = [*parts, "PgBouncer", "PostgreSQL"] if through_pgbouncer(connection) else [*parts, "PostgreSQL"]
    else:
        parts = [*parts, {"sqlite": "SQLite"}.get(connection.vendor, connection.vendor)]
    return " → ".join(parts)
