"""
Django settings for {{ cookiecutter.project_slug }}, read from the environment.

Every variable this module reads is listed in README.md ("Environment variables"). Locally, with no
environment at all, the project runs on SQLite with DEBUG on; on Heroku (DYNO is set) it refuses to
start without DJANGO_SECRET_KEY.

https://docs.djangoproject.com/en/5.2/topics/settings/
https://devcenter.heroku.com/articles/django-app-configuration
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# DYNO is set on every Heroku dyno but not during the build, so collectstatic at build time runs with the
# local defaults. Heroku CI sets CI and runs the tests with the local defaults too.
IS_HEROKU_APP = "DYNO" in os.environ and "CI" not in os.environ


def env_bool(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=()):
    value = os.environ.get(name, "")
    return [item.strip() for item in value.split(",") if item.strip()] or list(default)
{% if cookiecutter.cache == "redis" or (cookiecutter.use_worker and cookiecutter.task_broker == "redis") %}


def redis_url(name):
    """Heroku Key-Value Store serves TLS (rediss://) with a self-signed certificate: don't verify it."""
    url = os.environ.get(name, "")
    if url.startswith("rediss://") and "ssl_cert_reqs" not in url:
        url += ("&" if "?" in url else "?") + "ssl_cert_reqs=none"
    return url
{% endif %}


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
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["*"] if IS_HEROKU_APP else [".localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "core",
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
                "core.context_processors.project",
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

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DJANGO_CONN_MAX_AGE", "0" if PGBOUNCER_POOL_MODE == "session" else "600")),
        # A connection broken by a database restart is replaced at the next request instead of failing it.
        conn_health_checks=True,
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
{% if cookiecutter.use_s3_media %}

# Uploaded media files on S3: a dyno's filesystem is thrown away at every restart and not shared
# between dynos. Static files stay with WhiteNoise. Credentials come from AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY, which boto3 reads from the environment itself.
# https://django-storages.readthedocs.io/en/latest/backends/amazon-S3.html
MEDIA_URL = "media/"
MEDIA_ROOT = BASE_DIR / "media"
AWS_STORAGE_BUCKET_NAME = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
if AWS_STORAGE_BUCKET_NAME:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "custom_domain": os.environ.get("AWS_S3_CUSTOM_DOMAIN") or None,
            # Private objects served through signed, expiring URLs; uploads never overwrite each other.
            "default_acl": None,
            "querystring_auth": True,
            # Regions opened since 2014 accept only Signature Version 4.
            "signature_version": "s3v4",
            "file_overwrite": False,
        },
    }
elif IS_HEROKU_APP:
    raise ImproperlyConfigured("AWS_STORAGE_BUCKET_NAME is not set: uploaded files would vanish at the next restart.")
{% endif %}
{% if cookiecutter.cache == "redis" %}

# Cache on Heroku Key-Value Store (`heroku addons:create heroku-redis`, which sets REDIS_URL); Django's
# per-process memory cache when it is unset. https://docs.djangoproject.com/en/5.2/topics/cache/#redis
if os.environ.get("REDIS_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url("REDIS_URL")}}
{% elif cookiecutter.cache == "memcached" %}

# Cache on MemCachier (`heroku addons:create memcachier`, which sets MEMCACHIER_*); Django's per-process
# memory cache when it is unset. MemCachier needs SASL authentication, which django-bmemcached speaks.
# https://devcenter.heroku.com/articles/memcachier#django
if os.environ.get("MEMCACHIER_SERVERS"):
    CACHES = {
        "default": {
            "BACKEND": "django_bmemcached.memcached.BMemcached",
            "LOCATION": env_list("MEMCACHIER_SERVERS"),
            "OPTIONS": {
                "username": os.environ.get("MEMCACHIER_USERNAME", ""),
                "password": os.environ.get("MEMCACHIER_PASSWORD", ""),
            },
        }
    }
{% endif %}

# HTTPS. Heroku's router terminates TLS and always sets X-Forwarded-Proto, overwriting whatever the client
# sent, and nginx passes it on; so on Heroku the header can be trusted. /health/ stays reachable over
# plain HTTP for uptime checks.
if IS_HEROKU_APP:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Start low and raise it once every subdomain serves HTTPS: browsers remember it for this long.
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "3600"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)

# Logging to stdout, where Heroku's log router (and `heroku logs --tail`) collects it.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "{levelname} {name}: {message}", "style": "{"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}
{% if cookiecutter.use_worker %}

{% if cookiecutter.task_broker == "redis" %}
# django-q2 worker (`python manage.py qcluster`), with the Redis broker on Heroku Key-Value Store
# (REDIS_URL): fast, but a task is removed from Redis when a worker takes it, so a task in flight when
# the worker dies (a deploy's SIGKILL, a crash) is lost: at most once. Results still go to PostgreSQL.
# https://django-q2.readthedocs.io/en/master/brokers.html#redis
if IS_HEROKU_APP and not os.environ.get("REDIS_URL"):
    raise ImproperlyConfigured("REDIS_URL is not set: the django-q2 broker needs Heroku Key-Value Store.")
Q_CLUSTER = {
    "name": "{{ cookiecutter.project_slug }}",
    "redis": redis_url("REDIS_URL") or "redis://127.0.0.1:6379/0",
{% else %}
# django-q2 worker (`python manage.py qcluster`), with the ORM broker: tasks live in PostgreSQL, so a
# task is redelivered after `retry` seconds unless it was acknowledged; delivery is at least once.
# `timeout` must stay below `retry`, or a slow task is redelivered while it still runs.
# https://django-q2.readthedocs.io/en/master/configure.html
Q_CLUSTER = {
    "name": "{{ cookiecutter.project_slug }}",
    "orm": "default",
{% endif %}
    "workers": int(os.environ.get("Q_WORKERS", "2")),
    # Fetch no more tasks ahead than there are workers: a task fetched but not started when the dyno
    # stops waits for redelivery{% if cookiecutter.task_broker == "orm" %} (Q_RETRY seconds){% endif %}.
    "queue_limit": int(os.environ.get("Q_WORKERS", "2")),
    "timeout": int(os.environ.get("Q_TIMEOUT", "60")),
    "retry": int(os.environ.get("Q_RETRY", "90")),
    "max_attempts": int(os.environ.get("Q_MAX_ATTEMPTS", "5")),
    "ack_failures": True,
    "catch_up": False,
    "poll": float(os.environ.get("Q_POLL", "1")),
    # Run tasks in-process, without a cluster, in tests and in local scripts that ask for it.
    "sync": env_bool("Q_SYNC", False),
}
if Q_CLUSTER["timeout"] >= Q_CLUSTER["retry"]:
    raise ImproperlyConfigured("Q_TIMEOUT must be lower than Q_RETRY, or running tasks are delivered twice.")
{% endif %}
