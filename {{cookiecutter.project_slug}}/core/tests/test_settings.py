import pytest

PRODUCTION = {
    "DYNO": "web.1",
    "DJANGO_SECRET_KEY": "x" * 64,
    # Required on Heroku only by some options (S3 media, the Redis broker); ignored by the rest.
    "AWS_STORAGE_BUCKET_NAME": "bucket",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}
SUMMARY = "[settings.DEBUG, settings.SECRET_KEY[:16], getattr(settings, 'SECURE_SSL_REDIRECT', False)]"


def test_runs_locally_with_no_environment(fresh_settings):
    debug, key, redirect = fresh_settings(SUMMARY)
    assert (debug, redirect) == (True, False)
    assert key.startswith("django-insecure")


@pytest.mark.parametrize("secret", ["", "   "])
def test_refuses_to_start_on_heroku_without_the_secret_key(fresh_settings, secret):
    with pytest.raises(AssertionError, match="DJANGO_SECRET_KEY is not set"):
        fresh_settings(SUMMARY, **{**PRODUCTION, "DJANGO_SECRET_KEY": secret})


def test_production_settings_on_heroku(fresh_settings):
    assert fresh_settings(SUMMARY, **PRODUCTION) == [False, "x" * 16, True]


def test_heroku_ci_runs_with_the_local_defaults(fresh_settings):
    debug, _, redirect = fresh_settings(SUMMARY, DYNO="run.1", CI="true")
    assert (debug, redirect) == (True, False)


@pytest.mark.parametrize(("mode", "server_side_cursors_off"), [("transaction", True), ("session", False)])
def test_database_settings_follow_the_pool_mode(fresh_settings, mode, server_side_cursors_off):
    database = fresh_settings(
        "settings.DATABASES['default']",
        DATABASE_URL="postgres://user:password@127.0.0.1:6000/db1",
        PGBOUNCER_POOL_MODE=mode,
    )
    assert database.get("DISABLE_SERVER_SIDE_CURSORS", False) is server_side_cursors_off
    assert "sslmode" not in database["OPTIONS"]
    if mode == "transaction":
        assert database["OPTIONS"]["prepare_threshold"] is None
        assert database["CONN_MAX_AGE"] == 600
    else:
        assert database["CONN_MAX_AGE"] == 0
    assert database["CONN_HEALTH_CHECKS"] is True
