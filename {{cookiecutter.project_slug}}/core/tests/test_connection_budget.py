import pytest
from django.core.management import CommandError, call_command


def budget(*args):
    from io import StringIO

    out = StringIO()
    call_command("connection_budget", *args, stdout=out)
    return out.getvalue()


def test_app_json_defaults_fit_the_smallest_plan():
    output = budget("--dynos", "web=1,worker=1", "--pool", "5", "--reserve", "2", "--plan", "essential-0")
    assert "web: 1 dyno(s) x (5 pool + 2 reserve) = 7" in output
    assert "total: 16 of 20 (plan essential-0)" in output
    assert "fits, with 4 connections to spare" in output


def test_too_many_dynos_do_not_fit_and_the_message_says_what_would():
    with pytest.raises(CommandError, match=r"does not fit: 30 > 20.*keep pool \+ reserve at 4 or less"):
        budget("--dynos", "web=3,worker=1", "--pool", "5", "--reserve", "2", "--max-connections", "20")


def test_formation_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DYNO_FORMATION", "web=2")
    monkeypatch.setenv("PGBOUNCER_DEFAULT_POOL_SIZE", "3")
    monkeypatch.setenv("PGBOUNCER_RESERVE_POOL_SIZE", "1")
    output = budget("--max-connections", "120")
    assert "web: 2 dyno(s) x (3 pool + 1 reserve) = 8" in output
    assert "total: 10 of 120" in output


def test_default_formation_is_one_dyno_of_each_procfile_type_behind_pgbouncer(monkeypatch):
    from django.conf import settings

    monkeypatch.delenv("DYNO_FORMATION", raising=False)
    procfile = (settings.BASE_DIR / "Procfile").read_text()
    pooled = [line.partition(":")[0] for line in procfile.splitlines() if "bin/start-pgbouncer" in line]
    assert "web" in pooled  # release: runs migrate without PgBouncer and is not counted
    output = budget("--pool", "5", "--reserve", "2", "--max-connections", "100")
    counted = [line.partition(":")[0] for line in output.splitlines() if " dyno(s) x " in line]
    assert counted == pooled
    assert f"total: {7 * len(pooled) + 2} of 100" in output


def test_bad_formation_is_explained():
    with pytest.raises(CommandError, match="process=count pairs"):
        budget("--dynos", "web:2", "--max-connections", "20")


@pytest.mark.django_db
def test_without_a_limit_it_asks_postgresql_or_says_what_to_give():
    from django.db import connection

    if connection.vendor == "postgresql":
        assert "(SHOW max_connections)" in budget("--dynos", "web=1")
    else:
        with pytest.raises(CommandError, match="give --plan or --max-connections"):
            budget("--dynos", "web=1")
