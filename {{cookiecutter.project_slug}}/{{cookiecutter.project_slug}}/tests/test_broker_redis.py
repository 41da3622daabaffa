import pytest


def test_tasks_go_through_redis(fresh_settings):
    cluster = fresh_settings("settings.Q_CLUSTER", REDIS_URL="rediss://:secret@example.invalid:6380")
    assert cluster["redis"] == (
        "rediss://:secret@example.invalid:6380?socket_connect_timeout=2&socket_timeout=2&ssl_cert_reqs=none"
    )
    assert "orm" not in cluster


def test_a_reply_timeout_below_the_workers_wait_is_refused(fresh_settings):
    with pytest.raises(AssertionError, match="REDIS_TIMEOUT must be at least 1.5 s"):
        fresh_settings("settings.Q_CLUSTER", REDIS_URL="redis://h:1/0", REDIS_TIMEOUT="1")


def test_heroku_refuses_to_start_without_redis(fresh_settings):
    with pytest.raises(AssertionError, match="REDIS_URL is not set"):
        # With a bucket, in case the S3 media option (also required on Heroku) is baked too.
        fresh_settings("settings.Q_CLUSTER", DYNO="worker.1", DJANGO_SECRET_KEY="x" * 64, AWS_STORAGE_BUCKET_NAME="b")
