"""Uploaded media files on S3: a dyno's filesystem is thrown away at every restart and not shared between
dynos. Static files stay with WhiteNoise. Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
which boto3 reads from the environment itself. See docs/s3-media.md.
https://django-storages.readthedocs.io/en/latest/backends/amazon-S3.html
"""

import os
from pathlib import Path

from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

from .env import IS_HEROKU_APP, env_seconds

MEDIA_URL = "media/"
MEDIA_ROOT = Path(__file__).resolve().parent.parent / "media"
AWS_STORAGE_BUCKET_NAME = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
if AWS_STORAGE_BUCKET_NAME:
    timeout = env_seconds("AWS_S3_TIMEOUT", "3")
    MEDIA_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "custom_domain": os.environ.get("AWS_S3_CUSTOM_DOMAIN") or None,
            # Private objects served through signed, expiring URLs; uploads never overwrite each other.
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
            # botocore's defaults (60 s to connect, 60 s per read, up to 5 attempts) would hold an upload
            # past the router's 30 s on an endpoint that is down or hung: AWS_S3_TIMEOUT per connect and
            # per read, one attempt; the call then raises botocore's ConnectTimeoutError or
            # ReadTimeoutError (see docs/s3-media.md). Regions opened since 2014 accept only Signature
            # Version 4 (given here: django-storages ignores its own signature_version with a client_config).
            "client_config": Config(
                signature_version="s3v4",
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"mode": "standard", "total_max_attempts": 1},
            ),
        },
    }
elif IS_HEROKU_APP:
    raise ImproperlyConfigured("AWS_STORAGE_BUCKET_NAME is not set: uploaded files would vanish at the next restart.")
else:
    # Locally, uploads go to MEDIA_ROOT.
    MEDIA_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
