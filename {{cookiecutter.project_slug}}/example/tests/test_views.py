import re
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connections
from django.urls import reverse
from django.utils.html import escape

from example import views
from example.models import ExampleResult

pytestmark = pytest.mark.django_db

PGBOUNCER = {"HOST": "127.0.0.1", "PORT": 6000, "NAME": "db1"}  # what bin/start-pgbouncer points Django at
DIRECT = {"HOST": "ec2.example.com", "PORT": 5432, "NAME": "d1"}


def test_index_answers(client, settings):
    ExampleResult.objects.create(key="shown", digest="d" * 64)
    response = client.get(reverse("index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "It works" in html and "<code>shown</code>" in html
    # Which stack served it: off a dyno, Django's own, down to the tests' database (SQLite, or PostgreSQL
    # straight or through PgBouncer, as CI runs them).
    database = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[connections["default"].vendor]
    assert re.search(rf"Served by Django → (PgBouncer → )?{database}\.", html), html
    assert f"<title>{escape(settings.PROJECT_NAME)}</title>" in html


@pytest.mark.parametrize(
    ("dyno", "vendor", "address", "expected"),
    [
        (None, "sqlite", {}, "Django → SQLite"),
        ("web.1", "postgresql", PGBOUNCER, f"nginx → {views.WEB_DYNO_SERVERS[1]} → PgBouncer → PostgreSQL"),
        ("web.1", "postgresql", DIRECT, f"nginx → {views.WEB_DYNO_SERVERS[1]} → PostgreSQL"),
        # `heroku run` and the release phase serve no page through nginx.
        ("run.1234", "postgresql", DIRECT, "Django → PostgreSQL"),
    ],
)
def test_the_stack_that_serves_the_page_is_named(monkeypatch, dyno, vendor, address, expected):
    if dyno:
        monkeypatch.setenv("DYNO", dyno)
    else:
        monkeypatch.delenv("DYNO", raising=False)
    default = connections["default"]
    with mock.patch.object(default, "vendor", vendor), mock.patch.dict(default.settings_dict, address):
        assert views.serving_stack() == expected


def test_the_count_is_never_below_the_results_listed(client):
    cache.clear()
    client.get(reverse("index"))  # caches the count: 0
    ExampleResult.objects.create(key="after-the-count", digest="d" * 64)
    html = client.get(reverse("index")).content.decode()
    assert "<code>after-the-count</code>" in html and " 1 example result stored." in html


def test_results_are_in_the_admin(admin_client):
    ExampleResult.objects.create(key="in-the-admin", digest="d" * 64)
    response = admin_client.get(reverse("admin:example_exampleresult_changelist"))
    assert response.status_code == 200 and "in-the-admin" in response.content.decode()
