"""django-q2's Redis broker on Heroku Key-Value Store (REDIS_URL): fast, but a task is removed from Redis
when a worker takes it, so a task in flight when the worker dies (a deploy's SIGKILL, a crash) is lost: at
most once. Results still go to PostgreSQL. See docs/broker-redis.md.
https://django-q2.readthedocs.io/en/master/brokers.html#redis
"""

import os

from django.core.exceptions import ImproperlyConfigured

from .env import IS_HEROKU_APP, redis_timeout, redis_url

if IS_HEROKU_APP and not os.environ.get("REDIS_URL"):
    raise ImproperlyConfigured("REDIS_URL is not set: the django-q2 broker needs Heroku Key-Value Store.")
# The worker waits for a task with BLPOP and a 1 s timeout: a reply timeout (REDIS_TIMEOUT, in the URL) of
# 1 s or less would fail every wait on an idle queue.
if redis_timeout() < 1.5:
    raise ImproperlyConfigured("REDIS_TIMEOUT must be at least 1.5 s with the Redis broker (its worker waits 1 s).")
BROKER = {"redis": redis_url("REDIS_URL", default="redis://127.0.0.1:6379/0")}
