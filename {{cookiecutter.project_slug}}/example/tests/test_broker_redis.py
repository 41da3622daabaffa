import socket

import pytest
from django.urls import reverse
from django_q.conf import Conf


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_unreachable_redis_is_a_clear_503_not_a_500(client, monkeypatch, accept):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{port}/0")
    response = client.post(reverse("enqueue_example"), {"key": "k"}, headers={"accept": accept})
    assert response.status_code == 503
    assert response["Retry-After"]
    assert b"task queue is unreachable" in response.content
