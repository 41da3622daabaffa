"""The benchmark's targets are judged from the figures: benchmarks/report.py on small made-up results."""

import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import report  # noqa: E402


def scale_level(fits, errors=0, refused=0):
    failures = {"postgres_refused": refused} if refused else {}
    return {"predicted_fits": fits, "errors": errors, "failures": failures}


def results(ours_req_s=950, ours_p99=300, ours_pss=90, gunicorn_scale=None):
    db = {"levels": {"32": {"ok_per_s": 1000, "p99_ms": 250}}}
    return {
        "meta": {"peers": {"getting-started": {"label": "peer 1"}, "old-default": {"label": "peer 3"}}},
        "configs": {
            "gunicorn": {
                "db": {"levels": {"32": {"ok_per_s": ours_req_s, "p99_ms": ours_p99}}},
                "memory_idle": {"pss_mb": ours_pss},
                "scale": {"app.json": {"levels": gunicorn_scale or {}}},
            },
            "getting-started": {"db": db, "memory_idle": {"pss_mb": 80}},
            "old-default": {"db": {"levels": {"32": {"ok_per_s": 100, "p99_ms": 700}}}},
        },
    }


def verdicts(checks):
    return {check["target"]: check["met"] for check in checks}


@pytest.mark.parametrize(
    ("req_s", "p99", "pss", "expected"),
    [
        (950, 300, 90, {"req/s": True, "p99": True, "PSS": True}),
        (850, 400, 101, {"req/s": False, "p99": False, "PSS": False}),
    ],
)
def test_throughput_and_memory_targets_against_peer_1(req_s, p99, pss, expected):
    found = verdicts(report.evaluate(results(req_s, p99, pss)))
    assert found["gunicorn: /bench/db/ req/s ≥ 0.9 × peer 1's at 32 clients per dyno"] is expected["req/s"]
    assert found["gunicorn: p99 ≤ 1.5 × peer 1's at 32 clients per dyno"] is expected["p99"]
    assert found["gunicorn: web dyno PSS ≤ peer 1's + 20 MB at WEB_CONCURRENCY=2"] is expected["PSS"]
    assert found["gunicorn: ahead of peers 2 and 3 at 32 clients per dyno"] is True


def test_scale_out_failing_where_connection_budget_says():
    rows = {"1": scale_level(True), "2": scale_level(False, errors=3), "4": scale_level(False, refused=9)}
    found = verdicts(report.evaluate(results(gunicorn_scale=rows)))
    assert found["gunicorn, app.json pools: no connection errors at dyno counts connection_budget accepts"] is True
    assert found["gunicorn, app.json pools: first failing dyno count as connection_budget predicts"] is True


def test_scale_out_errors_within_the_budget_or_none_where_predicted_are_misses():
    # PostgreSQL refusing connections counts as a failure even when every request was served.
    rows = {"1": scale_level(True, refused=1), "2": scale_level(False)}
    found = verdicts(report.evaluate(results(gunicorn_scale=rows)))
    assert found["gunicorn, app.json pools: no connection errors at dyno counts connection_budget accepts"] is False
    assert found["gunicorn, app.json pools: first failing dyno count as connection_budget predicts"] is False
    assert report.first_failing(rows) == ("2", "1")
