import pytest
from django.core.management import CommandError, call_command

from core import pgbouncer


def test_pgbouncer_stats_says_plainly_when_pgbouncer_is_absent(tmp_path, monkeypatch):
    monkeypatch.setattr(pgbouncer, "SOCKET_DIR", str(tmp_path))
    with pytest.raises(CommandError, match="PgBouncer is not running"):
        call_command("pgbouncer_stats")
