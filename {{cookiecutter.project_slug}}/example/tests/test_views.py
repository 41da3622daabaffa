import pytest
from django.urls import reverse

from example.models import ExampleResult

pytestmark = pytest.mark.django_db


def test_index_answers(client):
    ExampleResult.objects.create(key="shown", digest="d" * 64)
    response = client.get(reverse("index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "It works" in html and "<code>shown</code>" in html
    # Which stack served it: the test client is no WSGI server Django knows, on the tests' database.
    assert "Served by a WSGI server → " in html


def test_results_are_in_the_admin(admin_client):
    ExampleResult.objects.create(key="in-the-admin", digest="d" * 64)
    response = admin_client.get(reverse("admin:example_exampleresult_changelist"))
    assert response.status_code == 200 and "in-the-admin" in response.content.decode()
