"""heroku_runtime.middleware: 503 with Retry-After, fast, while the database can't be reached."""

import psycopg
import pytest
from django.db import OperationalError
from django.http import HttpResponse
from django.test import RequestFactory

from heroku_runtime import middleware, probe

pytestmark = pytest.mark.django_db  # the middleware closes Django's connection when it is broken


def wrapped(cause):
    """A Django OperationalError as Django raises it: from the driver's exception."""
    try:
        raise OperationalError(str(cause)) from cause
    except OperationalError as error:
        return error


@pytest.mark.parametrize(
    ("cause", "unavailable"),
    [
        (psycopg.errors.ProtocolViolation("query_wait_timeout"), True),  # PgBouncer's own errors: 08P01
        (psycopg.errors.TooManyConnections("too many connections for role"), True),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), True),
        (psycopg.OperationalError("connection refused"), True),  # no answer at all: no SQLSTATE
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), False),
    ],
)
def test_which_errors_mean_the_database_is_unreachable(cause, unavailable):
    assert middleware.database_unavailable(wrapped(cause)) is unavailable


def test_other_exceptions_are_left_alone():
    assert middleware.database_unavailable(ValueError("x")) is False


@pytest.fixture
def calls():
    return []


@pytest.fixture
def guarded(calls):
    def view(request):
        calls.append(request.path)
        return HttpResponse("ok")

    return middleware.DatabaseUnavailableMiddleware(view)


def test_503_then_a_bounded_probe_until_the_database_is_back(guarded, calls, monkeypatch):
    request = RequestFactory().get("/")
    response = guarded.process_exception(request, wrapped(psycopg.errors.ProtocolViolation("query_wait_timeout")))
    assert response.status_code == 503 and response["Retry-After"] == str(middleware.RETRY_AFTER)

    # /health/ always runs: it has its own deadline.
    assert guarded(RequestFactory().get("/health/")).status_code == 200 and calls == ["/health/"]

    # Other requests: a probe decides. Still down -> 503 without the view; back -> the view runs.
    def down(timeout):
        assert timeout == middleware.PROBE_TIMEOUT
        raise TimeoutError("no answer")

    monkeypatch.setattr(probe, "database_answers", down)
    assert guarded(request).status_code == 503 and calls == ["/health/"]
    monkeypatch.setattr(probe, "database_answers", lambda timeout: None)
    assert guarded(request).status_code == 200 and calls == ["/health/", "/"]
    assert guarded.failed_at is None
    # Once back, no probe at all.
    monkeypatch.setattr(probe, "database_answers", down)
    assert guarded(request).status_code == 200 and calls == ["/health/", "/", "/"]


def test_a_statement_timeout_stays_a_500(guarded):
    request = RequestFactory().get("/")
    error = wrapped(psycopg.errors.QueryCanceled("canceling statement due to statement timeout"))
    assert guarded.process_exception(request, error) is None  # Django's 500 handling takes it
    assert guarded.failed_at is None
