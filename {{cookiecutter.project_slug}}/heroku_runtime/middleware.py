"""A short, clear 503 when the database can't be reached, instead of a 500 after PgBouncer's queue wait.

When PgBouncer gets no server connection (PostgreSQL restarting, or every connection the plan allows held
by other dynos), a query waits in its queue for query_wait_timeout (10 s, app.json), and Django's health
check of a kept connection is such a query too: a page failed with a 500 after up to 24 s. Here:

- a request that fails because the database is unreachable answers 503 with Retry-After, which tells
  clients and uptime checks that it is temporary (a statement_timeout or a bug still gives a 500);
- after that, until the database answers again, this process checks it with /health/'s bounded probe
  (PROBE_TIMEOUT) before it lets a request wait for it: while it stays unreachable, pages fail within
  PROBE_TIMEOUT (PgBouncer usually refuses at once), and the first one that finds it back goes through.

Static files (WhiteNoise, before this middleware) and /health/ (which has its own deadline) are not held up.
"""

import logging
import time

import psycopg
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpResponse

from heroku_runtime import probe

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0
RETRY_AFTER = 5
# SQLSTATEs that mean "no usable connection": connection exceptions (PgBouncer's own errors are 08P01),
# too many connections, and the server shutting down or starting up. None: failed before any answer.
UNAVAILABLE_STATES = ("08", "53300", "57P01", "57P02", "57P03")
PAGE = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Service unavailable</title></head>"
    "<body><h1>Service temporarily unavailable</h1><p>The database can't be reached right now. "
    "Please try again in a few seconds.</p></body></html>"
)


def database_unavailable(exception):
    if not isinstance(exception, (OperationalError, InterfaceError)):
        return False
    state = getattr(exception.__cause__, "sqlstate", None)
    return state is None or state.startswith(UNAVAILABLE_STATES)


def unavailable():
    response = HttpResponse(PAGE, status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.failed_at = None  # when this process last found the database unreachable

    def __call__(self, request):
        if self.failed_at is not None and not request.path.startswith("/health/"):
            try:
                probe.database_answers(PROBE_TIMEOUT)
            except (DatabaseError, psycopg.Error, OSError) as error:
                self.failed_at = time.monotonic()
                log.warning("database still unreachable: %s", str(error).strip() or type(error).__name__)
                return unavailable()
            self.failed_at = None
            log.info("database reachable again")
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not database_unavailable(exception):
            return None
        self.failed_at = time.monotonic()
        log.error("database unreachable, answering 503: %s", str(exception).strip() or type(exception).__name__)
        connection.close_if_unusable_or_obsolete()
        return unavailable()


def _addon_errors():
    """The errors that mean an add-on could not be reached in time, from the clients this project has: Redis
    (the cache, the broker) and S3 (botocore). Each times out after its config var (docs/, the option's file)."""
    errors = []
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        errors += [RedisConnectionError, RedisTimeoutError]
    except ImportError:
        pass
    try:
        from botocore.exceptions import ConnectionError as BotocoreConnectionError
        from botocore.exceptions import HTTPClientError

        errors += [BotocoreConnectionError, HTTPClientError]  # refused and connect timeouts; read timeouts
    except ImportError:
        pass
    return tuple(errors)


ADDON_ERRORS = _addon_errors()
ADDON_PAGE = PAGE.replace("The database can't be reached right now.", "A service this page needs can't be reached.")


class AddonUnavailableMiddleware:
    """503 with Retry-After, not a 500, for a view that lets an add-on's connection error or timeout through
    (a cache call or an upload while Redis or S3 is down or hung). Views that can do without the add-on catch
    the error themselves (a cache that is down can count as a miss)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not ADDON_ERRORS or not isinstance(exception, ADDON_ERRORS):
            return None
        log.error("add-on unreachable, answering 503: %s", str(exception).strip() or type(exception).__name__)
        response = HttpResponse(ADDON_PAGE, status=503)
        response["Retry-After"] = str(RETRY_AFTER)
        return response
