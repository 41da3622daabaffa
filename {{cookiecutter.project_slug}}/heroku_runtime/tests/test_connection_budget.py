import json

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command


@pytest.fixture(autouse=True)
def a_dyno_environment(monkeypatch):
    """What Heroku's Python buildpack sets on a 512 MB dyno; tests that need another value set their own."""
    monkeypatch.setenv("WEB_CONCURRENCY", "2")


def budget(*args):
    from io import StringIO

    out = StringIO()
    call_command("connection_budget", *args, stdout=out)
    return out.getvalue()


def web_clients():
    from heroku_runtime import pgbouncer
    from heroku_runtime.management.commands.connection_budget import database_clients

    return database_clients("web", pgbouncer.pool_size())[0]


def test_app_json_defaults_fit_the_smallest_plan(monkeypatch):
    app_json = json.loads((settings.BASE_DIR / "app.json").read_text())
    pool, reserve = (app_json["env"][f"PGBOUNCER_{name}_POOL_SIZE"]["value"] for name in ("DEFAULT", "RESERVE"))
    plan = app_json["addons"][0]["plan"].removeprefix("heroku-postgresql:")
    monkeypatch.setenv("PGBOUNCER_DEFAULT_POOL_SIZE", pool)
    monkeypatch.setenv("PGBOUNCER_RESERVE_POOL_SIZE", reserve)
    output = budget("--dynos", "web=1", "--plan", plan)
    from heroku_runtime.management.commands.connection_budget import DIRECT_CONNECTIONS, PLAN_LIMITS

    web, limit = min(int(pool) + int(reserve), web_clients()), PLAN_LIMITS[plan]
    counted = f"web: 1 dyno(s) x {web} = {web} (pool {pool} + reserve {reserve}; clients at once: {web_clients()},"
    assert counted in output
    assert f"total: {web + DIRECT_CONNECTIONS} of {limit} (plan {plan})" in output
    assert f"fits, with {limit - DIRECT_CONNECTIONS - web} connections to spare" in output


def test_without_web_concurrency_it_says_where_to_run(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY")
{% if cookiecutter.wsgi_server == "waitress" %}
    # waitress's web dyno is counted by its threads, which do not depend on WEB_CONCURRENCY.
    assert "web: 1 dyno(s)" in budget("--dynos", "web=1", "--plan", "essential-0")
{% else %}
    with pytest.raises(CommandError, match=r"WEB_CONCURRENCY is not set here: .*heroku run python manage\.py"):
        budget("--dynos", "web=1", "--plan", "essential-0")
{% endif %}
{% if cookiecutter.wsgi_server == "waitress" %}


def test_waitress_has_as_many_threads_as_the_pool_unless_told(monkeypatch):
    monkeypatch.delenv("WAITRESS_THREADS", raising=False)
    monkeypatch.setenv("PGBOUNCER_DEFAULT_POOL_SIZE", "6")
    assert web_clients() == 6
    monkeypatch.setenv("WAITRESS_THREADS", "3")
    assert web_clients() == 3


def test_a_smaller_pool_is_counted_with_the_threads_it_gives_waitress(monkeypatch):
    # Asked about pool 3 on dynos configured with 5: a dyno given pool 3 runs 3 threads, so opens 3, not 4.
    monkeypatch.delenv("WAITRESS_THREADS", raising=False)
    monkeypatch.setenv("PGBOUNCER_DEFAULT_POOL_SIZE", "5")
    output = budget("--dynos", "web=3", "--pool", "3", "--reserve", "1", "--plan", "essential-0")
    assert "web: 3 dyno(s) x 3 = 9 " in output
    # Its advice counts them so: pool 7 gives 7 threads, 3 x 7 + 2 > 20; pool 6 + reserve 1 gives 6 threads,
    # and 3 x 6 + 2 = 20 fits (counted at pool + reserve, 7 each, it would not).
    advice = r"does not fit: 23 > 20.*PGBOUNCER_DEFAULT_POOL_SIZE=6 PGBOUNCER_RESERVE_POOL_SIZE=1\)"
    with pytest.raises(CommandError, match=advice):
        budget("--dynos", "web=3", "--pool", "7", "--reserve", "2", "--plan", "essential-0")
{% endif %}


def test_a_dyno_counts_no_more_than_its_clients_nor_its_pool(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("WAITRESS_THREADS", "3")
    under_the_clients = budget("--dynos", "web=2", "--pool", "5", "--reserve", "2", "--plan", "standard-0")
    under_the_pool = budget("--dynos", "web=2", "--pool", "1", "--reserve", "1", "--plan", "standard-0")
    assert "web: 2 dyno(s) x 3 = 6 " in under_the_clients
    assert "web: 2 dyno(s) x 2 = 4 " in under_the_pool


def test_a_process_type_of_its_own_counts_at_pool_plus_reserve():
    output = budget("--dynos", "clock=2", "--pool", "5", "--reserve", "2", "--plan", "essential-0")
    assert "clock: 2 dyno(s) x 7 = 14 (pool 5 + reserve 2; clients at once: ?, not known to this command)" in output
{% if cookiecutter.use_worker %}


def test_the_worker_counts_its_workers_and_the_cluster_processes_that_query(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 4}
    output = budget("--dynos", "worker=1", "--pool", "10", "--reserve", "2", "--plan", "standard-0")
    extra = 3 if "orm" in settings.Q_CLUSTER else 2
    assert f"worker: 1 dyno(s) x {4 + extra} = {4 + extra} " in output
{% endif %}


def test_too_many_dynos_do_not_fit_and_the_message_says_what_would(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    monkeypatch.setenv("WAITRESS_THREADS", "2")
    # 10 x 2 + 2 > 20; 10 x 1 + 2 fits.
    with pytest.raises(CommandError, match=r"does not fit: 22 > 20.*keep pool \+ reserve at 1 or less"):
        budget("--dynos", "web=10", "--pool", "5", "--reserve", "2", "--max-connections", "20")
    with pytest.raises(CommandError, match=r"does not fit: 62 > 20\. With web=30, no pool size fits"):
        budget("--dynos", "web=30", "--pool", "1", "--reserve", "1", "--max-connections", "20")


def test_formation_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DYNO_FORMATION", "clock=2")
    monkeypatch.setenv("PGBOUNCER_DEFAULT_POOL_SIZE", "3")
    monkeypatch.setenv("PGBOUNCER_RESERVE_POOL_SIZE", "1")
    output = budget("--max-connections", "120")
    assert "clock: 2 dyno(s) x 4 = 8 (pool 3 + reserve 1;" in output
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
