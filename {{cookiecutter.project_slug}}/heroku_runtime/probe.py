"""Does the database answer within a deadline? A SELECT 1 that cannot wait longer than asked."""

import logging
import math
import select
import threading
import time

import psycopg
from django.db import connection

log = logging.getLogger(__name__)


def database_answers(timeout):
    """Return when the database answers SELECT 1 within `timeout` s; raise (DatabaseError, psycopg.Error,
    OSError, TimeoutError) otherwise. /health/ and the 503 middleware both ask this."""
    if connection.vendor == "postgresql":
        _postgres_answers(timeout)
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()


def _postgres_answers(timeout):
    """SELECT 1 on a probe connection of this thread's own (through PgBouncer on a dyno), within `timeout` s.

    Not on Django's connection: a query abandoned at the deadline leaves a connection unusable, and
    Django's own check of a reused connection (CONN_HEALTH_CHECKS) is a SELECT 1 with no deadline.
    Closing the probe at the deadline also takes its query out of PgBouncer's queue.

    The probe is kept between calls as long as Django keeps its own connections (CONN_MAX_AGE): opening
    one per call would cost every check a login with a SCRAM exchange. An idle client connection to
    PgBouncer in transaction mode holds no PostgreSQL connection; in session mode CONN_MAX_AGE is 0 and the probe is
    closed after each call, as Django's connection is. A kept probe that fails at once (PgBouncer or
    PostgreSQL restarted since) is replaced by a new one within the same deadline.
    """
    deadline = time.monotonic() + timeout
    kept = getattr(_probe, "connection", None)
    if kept is not None:
        _probe.connection = None
        if time.monotonic() < _probe.expires:
            try:
                _select_one(kept, deadline, timeout)
            except TimeoutError:
                kept.close()
                raise
            except (psycopg.Error, OSError) as error:
                kept.close()
                log.info("health probe connection replaced: %s", str(error).strip() or type(error).__name__)
            else:
                _keep(kept, expires=_probe.expires)
                return
        else:
            kept.close()
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"no answer from the database within {timeout} s")
    params = connection.get_connection_params()
    params["connect_timeout"] = max(2, math.ceil(remaining))  # libpq: whole seconds, 2 at least
    probe = psycopg.connect(autocommit=True, **params)
    try:
        _select_one(probe, deadline, timeout)
    except BaseException:
        probe.close()
        raise
    max_age = connection.settings_dict.get("CONN_MAX_AGE", 0)
    if max_age == 0:
        probe.close()
    else:
        _keep(probe, expires=math.inf if max_age is None else time.monotonic() + max_age)


# One probe connection per thread (gunicorn's gthread, waitress and uWSGI threads each answer on their own).
_probe = threading.local()


def _keep(probe, expires):
    _probe.connection, _probe.expires = probe, expires


def _select_one(probe, deadline, timeout):
    """SELECT 1 on `probe`, every result read (so the connection is idle again for the next call)."""
    pgconn = probe.pgconn
    pgconn.send_query(b"SELECT 1")
    results = []
    while True:
        while pgconn.is_busy():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer from the database within {timeout} s")
            readable, _, _ = select.select([pgconn.socket], [], [], remaining)
            if readable:
                pgconn.consume_input()
        result = pgconn.get_result()  # does not block: a whole result (or the end of them) has arrived
        if result is None:
            break
        results.append(result)
    if not results or results[0].status != psycopg.pq.ExecStatus.TUPLES_OK:
        message = results[0].error_message.decode(errors="replace") if results else "no result"
        raise psycopg.DatabaseError(message)
