"""S3 media storage, configured against a fake bucket: nothing here touches the network."""

import pytest

FAKE_BUCKET = {
    "AWS_STORAGE_BUCKET_NAME": "fake-bucket",
    "AWS_S3_REGION_NAME": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE",
    "AWS_SECRET_ACCESS_KEY": "fake-secret",
}
STORAGE_SUMMARY = (
    "(lambda s: [type(s['default']).__name__, s['default'].bucket_name, s['default'].url('uploads/a b.txt'), "
    "type(s['staticfiles']).__name__])(__import__('django.core.files.storage', fromlist=['storages']).storages)"
)


def test_media_goes_to_the_bucket_and_static_stays_with_whitenoise(fresh_settings):
    backend, bucket, url, static_backend = fresh_settings(STORAGE_SUMMARY, **FAKE_BUCKET)
    assert (backend, bucket) == ("S3Storage", "fake-bucket")
    assert url.startswith("https://fake-bucket.s3.") and "uploads/a%20b.txt" in url
    assert "X-Amz-Signature=" in url, "private objects need signed URLs"
    assert static_backend == "CompressedManifestStaticFilesStorage"


def test_local_media_without_a_bucket(fresh_settings):
    backend = fresh_settings("settings.STORAGES['default']['BACKEND']")
    assert backend == "django.core.files.storage.FileSystemStorage"


def test_heroku_refuses_to_start_without_the_bucket(fresh_settings):
    with pytest.raises(AssertionError, match="AWS_STORAGE_BUCKET_NAME is not set"):
        fresh_settings("settings.STORAGES", DYNO="web.1", DJANGO_SECRET_KEY="x" * 64)
