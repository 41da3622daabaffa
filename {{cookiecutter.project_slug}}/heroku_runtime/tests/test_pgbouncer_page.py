"""The PgBouncer page as a person reads it: what matters first, every figure with its unit, a way back."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from heroku_runtime import pgbouncer

pytestmark = pytest.mark.django_db

ROWS = {
    "STATS": [
        {"database": "db1", "total_xact_count": 7, "total_wait_time": 2500, "avg_wait_time": 1500, "avg_recv": 9},
        {"database": "pgbouncer", "total_xact_count": 1, "total_wait_time": 0, "avg_wait_time": 0, "avg_recv": 0},
    ],
    "POOLS": [
        {"database": "db1", "user": "app", "cl_waiting": 3, "sv_active": 5, "maxwait": 1, "maxwait_us": 250000},
        {"database": "pgbouncer", "user": "pgbouncer", "cl_waiting": 0, "sv_active": 0, "maxwait": 9, "maxwait_us": 0},
    ],
}


@pytest.fixture
def staff_client(client, monkeypatch):
    monkeypatch.setattr(pgbouncer, "show", ROWS.__getitem__)
    monkeypatch.setenv("PGBOUNCER_DEFAULT_POOL_SIZE", "5")
    monkeypatch.setenv("PGBOUNCER_RESERVE_POOL_SIZE", "2")
    client.force_login(get_user_model().objects.create_user("staff", password="not-used-here", is_staff=True))
    return client


def test_the_summary_comes_first_from_the_apps_pool_only(staff_client):
    html = staff_client.get(reverse("pgbouncer_stats")).content.decode()
    summary = html.split('<dl class="summary">', 1)[1].split("</dl>", 1)[0]
    assert "<dt>Server connections in use</dt><dd>5 of 5 (and 2 in reserve)</dd>" in summary
    assert "<dt>Clients waiting for a server connection</dt><dd>3</dd>" in summary
    # PgBouncer's own console database (maxwait 9 s) is not the app's pool.
    assert "<dt>Longest wait now</dt><dd>1250 ms</dd>" in summary
    assert "<dt>Average wait, last stats period</dt><dd>1.5 ms</dd>" in summary
    assert html.index('<dl class="summary">') < html.index("<h2>SHOW STATS</h2>")


def test_every_figure_has_its_unit(staff_client):
    html = staff_client.get(reverse("pgbouncer_stats")).content.decode()
    assert 'total_<wbr>wait_<wbr>time <span class="unit">(µs)</span></th><td>2500</td>' in html
    assert 'maxwait <span class="unit">(s)</span></th>' in html
    assert 'maxwait_<wbr>us <span class="unit">(µs)</span></th>' in html
    assert 'avg_<wbr>recv <span class="unit">(bytes/s)</span></th>' in html
    assert "cl_<wbr>waiting</th><td>3</td>" in html  # a count: no unit


def test_a_way_back_to_the_home_page_and_the_admin(staff_client):
    html = staff_client.get(reverse("pgbouncer_stats")).content.decode()
    assert '<a href="/">Home</a>' in html and f'<a href="{reverse("admin:index")}">Admin</a>' in html


def test_an_anonymous_visitor_is_told_why_the_login_page_shows(client):
    response = client.get(reverse("pgbouncer_stats"), follow=True)
    assert response.redirect_chain == [(f"{reverse('admin:login')}?next={reverse('pgbouncer_stats')}", 302)]
    assert "The PgBouncer page is for staff: log in with a staff account to see it." in response.content.decode()


def test_a_logged_in_visitor_without_staff_gets_the_admins_own_word(client):
    client.force_login(get_user_model().objects.create_user("visitor", password="not-used-here"))
    response = client.get(reverse("pgbouncer_stats"), follow=True)
    html = response.content.decode()
    assert "is for staff" not in html and "not authorized to access this page" in html
