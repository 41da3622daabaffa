import pytest


def test_cache_on_heroku_key_value_store(fresh_settings):
    cache = fresh_settings("settings.CACHES['default']", REDIS_URL="rediss://:secret@example.invalid:6380")
    assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    # REDIS_TIMEOUT's default for connecting and for each reply; Heroku Key-Value Store's certificate is self-signed.
    assert cache["LOCATION"] == (
        "rediss://:secret@example.invalid:6380?socket_connect_timeout=2&socket_timeout=2&ssl_cert_reqs=none"
    )


def test_redis_timeout_is_read_and_checked(fresh_settings):
    location = fresh_settings("settings.CACHES['default']['LOCATION']", REDIS_URL="redis://h:1/0", REDIS_TIMEOUT="2.5")
    assert location == "redis://h:1/0?socket_connect_timeout=2.5&socket_timeout=2.5"
    with pytest.raises(AssertionError, match="REDIS_TIMEOUT='soon': give a number of seconds"):
        fresh_settings("settings.CACHES", REDIS_URL="redis://h:1/0", REDIS_TIMEOUT="soon")


def test_local_memory_cache_without_redis(fresh_settings):
    backend = fresh_settings("settings.CACHES['default']['BACKEND']")
    assert backend == "django.core.cache.backends.locmem.LocMemCache"
