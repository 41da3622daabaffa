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


@pytest.mark.parametrize("secret", [None, "", "   ", "\t"])
def test_refuses_to_start_on_heroku_without_the_secret_key(fresh_settings, secret):
    environ = {key: value for key, value in PRODUCTION.items() if key != "DJANGO_SECRET_KEY"}
    if secret is not None:  # None: unset (fresh_settings passes on no DJANGO_SECRET_KEY of its own)
        environ["DJANGO_SECRET_KEY"] = secret
    with pytest.raises(AssertionError, match="DJANGO_SECRET_KEY is not set"):
        fresh_settings(SUMMARY, **environ)


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
    assert database["CONN_HEALTH_CHECKS"] is False  # PgBouncer checks its server connections itself


@pytest.mark.parametrize(
    ("url", "checked"),
    [
        ("postgres://user:password@127.0.0.1:6000/db1", False),  # as bin/start-pgbouncer rewrites it
        ("postgres://user:password@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d8abc", True),  # Heroku Postgres
        ("postgres://user:password@127.0.0.1:5432/app", True),  # a local PostgreSQL
    ],
)
def test_django_checks_its_kept_connection_only_when_it_is_not_to_the_dynos_pgbouncer(fresh_settings, url, checked):
    database = fresh_settings("settings.DATABASES['default']", DATABASE_URL=url)
    assert database["CONN_HEALTH_CHECKS"] is checked


HTTPS = (
    "[getattr(settings, name) for name in ('SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE',"
    " 'SECURE_HSTS_SECONDS', 'SECURE_PROXY_SSL_HEADER', 'ALLOWED_HOSTS')]"
)


@pytest.mark.parametrize("local_http", [None, "", "false"])
def test_https_only_on_a_real_dyno(fresh_settings, local_http):
    environ = PRODUCTION if local_http is None else {**PRODUCTION, "DJANGO_LOCAL_HTTP": local_http}
    redirect, session_secure, csrf_secure, hsts, proxy_header, hosts = fresh_settings(HTTPS, **environ)
    assert (redirect, session_secure, csrf_secure) == (True, True, True)
    assert hsts > 0 and proxy_header == ["HTTP_X_FORWARDED_PROTO", "https"] and hosts == ["*"]


def test_bin_dyno_serves_plain_http_to_loopback_names_only(fresh_settings):
    """bin/dyno sets DJANGO_LOCAL_HTTP: a browser on http://127.0.0.1 works; any other Host gets 400."""
    redirect, session_secure, csrf_secure, hsts, proxy_header, hosts = fresh_settings(
        HTTPS, **PRODUCTION, DJANGO_LOCAL_HTTP="true"
    )
    assert (redirect, session_secure, csrf_secure, hsts, proxy_header) == (False, False, False, 0, None)
    assert hosts == [".localhost", "127.0.0.1", "[::1]"]
    debug, _, _ = fresh_settings(SUMMARY, **PRODUCTION, DJANGO_LOCAL_HTTP="true")
    assert debug is False  # still production settings otherwise


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, [3600, True, False]),
        ({"DJANGO_SECURE_HSTS_SECONDS": "31536000"}, [31536000, True, True]),
        ({"DJANGO_SECURE_HSTS_SECONDS": "31536000", "DJANGO_SECURE_HSTS_PRELOAD": "false"}, [31536000, True, False]),
        (
            {"DJANGO_SECURE_HSTS_SECONDS": "31536000", "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "no"},
            [31536000, False, False],
        ),
    ],
)
def test_hsts_preload_follows_the_max_age(fresh_settings, variables, expected):
    summary = "[settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, settings.SECURE_HSTS_PRELOAD]"
    assert fresh_settings(summary, **PRODUCTION, **variables) == expected


def test_hsts_preload_with_a_short_max_age_is_refused(fresh_settings):
    with pytest.raises(AssertionError, match="DJANGO_SECURE_HSTS_PRELOAD is on with DJANGO_SECURE_HSTS_SECONDS=3600"):
        fresh_settings("settings.SECURE_HSTS_PRELOAD", **PRODUCTION, DJANGO_SECURE_HSTS_PRELOAD="true")


@pytest.mark.parametrize(
    ("variables", "expected"),
    [({}, ""), ({"DYNO": "web.1"}, "25s"), ({"DATABASE_STATEMENT_TIMEOUT": "500ms"}, "500ms")],
)
def test_statement_timeout(fresh_settings, variables, expected):
    environment = {**PRODUCTION, **variables} if "DYNO" in variables else variables
    assert fresh_settings("settings.DATABASE_STATEMENT_TIMEOUT", **environment) == expected


@pytest.mark.parametrize("value", ["25", "25 s", "1h", "25s; DROP TABLE x"])
def test_statement_timeout_refuses_what_postgresql_would_not_take(fresh_settings, value):
    accepted = value == "25"  # plain milliseconds are fine
    if accepted:
        assert fresh_settings("settings.DATABASE_STATEMENT_TIMEOUT", DATABASE_STATEMENT_TIMEOUT=value) == value
    else:
        with pytest.raises(AssertionError, match="DATABASE_STATEMENT_TIMEOUT"):
            fresh_settings("settings.DATABASE_STATEMENT_TIMEOUT", DATABASE_STATEMENT_TIMEOUT=value)
