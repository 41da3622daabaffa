"""The one HSTS policy that Django (settings.py) and nginx (config/nginx.conf.erb runs hsts.py) both send."""

import subprocess
import sys

import pytest

from heroku_runtime import hsts


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "max-age=3600; includeSubDomains"),
        ({"DJANGO_SECURE_HSTS_SECONDS": "31536000"}, "max-age=31536000; includeSubDomains; preload"),
        (
            {"DJANGO_SECURE_HSTS_SECONDS": "31536000", "DJANGO_SECURE_HSTS_PRELOAD": "no"},
            "max-age=31536000; includeSubDomains",
        ),
        (
            {"DJANGO_SECURE_HSTS_SECONDS": "63072000", "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "off"},
            "max-age=63072000",
        ),
        ({"DJANGO_SECURE_HSTS_SECONDS": "0"}, ""),
        ({"DJANGO_LOCAL_HTTP": "true"}, ""),
    ],
)
def test_the_header_follows_the_config_vars(environ, expected):
    assert hsts.header(environ) == expected


def test_preload_needs_a_year_and_subdomains():
    with pytest.raises(ValueError, match="at least 31536000"):
        hsts.policy({"DJANGO_SECURE_HSTS_PRELOAD": "true"})


def test_nginx_runs_it_as_a_script():
    environ = {"PATH": "/usr/bin:/bin", "DJANGO_SECURE_HSTS_SECONDS": "7200"}
    script = subprocess.run([sys.executable, hsts.__file__], env=environ, capture_output=True, text=True, timeout=30)
    assert script.returncode == 0 and script.stdout == "max-age=7200; includeSubDomains\n", script
    environ["DJANGO_SECURE_HSTS_PRELOAD"] = "true"
    refused = subprocess.run([sys.executable, hsts.__file__], env=environ, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "DJANGO_SECURE_HSTS_PRELOAD" in refused.stderr
