import logging

from django.apps import apps
from django.core.cache import cache
from django.shortcuts import render

from example.models import ExampleResult

log = logging.getLogger(__name__)

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
    context = {
        "result_count": cached_result_count(),
        "recent_results": ExampleResult.objects.order_by("-updated_at")[:10],
        "tasks_enabled": apps.is_installed("django_q"),
    }
    return render(request, "example/index.html", context, status=status)
