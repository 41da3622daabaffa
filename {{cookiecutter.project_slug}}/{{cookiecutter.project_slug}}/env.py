"""Reading the environment, for settings.py and the option modules beside it (cache_*.py, media_s3.py,
worker.py, broker_*.py: the post-generation hook kept the ones this project was baked with)."""

import os
from email.utils import getaddresses

from django.core.exceptions import ImproperlyConfigured

# DYNO is set on every Heroku dyno but not during the build, so collectstatic at build time runs with the
# local defaults. Heroku CI sets CI and runs the tests with the local defaults too.
IS_HEROKU_APP = "DYNO" in os.environ and "CI" not in os.environ


def env_bool(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=()):
    value = os.environ.get(name, "")
    return [item.strip() for item in value.split(",") if item.strip()] or list(default)


def env_addresses(name):
    """[(name, address), ...] from "Ada Lovelace <ada@example.com>, ops@example.com" (commas inside a quoted
    name are kept: "Lovelace, Ada" <ada@example.com>); ImproperlyConfigured for anything else."""
    value = os.environ.get(name, "").strip()
    if not value:
        return []
    pairs = getaddresses([value])
    for _display, address in pairs:
        local, at, domain = address.rpartition("@")
        if not (local and at and "." in domain) or any(char.isspace() for char in address):
            raise ImproperlyConfigured(
                f"{name}={value!r}: give email addresses separated by commas, each with an optional name, "
                'e.g. "Ada Lovelace <ada@example.com>, ops@example.com"'
            )
    return pairs


def env_seconds(name, default):
    """A timeout in seconds from the environment: a positive number, or a clear error at start."""
    value = os.environ.get(name, "").strip() or default
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0
    if not 0 < seconds < 30:
        raise ImproperlyConfigured(f"{name}={value!r}: give a number of seconds above 0 and below 30, e.g. {default}.")
    return seconds


def redis_timeout():
    """Seconds to wait for Redis to accept a connection, and for each reply (REDIS_TIMEOUT)."""
    return env_seconds("REDIS_TIMEOUT", "2")


def redis_url(name, default=""):
    """The Redis URL in `name` (or `default`), with the connect and reply timeouts (REDIS_TIMEOUT) that redis-py
    reads from the URL: its own default, 5 s, would hold a request that long on a Redis that accepts and then
    says nothing (a failover in progress). Heroku Key-Value Store serves TLS (rediss://) with a self-signed
    certificate: don't verify it."""
    url = os.environ.get(name, "") or default
    if not url:
        return url
    timeout = f"{redis_timeout():g}"
    extra = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    if url.startswith("rediss://"):
        extra["ssl_cert_reqs"] = "none"
    for key, value in extra.items():
        if f"{key}=" not in url:
            url += ("&" if "?" in url else "?") + f"{key}={value}"
    return url
