"""
Django settings for {{ cookiecutter.project_slug }}, read from the environment.

Every variable this module reads is listed in README.md ("Config vars"). Locally, with no
environment at all, the project runs on SQLite with DEBUG on; on Heroku (DYNO is set) it refuses to
start without DJANGO_SECRET_KEY.

https://docs.djangoproject.com/en/5.2/topics/settings/
https://devcenter.heroku.com/articles/django-app-configuration
"""

import json
import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from heroku_runtime import hsts
from heroku_runtime.pgbouncer import LOCAL_POOL_URL

# IS_HEROKU_APP is a setting too (an upper-case name here): heroku_runtime's checks read it.
from .env import IS_HEROKU_APP, env_addresses, env_bool, env_list

BASE_DIR = Path(__file__).resolve().parent.parent

# The project's name as baked (tojson keeps any quote or backslash in it as data): pages are titled with it.
PROJECT_NAME = json.loads(r'''{{ cookiecutter.project_name | tojson }}''')

# bin/dyno runs the dyno on your machine, where no router terminates TLS, and sets DJANGO_LOCAL_HTTP so that
# a browser can use it over plain http: no https redirect, no Secure cookies, no HSTS, and only loopback
# host names, so that a Heroku app that had it set by mistake would answer 400, not serve plain http.
LOCAL_HTTP = IS_HEROKU_APP and env_bool("DJANGO_LOCAL_HTTP", False)

# SECURITY WARNING: keep the secret key used in production secret!
# app.json generates one for the Deploy Button; `heroku config:set DJANGO_SECRET_KEY=...` otherwise.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "").strip()
if not SECRET_KEY:
    if IS_HEROKU_APP:
        raise ImproperlyConfigured(
            'DJANGO_SECRET_KEY is not set. Set it with: heroku config:set DJANGO_SECRET_KEY="$(openssl rand -hex 32)"'
        )
    SECRET_KEY = "django-insecure-local-development-only-never-used-on-heroku"  # noqa: S105

# SECURITY WARNING: don't run with debug turned on in production!
DEBUG = env_bool("DJANGO_DEBUG", default=not IS_HEROKU_APP)

# On Heroku, it's safe to use a wildcard for ALLOWED_HOSTS, since the Heroku router performs validation of
# the Host header in the incoming HTTP request. Locally only loopback names are allowed.
# https://docs.djangoproject.com/en/5.2/ref/settings/#std-setting-ALLOWED_HOSTS
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["*"] if IS_HEROKU_APP and not LOCAL_HTTP else [".localhost", "127.0.0.1", "[::1]"]
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
{% if cookiecutter.use_worker %}
    # The Heroku runtime layer (heroku_runtime/). First on purpose: Django takes a management command from the
    # first app that has one, and its qcluster replaces django_q's so that the worker stops cleanly on
    # Heroku's SIGTERM (heroku_runtime/management/commands/qcluster.py; a test in the app checks the order).
{% else %}
    # The Heroku runtime layer (heroku_runtime/): /health/, PgBouncer, the 503 middleware, the statement timeout.
{% endif %}
    "heroku_runtime",
    "example",  # your starting point: delete this line, example/ and its line in urls.py to drop it
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles, so that runserver serves static files the way production does.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
{% if cookiecutter.use_worker %}
    "django_q",
{% endif %}
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Straight after SecurityMiddleware: https://whitenoise.readthedocs.io/en/stable/django.html
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # 503 with Retry-After, fast, while the database can't be reached (heroku_runtime/middleware.py).
    "heroku_runtime.middleware.DatabaseUnavailableMiddleware",
    # The same for Redis or S3 unreachable in a view that does not catch it (heroku_runtime/middleware.py).
    "heroku_runtime.middleware.AddonUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "{{ cookiecutter.project_slug }}.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "{{ cookiecutter.project_slug }}.wsgi.application"

# Database
# https://docs.djangoproject.com/en/5.2/ref/settings/#databases
# On a dyno, bin/start-pgbouncer rewrites DATABASE_URL to PgBouncer on 127.0.0.1:6000 before Django
# starts. That hop never leaves the dyno, so no sslmode is forced here: PgBouncer does TLS to Heroku
# Postgres. The release phase runs outside PgBouncer and gets libpq's default sslmode=prefer.
PGBOUNCER_POOL_MODE = os.environ.get("PGBOUNCER_POOL_MODE", "{{ cookiecutter.pgbouncer_pool_mode }}")
# Connections to the local PgBouncer are cheap. In transaction mode Django keeps its connection, and
# PgBouncer lends a server connection only for each transaction. In session mode a kept connection would
# hold a server connection for good, so Django closes it after each request and the pool stays shared.

# Set but empty is a mistake (dj-database-url would give Django no ENGINE); unset means SQLite locally.
if "DATABASE_URL" in os.environ and not os.environ["DATABASE_URL"].strip():
    raise ImproperlyConfigured(
        "DATABASE_URL is set but empty: unset it to use SQLite on your machine, or give the database's URL, "
        "e.g. postgres://user:password@127.0.0.1:5432/app"
    )
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DJANGO_CONN_MAX_AGE", "0" if PGBOUNCER_POOL_MODE == "session" else "600")),
        # Straight to PostgreSQL (runserver, the release phase, `heroku run`), a connection broken by a database
        # restart is replaced at the next request instead of failing it. Behind the dyno's PgBouncer the kept
        # connection is to PgBouncer, which lives and dies with the dyno and checks its own server connections
        # before reusing them (server_check_query); Django's check would be one more round trip through it per
        # request, and one more wait in its queue when the pool is starved.
        # https://docs.djangoproject.com/en/5.2/ref/databases/#persistent-database-connections
        # https://www.pgbouncer.org/config.html#server_check_delay
        conn_health_checks=not LOCAL_POOL_URL.search(os.environ.get("DATABASE_URL", "")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Fail fast when PostgreSQL or PgBouncer is unreachable instead of hanging past the router's 30 s.
    DATABASES["default"]["OPTIONS"] = {"connect_timeout": int(os.environ.get("DATABASE_CONNECT_TIMEOUT", "5"))}
    if PGBOUNCER_POOL_MODE == "transaction":
        # In transaction mode consecutive transactions may run on different server connections, so a
        # cursor declared in one is gone in the next, and prepared statements would hit the wrong backend.
        # https://docs.djangoproject.com/en/5.2/ref/databases/#transaction-pooling-server-side-cursors
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None

# PostgreSQL cancels any statement that runs longer than this, so that a query stuck behind a lock fails
# the request (a 500 page) before Heroku's router gives up on it at 30 s and before the WSGI server's own
# timeout (28 s), instead of keeping a server connection and a worker busy long after the client left.
# PgBouncer can't pass it per connection (it refuses startup options), so the release phase's migrate sets
# it as the role's default in the database (heroku_runtime/statement_timeout.py): it holds for every server
# connection PgBouncer opens, in both pool modes. "" or 0: no timeout. Values: 25s, 500ms, 2min.
DATABASE_STATEMENT_TIMEOUT = os.environ.get("DATABASE_STATEMENT_TIMEOUT", "25s" if IS_HEROKU_APP else "").strip()
if not re.fullmatch(r"(\d+(ms|s|min)?)?", DATABASE_STATEMENT_TIMEOUT):
    raise ImproperlyConfigured(
        f"DATABASE_STATEMENT_TIMEOUT={DATABASE_STATEMENT_TIMEOUT!r}: give a duration such as 25s, 500ms or 2min "
        "(0 or empty: no timeout)."
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Password validation
# https://docs.djangoproject.com/en/5.2/ref/settings/#auth-password-validators
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Internationalization
# https://docs.djangoproject.com/en/5.2/topics/i18n/
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files, served by WhiteNoise with far-future cache headers for the hashed names.
# Heroku's Python buildpack runs collectstatic at build time, before any add-on is reachable.
# https://docs.djangoproject.com/en/5.2/howto/static-files/
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_KEEP_ONLY_HASHED_FILES = True

# HTTPS. Heroku's router terminates TLS and always sets X-Forwarded-Proto, overwriting whatever the client
# sent, and nginx passes it on; so on Heroku the header can be trusted. /health/ stays reachable over
# plain HTTP for uptime checks.
if IS_HEROKU_APP and not LOCAL_HTTP:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # The policy and its defaults: heroku_runtime/hsts.py, which config/nginx.conf.erb runs too.
    try:
        SECURE_HSTS_SECONDS, SECURE_HSTS_INCLUDE_SUBDOMAINS, SECURE_HSTS_PRELOAD = hsts.policy()
    except ValueError as error:
        raise ImproperlyConfigured(str(error)) from None
    if not SECURE_HSTS_PRELOAD:
        # check --deploy's "you have not set SECURE_HSTS_PRELOAD": off on purpose until the max-age allows it.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Email: password resets, and Django's error reports to ADMINS (every 500 with DEBUG off).
# https://docs.djangoproject.com/en/5.2/topics/email/
# Email providers (Mailgun, a Heroku add-on; Postmark; SendGrid...) all take SMTP with a user and password;
# docs/email.md says which values go where. One variable per setting, not one EMAIL_URL: providers' passwords
# and API keys hold characters (/ + = @) that a URL needs percent-encoded, while each value here is pasted as is.
_email_host = os.environ.get("EMAIL_HOST", "").strip()
if _email_host:
    EMAIL_HOST = _email_host
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    # Encrypted unless turned off: STARTTLS on 587 (and 25, 2525), TLS from the first byte on 465.
    _email_tls = env_bool("EMAIL_USE_TLS", True)
    EMAIL_USE_SSL = _email_tls and EMAIL_PORT == 465
    EMAIL_USE_TLS = _email_tls and not EMAIL_USE_SSL
    # Django's default waits forever on a server that doesn't answer, past the router's 30 s.
    EMAIL_TIMEOUT = 10
elif not IS_HEROKU_APP or LOCAL_HTTP:
    # On your machine, messages are printed where the server logs instead of sent. Not on a dyno, where a
    # password-reset link in the logs would reach every log drain: there Django's default (SMTP on localhost,
    # which a dyno doesn't have) fails the send, and heroku_runtime/checks.py warns at every deploy.
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
# The sender's domain must be one your email provider has verified, or it refuses the message.
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "").strip() or "webmaster@localhost"
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", "").strip() or DEFAULT_FROM_EMAIL
# Who gets the error reports: "Ada <ada@example.com>, ops@example.com". None: no reports.
ADMINS = env_addresses("ADMINS")

# Logging to stdout, where Heroku's log router (and `heroku logs --tail`) collects it.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "{levelname} {name}: {message}", "style": "{"}},
    "filters": {"require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "django.utils.log.AdminEmailHandler",
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    # Django's default "django" logger also prints to a console of its own when DEBUG is on, so each of its
    # lines (a 404's "Not Found") showed twice; here it keeps only the error reports and propagates to root's.
    # https://docs.djangoproject.com/en/5.2/ref/logging/#default-logging-configuration
    "loggers": {"django": {"handlers": ["mail_admins"], "level": "INFO"}},
}

# Settings of the options chosen when baking, if any: each has a module of its own beside this one (and a
# file in docs/); the post-generation hook removed the modules of the options not chosen.
{% if cookiecutter.cache != "none" %}
from .cache_{{ cookiecutter.cache }} import CACHES  # noqa: E402, F401
{% endif %}
{% if cookiecutter.use_s3_media %}
from .media_s3 import AWS_STORAGE_BUCKET_NAME, MEDIA_ROOT, MEDIA_STORAGE, MEDIA_URL  # noqa: E402, F401

STORAGES["default"] = MEDIA_STORAGE
{% endif %}
{% if cookiecutter.use_worker %}
from .worker import Q_CLUSTER  # noqa: E402, F401
{% endif %}
