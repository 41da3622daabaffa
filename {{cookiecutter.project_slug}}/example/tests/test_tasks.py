import pytest
from django.core.cache import cache
from django.urls import reverse
from django_q.conf import Conf

from example import tasks
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


QUEUED = "for key k: a worker dyno runs it once one is running; its result then shows below."


def test_the_form_gets_the_page_back_saying_the_task_was_queued(client, tasks_run_inline):
    """With a worker (here the task runs in the request, as a worker would run it): the message, and the
    result listed and counted."""
    cache.clear()
    response = client.post(reverse("enqueue_example"), {"key": "k"}, headers={"accept": "text/html"}, follow=True)
    assert response.redirect_chain == [(reverse("index"), 302)]
    html = response.content.decode()
    assert "Queued task" in html and QUEUED in html
    assert "<code>k</code>" in html and " 1 example result stored." in html
    # Once: the message is gone on the next page.
    assert "Queued task" not in client.get(reverse("index")).content.decode()


def test_without_a_worker_the_form_says_the_task_waits_for_one(client, monkeypatch):
    """As under `bin/dyno web` alone: the task is queued and nothing runs it. The message says no more than
    that, and the page lists no result."""
    cache.clear()
    queued = []
    monkeypatch.setattr(tasks, "async_task", lambda *args, **kwargs: queued.append(args) or "a-task-id")
    response = client.post(reverse("enqueue_example"), {"key": "k"}, headers={"accept": "text/html"}, follow=True)
    html = response.content.decode()
    assert queued == [(compute_example, "k", 0.0)]
    assert "Queued task a-task-id " + QUEUED in html
    assert "<code>k</code>" not in html and " 0 example results stored." in html


def test_the_form_says_why_a_task_was_not_queued(client):
    response = client.post(reverse("enqueue_example"), {"seconds": "soon"}, headers={"accept": "text/html"})
    assert response.status_code == 400
    assert "Not queued: seconds must be a number" in response.content.decode()
