from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection
from django.urls import reverse
from django.utils.html import escape

from heroku_runtime import pgbouncer, probe, views

pytestmark = pytest.mark.django_db


def test_health_runs_a_query(client):
    with mock.patch("heroku_runtime.probe.database_answers", wraps=probe.database_answers) as check:
        response = client.get(reverse("health"))
    check.assert_called_once_with(views.HEALTH_TIMEOUT)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": connection.vendor}


def test_health_is_503_when_the_database_fails(client):
    with mock.patch("heroku_runtime.probe.database_answers", side_effect=OperationalError("gone")):
        response = client.get(reverse("health"))
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_health_is_503_when_the_database_is_too_slow(client):
    with mock.patch("heroku_runtime.probe.database_answers", side_effect=TimeoutError("no answer within 3 s")):
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
    # The page is titled with its name; the base template's default is the project's name, escaped as HTML.
    assert "<title>PgBouncer</title>" in response.content.decode()


def test_pgbouncer_tables_are_turned_on_their_side(client, monkeypatch):
    rows = {
        "STATS": [{"database": "db1", "total_xact_count": 7}, {"database": "pgbouncer", "total_xact_count": 1}],
        "POOLS": [{"database": "db1", "user": "u", "cl_waiting": 0}],
    }
    monkeypatch.setattr(pgbouncer, "show", rows.__getitem__)
    client.force_login(get_user_model().objects.create_user("staff", password="not-used-here", is_staff=True))
    html = client.get(reverse("pgbouncer_stats")).content.decode()
    assert '<tr><th scope="row">total_<wbr>xact_<wbr>count</th><td>7</td><td>1</td></tr>' in html
    assert '<tr><th scope="row">cl_<wbr>waiting</th><td>0</td></tr>' in html


def test_the_home_page_until_the_project_has_its_own(client, settings):
    """What / answers once example/ is gone: the welcome page, titled with the project's name."""
    settings.ROOT_URLCONF = "heroku_runtime.tests.urls_without_a_home"
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200, html
    assert f"<title>{escape(settings.PROJECT_NAME)}</title>" in html
    assert "nothing of yours answers this address yet" in html
    assert "<code>heroku_runtime/tests/urls_without_a_home.py</code>" in html
