"""The Strict-Transport-Security policy, in one place: settings.py reads it for Django's responses, and
config/nginx.conf.erb runs this file (`python3 heroku_runtime/hsts.py` prints the header) for nginx's own
error pages. The standard library only: nginx's config is rendered before Django starts.

Config vars: DJANGO_SECURE_HSTS_SECONDS, DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS, DJANGO_SECURE_HSTS_PRELOAD.
"""

import os
import sys

# Start low and raise it once every subdomain serves HTTPS: browsers remember it for this long.
DEFAULT_SECONDS = 3600
# Browsers' preload lists (https://hstspreload.org) take a site only with a max-age of a year or more and
# includeSubDomains, and removal takes months: preload follows the max-age, off until it is raised.
PRELOAD_MIN_SECONDS = 31536000


def flag(value, default):
    value = (value or "").strip().lower()
    return default if value == "" else value in {"1", "true", "yes", "on"}


def policy(environ=os.environ):
    """(max-age seconds, includeSubDomains, preload); ValueError for a preload the max-age does not allow."""
    seconds = int(environ.get("DJANGO_SECURE_HSTS_SECONDS") or DEFAULT_SECONDS)
    subdomains = flag(environ.get("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS"), True)
    preload_allowed = seconds >= PRELOAD_MIN_SECONDS and subdomains
    preload = flag(environ.get("DJANGO_SECURE_HSTS_PRELOAD"), preload_allowed)
    if preload and not preload_allowed:
        raise ValueError(
            f"DJANGO_SECURE_HSTS_PRELOAD is on with DJANGO_SECURE_HSTS_SECONDS={seconds}: preload lists require a "
            f"max-age of at least {PRELOAD_MIN_SECONDS} (a year) and includeSubDomains; raise the max-age first, "
            "or unset DJANGO_SECURE_HSTS_PRELOAD."
        )
    return seconds, subdomains, preload


def header(environ=os.environ):
    """The header's value, or "" where Django sends none: max-age 0, or bin/dyno's plain-http local run."""
    seconds, subdomains, preload = policy(environ)
    if seconds <= 0 or flag(environ.get("DJANGO_LOCAL_HTTP"), False):
        return ""
    return f"max-age={seconds}" + ("; includeSubDomains" if subdomains else "") + ("; preload" if preload else "")


if __name__ == "__main__":
    try:
        print(header())
    except ValueError as error:
        sys.exit(f"heroku_runtime/hsts.py: {error}")
