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


def redis_url(name):
    """Heroku Key-Value Store serves TLS (rediss://) with a self-signed certificate: don't verify it."""
    url = os.environ.get(name, "")
    if url.startswith("rediss://") and "ssl_cert_reqs" not in url:
        url += ("&" if "?" in url else "?") + "ssl_cert_reqs=none"
    return url
