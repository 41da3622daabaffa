import pytest
from django.urls import reverse
from django_q.conf import Conf

from example.models import ExampleResult
from example.tasks import compute_example

pytestmark = pytest.mark.django_db


def test_example_task_is_idempotent():
    first = compute_example("abc")
    second = compute_example("abc")
    assert first == second
    result = ExampleResult.objects.get(key="abc")
    assert (result.digest, result.runs) == (first, 2)
    assert ExampleResult.objects.count() == 1


@pytest.fixture
def tasks_run_inline(monkeypatch):
    # django-q2 reads Q_CLUSTER once at import, so the settings fixture cannot switch it to sync.
    monkeypatch.setattr(Conf, "SYNC", True)


def test_the_web_process_enqueues_the_task(client, tasks_run_inline):
    response = client.post(reverse("enqueue_example"), {"key": "from-the-web"})
    assert response.status_code == 202
    assert ExampleResult.objects.get(key="from-the-web").runs == 1


def test_the_form_gets_the_page_back_saying_the_task_was_queued(client, tasks_run_inline):
    response = client.post(reverse("enqueue_example"), {"key": "k"}, headers={"accept": "text/html"}, follow=True)
    assert response.redirect_chain == [(reverse("index"), 302)]
    assert "Queued task" in response.content.decode() and "for key k" in response.content.decode()
    # Once: the message is gone on the next page.
    assert "Queued task" not in client.get(reverse("index")).content.decode()


def test_the_form_says_why_a_task_was_not_queued(client):
    response = client.post(reverse("enqueue_example"), {"seconds": "soon"}, headers={"accept": "text/html"})
    assert response.status_code == 400
    assert "Not queued: seconds must be a number" in response.content.decode()
