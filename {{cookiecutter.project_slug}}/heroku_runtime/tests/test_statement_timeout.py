"""The statement timeout's two handlers, on stand-ins for PostgreSQL connections (the tests run on SQLite;
docs/reliability.md says what the timeout does on PostgreSQL through PgBouncer)."""

import io
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import call_command, get_commands

from heroku_runtime import statement_timeout


class FakePostgres:
    vendor = "postgresql"

    def __init__(self, host, port):
        self.settings_dict = {"HOST": host, "PORT": port, "NAME": "db1"}
        self.ops = mock.Mock(quote_name=lambda name: f'"{name}"')
        self.executed = []

    def cursor(self):
        cursor = mock.MagicMock()
        cursor.__enter__.return_value = cursor
        cursor.execute.side_effect = self.executed.append
        cursor.fetchone.return_value = ["app_db"]
        return cursor


@pytest.mark.parametrize(
    ("dyno", "host", "port", "lifted"),
    [
        ("release.1234", "ec2.example.com", 5432, True),  # the release phase, straight to PostgreSQL
        ("run.5678", "ec2.example.com", 5432, True),  # heroku run
        ("", "localhost", 5432, True),  # a local run without bin/dyno
        ("web.1", "127.0.0.1", 6000, False),  # through the dyno's PgBouncer
        ("worker.1", "127.0.0.1", 6000, False),
        ("run.5678", "127.0.0.1", 6000, False),  # a SET through PgBouncer would outlive the session
    ],
)
def test_the_timeout_is_lifted_only_for_direct_sessions_outside_request_dynos(monkeypatch, dyno, host, port, lifted):
    monkeypatch.setenv("DYNO", dyno)
    fake = FakePostgres(host, port)
    statement_timeout.no_timeout_outside_request_dynos(sender=None, connection=fake)
    assert fake.executed == (["SET statement_timeout = 0"] if lifted else [])


@pytest.mark.parametrize(("timeout", "statement"), [("25s", "SET statement_timeout = '25s'"), ("", "RESET")])
def test_the_role_timeout_is_set_after_migrating(timeout, statement):
    fake, output = FakePostgres("ec2.example.com", 5432), []
    statement_timeout.set_role_statement_timeout(fake, timeout, mock.Mock(write=output.append))
    assert fake.executed[0] == "SELECT current_database()"
    assert fake.executed[1].startswith('ALTER ROLE CURRENT_USER IN DATABASE "app_db" ')
    assert statement in fake.executed[1]
    assert output == [f"statement_timeout for this role in app_db: {timeout or 'none'}"]


@pytest.mark.django_db
def test_manage_py_migrate_sets_it_once(monkeypatch):
    """Django's own migrate command, with this app's post_migrate handler (no command replaced)."""
    fake = FakePostgres("ec2.example.com", 5432)
    monkeypatch.setattr(statement_timeout, "connections", {"default": fake})
    monkeypatch.setattr(settings, "DATABASE_STATEMENT_TIMEOUT", "25s")
    output = io.StringIO()
    call_command("migrate", "--noinput", stdout=output)
    assert [sql for sql in fake.executed if sql.startswith("ALTER ROLE")] == [
        "ALTER ROLE CURRENT_USER IN DATABASE \"app_db\" SET statement_timeout = '25s'"
    ]
    assert "statement_timeout for this role in app_db: 25s" in output.getvalue()
    assert get_commands()["migrate"] == "django.core"
