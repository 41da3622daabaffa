"""Django's cache on MemCachier (`heroku addons:create memcachier`, which sets MEMCACHIER_*); Django's
per-process memory cache when it is unset. MemCachier needs SASL authentication over memcached's binary
protocol, which django-bmemcached speaks (through python-binary-memcached). See docs/cache-memcached.md.
https://devcenter.heroku.com/articles/memcachier#django
"""

import os

from .env import env_list

if os.environ.get("MEMCACHIER_SERVERS"):
    CACHES = {
        "default": {
            "BACKEND": "django_bmemcached.memcached.BMemcached",
            "LOCATION": env_list("MEMCACHIER_SERVERS"),
            "OPTIONS": {
                "username": os.environ.get("MEMCACHIER_USERNAME", ""),
                "password": os.environ.get("MEMCACHIER_PASSWORD", ""),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
