"""`manage.py migrate_release`, the release phase's migrate: its lock timeout, on which connections it is set,
and its tries when a migration gives up on a lock (PostgreSQL's error stood in for: the tests run on SQLite)."""

import io
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import OperationalError

from heroku_runtime.management.commands import migrate_release
from heroku_runtime.tests.test_statement_timeout import FakePostgres


class LockNotAvailable(Exception):
    sqlstate = "55P03"  # what psycopg's errors.LockNotAvailable carries


class QueryCanceled(Exception):
    sqlstate = "57014"  # statement_timeout: not a lock wait, not tried again


def raised_from(cause):
    try:
        raise OperationalError("canceling statement due to lock timeout") from cause
    except OperationalError as error:
        return error


@pytest.mark.parametrize(("value", "timeout"), [(None, "5s"), ("2s", "2s"), ("500ms", "500ms"), ("0", ""), ("", "")])
def test_the_lock_timeout_and_its_off_switch(monkeypatch, value, timeout):
    if value is None:
        monkeypatch.delenv("RELEASE_LOCK_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("RELEASE_LOCK_TIMEOUT", value)
    assert migrate_release.lock_timeout_setting() == timeout


def test_a_lock_timeout_that_is_no_duration_is_refused(monkeypatch):
    monkeypatch.setenv("RELEASE_LOCK_TIMEOUT", "5s; DROP TABLE x")
    with pytest.raises(CommandError, match="RELEASE_LOCK_TIMEOUT"):
        migrate_release.lock_timeout_setting()


@pytest.mark.parametrize(
    ("host", "port", "statements"),
    [
        ("ec2.example.com", 5432, ["SET lock_timeout = '5s'"]),  # the release phase: straight to PostgreSQL
        ("127.0.0.1", 6000, []),  # through the dyno's PgBouncer the SET would outlive this session
    ],
)
def test_the_timeout_is_set_only_on_a_session_straight_to_postgres(host, port, statements):
    command = migrate_release.Command()
    command.lock_timeout, command.database = "5s", "default"
    fake = FakePostgres(host, port)
    fake.alias = "default"
    command.bound_lock_waits(sender=None, connection=fake)
    assert fake.executed == statements


def test_only_a_lock_timeout_counts_as_giving_up_on_a_lock():
    assert migrate_release.gave_up_on_a_lock(raised_from(LockNotAvailable()))
    assert not migrate_release.gave_up_on_a_lock(raised_from(QueryCanceled()))
    assert not migrate_release.gave_up_on_a_lock(ValueError())


def failing_migrate(failures, cause=LockNotAvailable):
    """Django's migrate stood in for: the first `failures` calls give up on a lock in a named migration."""
    calls = []

    def handle(self, *args, **options):
        calls.append(options)
        self.verbosity = 0
        if len(calls) <= failures:
            self.migration_progress_callback("apply_start", "example.0002_example_flag")
            self.last_statement = 'ALTER TABLE "example_exampleresult" ADD COLUMN "flag" boolean'
            raise raised_from(cause())

    return calls, handle


@pytest.mark.django_db
def test_a_lock_held_for_a_moment_is_waited_out(monkeypatch):
    monkeypatch.setenv("RELEASE_LOCK_TIMEOUT", "5s")
    calls, handle = failing_migrate(failures=2)
    monkeypatch.setattr(MigrateCommand, "handle", handle)
    errors = io.StringIO()
    call_command("migrate_release", "--noinput", "--lock-pause=0", stdout=io.StringIO(), stderr=errors)
    assert len(calls) == 3
    assert "Migration example.0002_example_flag waited 5s for a lock and gave up" in errors.getvalue()
    assert "Try 2 of 4 gave up on a lock; trying again in 0s." in errors.getvalue()


@pytest.mark.django_db
def test_a_lock_held_for_good_fails_the_release_saying_what_waited_and_how_to_retry(monkeypatch):
    monkeypatch.setenv("RELEASE_LOCK_TIMEOUT", "5s")
    calls, handle = failing_migrate(failures=99)
    monkeypatch.setattr(MigrateCommand, "handle", handle)
    with mock.patch("time.sleep") as sleep, pytest.raises(CommandError) as failure:
        call_command("migrate_release", "--noinput", "--lock-retries=2", stdout=io.StringIO(), stderr=io.StringIO())
    assert len(calls) == 3 and sleep.call_count == 2
    message = str(failure.value)
    assert message.startswith("Migration example.0002_example_flag waited 5s for a lock and gave up")
    assert 'ALTER TABLE "example_exampleresult" ADD COLUMN "flag" boolean' in message
    assert "Gave up after 3 tries" in message and "heroku releases:retry" in message


@pytest.mark.django_db
@pytest.mark.parametrize(("timeout", "cause"), [("0", LockNotAvailable), ("5s", QueryCanceled)])
def test_other_failures_and_an_unbounded_wait_are_not_tried_again(monkeypatch, timeout, cause):
    monkeypatch.setenv("RELEASE_LOCK_TIMEOUT", timeout)
    calls, handle = failing_migrate(failures=1, cause=cause)
    monkeypatch.setattr(MigrateCommand, "handle", handle)
    with pytest.raises(OperationalError):
        call_command("migrate_release", "--noinput", "--lock-pause=0", stdout=io.StringIO(), stderr=io.StringIO())
    assert len(calls) == 1


@pytest.mark.django_db
def test_it_migrates_as_migrate_does():
    output = io.StringIO()
    call_command("migrate_release", "--noinput", stdout=output)
    assert "No migrations to apply." in output.getvalue()
