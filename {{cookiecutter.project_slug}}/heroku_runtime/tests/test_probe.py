"""/health/'s probe connection: kept per thread while Django keeps its own, replaced when it fails."""

import socket
import time
from unittest import mock

import psycopg
import pytest
from django.db import connection

from heroku_runtime import probe


class FakeProbe:
    """A psycopg connection as _postgres_answers uses it: pgconn.send_query, is_busy, get_result, socket."""

    def __init__(self, fail=False, hang=False):
        self.fail, self.hang, self.closed, self.queries = fail, hang, False, 0
        self.reader, self.writer = socket.socketpair()  # never readable: select() waits for the deadline
        self.pgconn = self
        self.pending = []

    @property
    def socket(self):
        return self.reader.fileno()

    def send_query(self, query):
        assert not self.pending, "a query was sent before the previous one's results were all read"
        if self.fail:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        self.queries += 1
        self.pending = [] if self.hang else [mock.Mock(status=psycopg.pq.ExecStatus.TUPLES_OK), None]

    def is_busy(self):
        return self.hang

    def consume_input(self):
        pass

    def get_result(self):
        return self.pending.pop(0)

    def close(self):
        self.closed = True
        self.reader.close()
        self.writer.close()


@pytest.fixture
def probes(settings):
    """Each psycopg.connect() in the view returns a new FakeProbe, recorded in order; no probe kept before."""
    made = []

    def connect(**params):
        made.append(FakeProbe())
        return made[-1]

    probe._probe.__dict__.clear()
    with mock.patch("heroku_runtime.probe.psycopg.connect", side_effect=connect):
        yield made
    for fake in made:
        if not fake.closed:
            fake.close()
    probe._probe.__dict__.clear()


def test_health_probe_is_kept_while_django_keeps_connections(probes):
    with mock.patch.dict(connection.settings_dict, {"CONN_MAX_AGE": 600}):
        for _ in range(5):
            probe._postgres_answers(1)
    assert len(probes) == 1 and probes[0].queries == 5 and not probes[0].closed


def test_health_probe_is_closed_each_call_when_django_closes_its_own(probes):
    # Session pool mode: CONN_MAX_AGE=0, and a kept probe would hold a PostgreSQL connection for good.
    with mock.patch.dict(connection.settings_dict, {"CONN_MAX_AGE": 0}):
        for _ in range(3):
            probe._postgres_answers(1)
    assert len(probes) == 3 and all(fake.closed for fake in probes)


def test_health_probe_that_fails_at_once_is_replaced_in_the_same_call(probes):
    with mock.patch.dict(connection.settings_dict, {"CONN_MAX_AGE": 600}):
        probe._postgres_answers(1)
        probes[0].fail = True  # e.g. PgBouncer restarted since the last call
        probe._postgres_answers(1)
    assert probes[0].closed and len(probes) == 2 and probes[1].queries == 1 and not probes[1].closed


def test_health_probe_is_closed_at_the_deadline_and_replaced_next_time(probes):
    with mock.patch.dict(connection.settings_dict, {"CONN_MAX_AGE": 600}):
        probe._postgres_answers(1)
        probes[0].hang = True  # PgBouncer keeps the query waiting: PostgreSQL is down
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            probe._postgres_answers(0.3)
        assert 0.3 <= time.monotonic() - started < 2
        assert probes[0].closed
        probe._postgres_answers(1)
    assert len(probes) == 2 and probes[1].queries == 1


def test_health_probe_is_replaced_after_conn_max_age(probes):
    with mock.patch.dict(connection.settings_dict, {"CONN_MAX_AGE": 600}):
        probe._postgres_answers(1)
        probe._probe.expires = time.monotonic() - 1
        probe._postgres_answers(1)
    assert probes[0].closed and len(probes) == 2
