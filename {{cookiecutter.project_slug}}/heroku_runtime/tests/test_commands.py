import pytest
from django.core.management import CommandError, call_command

from heroku_runtime import pgbouncer


def test_pgbouncer_stats_says_plainly_when_pgbouncer_is_absent(tmp_path, monkeypatch):
    monkeypatch.setattr(pgbouncer, "SOCKET_DIR", str(tmp_path))
    with pytest.raises(CommandError, match="PgBouncer is not running"):
        call_command("pgbouncer_stats")


def test_login_retry_is_left_alone_without_the_dynos_pgbouncer(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://user:password@db.example.com:5432/name")
    assert pgbouncer.shorten_login_retry() is False


def test_login_retry_gives_up_quickly_when_pgbouncer_is_absent(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DATABASE_URL", "postgres://user:password@127.0.0.1:6000/db1")
    monkeypatch.setattr(pgbouncer, "SOCKET_DIR", str(tmp_path))
    assert pgbouncer.shorten_login_retry(wait_seconds=0.3) is False
    assert "could not set PgBouncer's server_login_retry" in caplog.text
