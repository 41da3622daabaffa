def test_cache_on_heroku_key_value_store(fresh_settings):
    cache = fresh_settings("settings.CACHES['default']", REDIS_URL="rediss://:secret@example.invalid:6380")
    assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    # Heroku Key-Value Store's certificate is self-signed.
    assert cache["LOCATION"] == "rediss://:secret@example.invalid:6380?ssl_cert_reqs=none"


def test_local_memory_cache_without_redis(fresh_settings):
    backend = fresh_settings("settings.CACHES['default']['BACKEND']")
    assert backend == "django.core.cache.backends.locmem.LocMemCache"
