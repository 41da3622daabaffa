from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection
from django.urls import reverse
from django.utils.html import escape

from core import pgbouncer, views
from core.context_processors import PROJECT_NAME

pytestmark = pytest.mark.django_db


def test_index_answers(client):
    response = client.get(reverse("index"))
    assert response.status_code == 200
    assert b"It works" in response.content
    # The page is titled with the project's name, escaped as HTML.
    assert f"<title>{escape(PROJECT_NAME)}</title>" in response.content.decode()


def test_health_runs_a_query(client):
    with mock.patch("core.views._database_answers", wraps=views._database_answers) as check:
        response = client.get(reverse("health"))
    check.assert_called_once_with(views.HEALTH_TIMEOUT)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": connection.vendor}


def test_health_is_503_when_the_database_fails(client):
    with mock.patch("core.views._database_answers", side_effect=OperationalError("gone")):
        response = client.get(reverse("health"))
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_health_is_503_when_the_database_is_too_slow(client):
    with mock.patch("core.views._database_answers", side_effect=TimeoutError("no answer within 3 s")):
        response = client.get(reverse("health"))
    assert response.status_code == 503


def test_pgbouncer_page_needs_staff(client):
    response = client.get(reverse("pgbouncer_stats"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_pgbouncer_page_explains_when_pgbouncer_is_absent(client, tmp_path, monkeypatch):
    monkeypatch.setattr(pgbouncer, "SOCKET_DIR", str(tmp_path))
    staff = get_user_model().objects.create_user("staff", password="not-used-here", is_staff=True)
    client.force_login(staff)
    response = client.get(reverse("pgbouncer_stats"))
    assert response.status_code == 200
    assert b"PgBouncer is not running" in response.content
