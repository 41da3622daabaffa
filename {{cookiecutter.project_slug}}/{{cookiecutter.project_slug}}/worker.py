"""The django-q2 worker (`python manage.py qcluster`). The broker's own settings are in
broker_{{ cookiecutter.task_broker }}.py; docs/worker.md and docs/broker-{{ cookiecutter.task_broker }}.md explain both.
https://django-q2.readthedocs.io/en/master/configure.html
"""

import os

from django.core.exceptions import ImproperlyConfigured

from .broker_{{ cookiecutter.task_broker }} import BROKER
from .env import env_bool

Q_CLUSTER = {
    "name": "{{ cookiecutter.project_slug }}",
    **BROKER,
    "workers": int(os.environ.get("Q_WORKERS", "2")),
    # Fetch no more tasks ahead than there are workers: a task fetched but not started when the dyno
    # stops is delivered again or lost, as the broker does with a task in flight.
    "queue_limit": int(os.environ.get("Q_WORKERS", "2")),
    "timeout": int(os.environ.get("Q_TIMEOUT", "60")),
    "retry": int(os.environ.get("Q_RETRY", "90")),
    "max_attempts": int(os.environ.get("Q_MAX_ATTEMPTS", "5")),
    "ack_failures": True,
    "catch_up": False,
    "poll": float(os.environ.get("Q_POLL", "1")),
    # Run tasks in-process, without a cluster, in tests and in local scripts that ask for it.
    "sync": env_bool("Q_SYNC", False),
}
if Q_CLUSTER["timeout"] >= Q_CLUSTER["retry"]:
    raise ImproperlyConfigured("Q_TIMEOUT must be lower than Q_RETRY, or running tasks are delivered twice.")
