"""Django's cache on MemCachier (`heroku addons:create memcachier`, which sets MEMCACHIER_*); Django's
per-process memory cache when it is unset. MemCachier needs SASL authentication over memcached's binary
protocol, which django-bmemcached speaks (through python-binary-memcached). See docs/cache-memcached.md.
https://devcenter.heroku.com/articles/memcachier#django
"""

import os

from .env import env_list, env_seconds

if os.environ.get("MEMCACHIER_SERVERS"):
    CACHES = {
        "default": {
            "BACKEND": "django_bmemcached.memcached.BMemcached",
            "LOCATION": env_list("MEMCACHIER_SERVERS"),
            "OPTIONS": {
                "username": os.environ.get("MEMCACHIER_USERNAME", ""),
                "password": os.environ.get("MEMCACHIER_PASSWORD", ""),
                # python-binary-memcached waits this long for each connect and each reply (its own default:
                # 3 s), then treats the server as gone: a get answers a miss, a set stores nothing. On a
                # server that accepts and then says nothing, a get costs two waits (SASL login, then the
                # get) and a set four (login and set, then login and Django's delete of the stale key).
                "socket_timeout": env_seconds("MEMCACHIER_TIMEOUT", "0.5"),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
