MEMCACHIER = {
    "MEMCACHIER_SERVERS": "mc1.example.invalid:11211,mc2.example.invalid:11211",
    "MEMCACHIER_USERNAME": "user",
    "MEMCACHIER_PASSWORD": "secret",
}


def test_cache_on_memcachier(fresh_settings):
    cache = fresh_settings("settings.CACHES['default']", **MEMCACHIER)
    assert cache["BACKEND"] == "django_bmemcached.memcached.BMemcached"
    assert cache["LOCATION"] == ["mc1.example.invalid:11211", "mc2.example.invalid:11211"]
    assert cache["OPTIONS"] == {"username": "user", "password": "secret", "socket_timeout": 0.5}


def test_local_memory_cache_without_memcachier(fresh_settings):
    backend = fresh_settings("settings.CACHES['default']['BACKEND']")
    assert backend == "django.core.cache.backends.locmem.LocMemCache"
