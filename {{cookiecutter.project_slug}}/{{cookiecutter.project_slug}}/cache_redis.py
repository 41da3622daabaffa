"""Django's cache on Heroku Key-Value Store (`heroku addons:create heroku-redis`, which sets REDIS_URL);
Django's per-process memory cache when it is unset. See docs/cache-redis.md.
https://docs.djangoproject.com/en/5.2/topics/cache/#redis
"""

import os

from .env import redis_url

# redis_url() adds REDIS_TIMEOUT's connect and reply timeouts: a Redis that is down or hung costs a request at
# most that long, and the call raises redis.exceptions.RedisError, which a view can treat as a miss.
if os.environ.get("REDIS_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url("REDIS_URL")}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
