from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection
from django.urls import reverse
from django.utils.html import escape

from heroku_runtime import pgbouncer, probe, views
from heroku_runtime.context_processors import PROJECT_NAME

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
    assert '<tr><th scope="row">total_xact_count</th><td>7</td><td>1</td></tr>' in html
    assert '<tr><th scope="row">cl_waiting</th><td>0</td></tr>' in html


PGBOUNCER = {"HOST": "127.0.0.1", "PORT": 6000, "NAME": "db1"}  # what bin/start-pgbouncer points Django at
DIRECT = {"HOST": "ec2.example.com", "PORT": 5432, "NAME": "d1"}


def test_the_project_name_titles_pages(rf):
    from django.template.loader import render_to_string

    html = render_to_string("heroku_runtime/base.html", request=rf.get("/"))
    assert f"<title>{escape(PROJECT_NAME)}</title>" in html


@pytest.mark.parametrize(
    ("meta", "vendor", "address", "expected"),
    [
        ({"SERVER_SOFTWARE": "WSGIServer/0.2 CPython/3.13.1"}, "sqlite", {}, "runserver → SQLite"),
        ({"SERVER_SOFTWARE": "gunicorn/27.0.1"}, "postgresql", PGBOUNCER, "nginx → gunicorn "),
        (
            {"SERVER_SOFTWARE": None, "waitress.client_disconnected": lambda: False},
            "postgresql",
            DIRECT,
            "nginx → waitress ",
        ),
        ({"uwsgi.version": b"2.0.31"}, "postgresql", PGBOUNCER, "nginx → uWSGI "),
        ({}, "postgresql", DIRECT, "a WSGI server → PostgreSQL"),
    ],
)
def test_the_stack_that_serves_the_page_is_named(rf, meta, vendor, address, expected):
    from django.db import connections

    from heroku_runtime.context_processors import serving_stack

    default = connections["default"]
    with mock.patch.object(default, "vendor", vendor), mock.patch.dict(default.settings_dict, address):
        stack = serving_stack(rf.get("/", **meta))
    # The server's version, when it is installed here (each bake installs only its own server).
    assert stack.startswith(expected) or stack.startswith(expected.rstrip() + " →"), stack
    if address is PGBOUNCER:
        assert stack.endswith(" → PgBouncer → PostgreSQL"), stack
    elif vendor == "postgresql":
        assert stack.endswith(" → PostgreSQL") and "PgBouncer" not in stack, stack
