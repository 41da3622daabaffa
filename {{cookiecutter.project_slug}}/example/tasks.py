"""The example task and the view that enqueues it from the web process.

django-q2's ORM broker delivers each task at least once: a task that was running when the worker
stopped is delivered again after Q_CLUSTER["retry"] seconds. So a task must be idempotent: running it
twice for the same key leaves the same rows as running it once.
"""

import hashlib
import logging
import time
import uuid

from django.contrib import messages
from django.db import DatabaseError
from django.db.models import F
from django.http import HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_q.tasks import async_task
{% if cookiecutter.task_broker == "redis" %}
from redis.exceptions import RedisError
{% endif %}

from example import views
from example.models import ExampleResult

log = logging.getLogger(__name__)
MAX_EXAMPLE_SECONDS = 30
# The broker being down (a Redis restart, REDIS_URL pointing nowhere) is not a bug in the request: 503.
BROKER_ERRORS = (DatabaseError,{% if cookiecutter.task_broker == "redis" %} RedisError{% endif %})
BROKER_DOWN = "The task queue is unreachable, so the task was not enqueued; try again in a moment."


def compute_example(key, seconds=0.0):
    """Store the SHA-256 of `key`. Idempotent: the row for a key is the same after one run or many."""
    time.sleep(min(float(seconds), MAX_EXAMPLE_SECONDS))
    digest = hashlib.sha256(key.encode()).hexdigest()
    ExampleResult.objects.update_or_create(key=key, defaults={"digest": digest})
    ExampleResult.objects.filter(key=key).update(runs=F("runs") + 1)
    return digest


@require_POST
def enqueue_example(request):
    """The index page's form gets the index page back with a message; API clients get JSON."""
    html = "text/html" in request.headers.get("Accept", "")
    key = (request.POST.get("key") or uuid.uuid4().hex)[:64]
    try:
        seconds = min(float(request.POST.get("seconds") or 0), MAX_EXAMPLE_SECONDS)
    except ValueError:
        return refused(request, html, "seconds must be a number", 400)
    try:
        task_id = async_task(compute_example, key, seconds, task_name=f"example-{key[:40]}")
    except BROKER_ERRORS as error:
        log.warning("enqueue failed, broker unreachable: %s", error)
        return refused(request, html, BROKER_DOWN, 503)
    if html:
        # Nothing here knows whether a worker runs (`bin/dyno web` alone starts none): say what is sure.
        queued = f"Queued task {task_id} for key {key}: a worker dyno runs it once one is running"
        messages.success(request, f"{queued}; its result then shows below.")
        return HttpResponseRedirect(reverse("index"))
    return JsonResponse({"task_id": task_id, "key": key}, status=202)


def refused(request, html, reason, status):
    """Why the task was not queued: on the index page (same request, with its status), or as JSON."""
    if html:
        messages.error(request, f"Not queued: {reason}")
        response = views.index(request, status=status)
    else:
        response = JsonResponse({"error": reason}, status=status)
    if status == 503:  # the broker is down: worth trying again shortly
        response["Retry-After"] = "5"
    return response
