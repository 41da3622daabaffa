"""The benchmark's targets are judged from the figures: benchmarks/report.py on small made-up results.

A figure is the median of its repeats with the range beside it; a target is met when the median clears the
line and says so when the range straddles it; only targets that test the template are counted. And the
committed tables are what report.py makes of the committed raw results."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import report  # noqa: E402


def scale_level(fits, errors=0, refused=0):
    failures = {"postgres_refused": refused} if refused else {}
    return {"predicted_fits": fits, "errors": errors, "failures": failures, "ok_per_s": 100, "ok": 500}


def repeats(req_s, p99):
    """A level measured len(req_s) times, as run.py writes it: the repeats, the medians on top."""
    runs = [{"ok_per_s": r, "p99_ms": p, "p50_ms": p and p / 3} for r, p in zip(req_s, p99, strict=True)]
    return {"ok_per_s": report.median(req_s), "p99_ms": report.median(p99), "repeats": runs}


def probe(success, p99):
    return {"probe": {"success": success, "p50_ms": 3.0, "p99_ms": p99}}


def results(ours_req_s=(1150,) * 5, ours_p99=(240,) * 5, ours_pss=90, gunicorn_scale=None, slow=None):
    peer1 = repeats((1000,) * 5, (250,) * 5)
    return {
        "meta": {
            "peers": {
                "getting-started": {"label": "peer 1", "short": "peer 1"},
                "old-default": {"label": "peer 3", "short": "peer 3"},
            }
        },
        "configs": {
            "gunicorn": {
                "db": {"levels": {"32": repeats(ours_req_s, ours_p99)}},
                "memory_idle": {"pss_mb": ours_pss},
                "scale": {"app.json": {"levels": gunicorn_scale or {}}},
                **({"slow": slow} if slow else {}),
            },
            "getting-started": {
                "db": {"levels": {"32": peer1}},
                "memory_idle": {"pss_mb": 80},
                "slow": {"upload": {"0": probe(1.0, 3.0), "256": probe(0.0, None)}, "read": {}},
            },
            "old-default": {"db": {"levels": {"32": repeats((100,) * 5, (700,) * 5)}}},
        },
    }


def by_target(checks):
    return {check["target"]: check for check in checks}


REQ_S = "gunicorn: /bench/db/ req/s ≥ 1.1 × peer 1's at 32 clients per dyno"
P99 = "gunicorn: p99 ≤ 1.0 × peer 1's at 32 clients per dyno"
PSS = "gunicorn: web dyno PSS ≤ peer 1's + 20 MB at WEB_CONCURRENCY=2"


@pytest.mark.parametrize(
    ("req_s", "p99", "pss", "expected"),
    [
        ((1150, 1140, 1160, 1130, 1170), (240,) * 5, 90, {"req/s": True, "p99": True, "PSS": True}),
        ((1050, 1040, 1060, 1030, 1070), (300,) * 5, 101, {"req/s": False, "p99": False, "PSS": False}),
    ],
)
def test_throughput_and_memory_targets_against_peer_1(req_s, p99, pss, expected):
    found = by_target(report.evaluate(results(req_s, p99, pss)))
    assert found[REQ_S]["met"] is expected["req/s"]
    assert found[P99]["met"] is expected["p99"]
    assert found[PSS]["met"] is expected["PSS"]
    assert not any(found[name]["straddles"] for name in (REQ_S, P99, PSS))
    assert all(found[name]["counted"] for name in (REQ_S, P99, PSS))


def test_the_median_decides_and_a_range_across_the_line_is_called_straddling():
    # Run by run against peer 1's 1000: 1.05, 1.08, 1.12, 1.15, 1.2 -> median 1.12, range crosses 1.1.
    found = by_target(report.evaluate(results(ours_req_s=(1050, 1080, 1120, 1150, 1200))))
    check = found[REQ_S]
    assert check["met"] is True and check["straddles"] is True
    assert (check["median"], check["low"], check["high"]) == (1.12, 1.05, 1.2)
    assert "1.12× (1.05–1.20)" in check["detail"]
    table = report.targets_table(report.evaluate(results(ours_req_s=(1050, 1080, 1120, 1150, 1200))))
    assert f"| {REQ_S} | met, range straddles the line |" in table
    # The same spread below the line: a miss, still straddling.
    low = by_target(report.evaluate(results(ours_req_s=(1000, 1050, 1080, 1120, 1150))))[REQ_S]
    assert low["met"] is False and low["straddles"] is True
    assert f"| {REQ_S} | **missed**, range straddles the line |" in report.targets_table(
        report.evaluate(results(ours_req_s=(1000, 1050, 1080, 1120, 1150)))
    )


def test_a_run_without_an_answer_counts_as_the_worst():
    # A p99 of None (every request timed out) is worse than any figure: 2 of 5 such runs move the median.
    found = by_target(report.evaluate(results(ours_p99=(240, 240, 240, None, None))))
    assert found[P99]["met"] is True and found[P99]["straddles"] is True
    found = by_target(report.evaluate(results(ours_p99=(240, 240, None, None, None))))
    assert found[P99]["met"] is False


def test_margins_over_peers_and_peer_failures_are_context_not_counted():
    slow = {"upload": {"0": probe(1.0, 4.0), "256": probe(1.0, 5.0)}, "read": {}}
    checks = report.evaluate(results(slow=slow))
    found = by_target(checks)
    ahead = found["gunicorn: req/s against peer 3 at 32 clients per dyno"]
    assert ahead["met"] is True and ahead["counted"] is False
    peer_slow = found["peer 1: 256 slow uploaders, fast clients served ≥ 99.9% (as ours must)"]
    assert peer_slow["met"] is False and peer_slow["counted"] is False
    assert found["gunicorn: 256 slow uploaders, fast clients served ≥ 99.9%"]["counted"] is True
    assert found["gunicorn: 256 slow uploaders, fast clients' p99 ≤ 2 × its own at N = 0"]["met"] is True
    table = report.targets_table(checks)
    counted, context = table.split("Context, not counted")
    assert "peer 3" not in counted and "peer 1: 256" not in counted
    assert "req/s against peer 3" in context
    assert table.startswith(f"{sum(c['counted'] for c in checks)} of {sum(c['counted'] for c in checks)} counted")


def test_slow_client_p99_judged_on_the_median_of_repeats():
    base = {"repeats": [probe(1.0, p) for p in (4.0, 5.0, 4.0, 6.0, 5.0)]}  # median 5 ms: limit 10 ms
    top = {"repeats": [probe(1.0, p) for p in (8.0, 9.0, 12.0, 9.5, 11.0)]}
    found = by_target(report.evaluate(results(slow={"upload": {"0": base, "256": top}, "read": {}})))
    check = found["gunicorn: 256 slow uploaders, fast clients' p99 ≤ 2 × its own at N = 0"]
    assert check["met"] is True and check["straddles"] is True
    assert "9.5 (8.0–12.0) ms (limit 10.0 ms)" in check["detail"]


def test_scale_out_at_the_boundary_the_budget_predicts():
    rows = {"6": scale_level(True), "7": scale_level(False, refused=9)}
    found = by_target(report.evaluate(results(gunicorn_scale=rows)))
    fits = found["gunicorn, app.json pools: no connection errors at web dynos 6 (predicted to fit)"]
    fails = found["gunicorn, app.json pools: connection errors at web dynos 7 (the first count predicted not to fit)"]
    assert fits["met"] is True and fails["met"] is True
    # The budget's worst case counts the worker dyno's monitor, scheduler and pusher at once, which the
    # stall cannot force: errors beyond it are context.
    assert fits["counted"] and not fails["counted"]


@pytest.mark.parametrize(
    ("rows", "fits_met", "fails_met"),
    [
        # PostgreSQL refusing connections counts as a failure even when every request was served.
        ({"6": scale_level(True, refused=1), "7": scale_level(False, refused=3)}, False, True),
        ({"6": scale_level(True), "7": scale_level(False)}, True, False),
    ],
    ids=["errors-within-the-budget", "no-errors-beyond-it"],
)
def test_scale_out_errors_on_either_side_of_the_boundary(rows, fits_met, fails_met):
    found = by_target(report.evaluate(results(gunicorn_scale=rows)))
    assert found["gunicorn, app.json pools: no connection errors at web dynos 6 (predicted to fit)"]["met"] is fits_met
    fails = "gunicorn, app.json pools: connection errors at web dynos 7 (the first count predicted not to fit)"
    assert found[fails]["met"] is fails_met


EXACT = (
    "gunicorn, app.json pools: under the stall each web dyno opens exactly connection_budget's count per web "
    "dyno, and the worker dyno no more than its count"
)


@pytest.mark.parametrize(
    ("web_peaks", "worker_peak", "met", "shown"),
    [
        ([2] * 7, 3, True, "web dynos 2 (counted 2), worker 3 (counted 5)"),
        # One web dyno short of the count: the budget's web arithmetic is not what a dyno opens.
        ([2] * 6 + [1], 3, False, "web dynos 1–2 (counted 2), worker 3 (counted 5)"),
        ([2] * 6 + [3], 3, False, "web dynos 2–3 (counted 2), worker 3 (counted 5)"),
        # The worker dyno over its count: the budget is not even safe.
        ([2] * 7, 6, False, "web dynos 2 (counted 2), worker 6 (counted 5)"),
    ],
    ids=["exact", "a-web-dyno-below", "a-web-dyno-above", "worker-over"],
)
def test_each_dyno_opens_what_the_budget_counts_for_it(web_peaks, worker_peak, met, shown):
    level = scale_level(False)
    level["budget"] = {"per_dyno": {"web": 2, "worker": 5}, "output": "does not fit"}
    level["peak_per_dyno"] = {"web": web_peaks, "worker": worker_peak}
    found = by_target(report.evaluate(results(gunicorn_scale={"7": level})))
    assert found[EXACT]["met"] is met and found[EXACT]["counted"]
    assert found[EXACT]["detail"] == f"web=7: {shown}"


def test_advised_pools_have_one_check_not_two():
    data = results()
    data["configs"]["gunicorn"]["scale"]["advised"] = {"levels": {"7": scale_level(True), "8": scale_level(True)}}
    advised = [c for c in report.evaluate(data) if "advised pools" in c["target"]]
    assert [c["target"] for c in advised] == [
        "gunicorn, advised pools: no connection errors at web dynos 7, 8 (predicted to fit)"
    ]


def test_the_ceiling_gives_the_cost_of_the_two_hops_as_context():
    data = results(ours_req_s=(900, 950, 1000, 950, 900), ours_p99=(300,) * 5)
    data["meta"]["peers"]["ceiling"] = {"label": "ceiling", "short": "the ceiling"}
    data["configs"]["ceiling"] = {"db": {"levels": {"32": repeats((1000,) * 5, (200,) * 5)}}}
    found = by_target(report.evaluate(data))
    rate = found["gunicorn: req/s against the ceiling at 32 clients per dyno"]
    p99 = found["gunicorn: p99 against the ceiling at 32 clients per dyno"]
    assert rate["counted"] is False and p99["counted"] is False
    assert rate["detail"] == "0.95× (0.90–1.00)" and p99["detail"] == "1.50×"


@pytest.mark.parametrize(
    ("missing", "peak", "expected"),
    [(0, 8, (True, True)), (3, 8, (False, True)), (0, 9, (True, False))],
    ids=["all-run-within-budget", "tasks-missing", "over-the-budget"],
)
def test_worker_scale_out_every_task_run_and_backends_within_the_budget(missing, peak, expected):
    # connection_budget counts 9 for web=1,worker=1 (2 + 5 + 2 direct, not held here): 7 may be open, and
    # pgwatch.py's own connection is part of the peak.
    data = results()
    level = {"formation": "web=1,worker=1", "budget": {"total": 9, "output": "fits"}, "missing": missing}
    level |= {"duplicates": 1, "tasks_per_s": 90.0, "peak_backends": peak, "seconds": 11, "enqueue_seconds": 3}
    data["workers"] = {"orm": {"tasks": 1000, "levels": {"1": level}}, "redis": {"tasks": 1000, "levels": {"1": level}}}
    found = by_target(report.evaluate(data))
    ran = found["ORM broker, web=1 + 1 worker dynos: every task run at least once"]
    within = found["ORM broker, web=1 + 1 worker dynos: PostgreSQL backends at peak ≤ connection_budget's count"]
    assert (ran["met"], within["met"]) == expected
    assert ran["counted"] and within["counted"]
    assert "1 run twice" in ran["detail"]
    # The Redis broker promises at most once: its missing tasks are shown, not counted.
    assert found["Redis broker, web=1 + 1 worker dynos: every task run at least once"]["counted"] is False


def test_run_py_merges_rounds_into_what_the_report_judges():
    """run.py's merging of rounds and repeats, fed to the report: the contract between the two."""
    import run

    def db_round(ok_per_s, p99):
        level = {"ok_per_s": ok_per_s, "p50_ms": 1.0, "p99_ms": p99, "errors": 0, "noise": {"steal_ms": 10}}
        return {"startup": [{"ready_file_s": 0.4, "first_200_s": 0.5}], "levels": {"32": level}}

    def window(success, p99):
        return {"probe": {"success": success, "p50_ms": 3.0, "p99_ms": p99, "timeline": [1]}, "noise": {"steal_ms": 1}}

    data = results()
    ours = run.merge_rounds([db_round(v, 240) for v in (1050, 1080, 1120, 1150, 1200)])
    assert ours["levels"]["32"]["ok_per_s"] == 1120 and len(ours["startup"]) == 5
    assert ours["levels"]["32"]["noise"] == {"steal_ms": 50}
    data["configs"]["gunicorn"]["db"] = ours
    data["configs"]["getting-started"]["db"] = run.merge_rounds([db_round(1000, 250) for _ in range(5)])
    base = run.merge_repeats([window(1.0, p) for p in (4.0, 5.0, 4.0, 6.0, 5.0)])
    top = run.merge_repeats([window(1.0, p) for p in (8.0, 9.0, 12.0, 9.5, None)])
    assert top["probe"]["timeline"] == [1] and "timeline" not in top["repeats"][0]["probe"]
    data["configs"]["gunicorn"]["slow"] = {"upload": {"0": base, "256": top}, "read": {}}
    found = by_target(report.evaluate(data))
    assert found[REQ_S]["met"] is True and found[REQ_S]["straddles"] is True
    p99 = found["gunicorn: 256 slow uploaders, fast clients' p99 ≤ 2 × its own at N = 0"]
    # The repeat without an answer counts as the worst: median 9.5 ms, the range up to "no answer".
    assert p99["met"] is True and p99["straddles"] is True
    assert "9.5 (8.0–no answer) ms" in p99["detail"]


def test_the_committed_tables_are_what_the_committed_results_give():
    """benchmarks/results/latest.md is report.py's reading of latest.json, so anyone can regenerate and check it
    (`.venv/bin/python benchmarks/report.py`)."""
    results = ROOT / "benchmarks" / "results"
    tables = report.markdown(json.loads((results / "latest.json").read_text()), "slow-clients.png", "scale-out.png")
    assert tables == (results / "latest.md").read_text()


@pytest.mark.parametrize(
    ("diff", "server"),
    [
        ("before-cuts.diff", "gunicorn"),
        ("before-cuts.diff", "uwsgi"),
        ("before-cuts.diff", "waitress"),
        ("uwsgi-protocol.diff", "uwsgi"),
    ],
)
def test_the_benchmarks_patches_apply_to_todays_bake(bake_once, diff, server):
    """benchmarks/README.md gives commands that apply these with --patch; a bake that has moved under one
    would fail that run, so each must still apply, whole, to the bake it is for."""
    project = bake_once(wsgi_server=server)
    result = subprocess.run(
        # As benchmarks/stack.py applies it, without changing anything.
        ["patch", "-p1", "--forward", "--dry-run", "--input", str(ROOT / "benchmarks" / diff)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout and "fuzz" not in result.stdout, result.stdout


def hop_round(nginx, direct):
    return {"nginx": {"ok_per_s": nginx}, "direct": {"ok_per_s": direct}}


HOP = "gunicorn: /bench/ping/ req/s with nginx ≥ 0.9 × the server alone"
ROUTER = "the router stand-in passes ≥ 3 × the fastest stack's req/s"


@pytest.mark.parametrize(
    ("nginx", "met", "straddles", "detail"),
    [
        ((1900, 1840, 1760, 1940, 1820), True, True, "0.92× (0.88–0.97)"),
        ((1700, 1740, 1760, 1640, 1820), False, True, "0.87× (0.82–0.91)"),
    ],
)
def test_the_nginx_hop_is_judged_round_by_round_against_the_server_alone(nginx, met, straddles, detail):
    data = results()
    data["configs"]["gunicorn"]["hop"] = {"rounds": {"/bench/ping/": [hop_round(n, 2000) for n in nginx]}}
    check = by_target(report.evaluate(data))[HOP]
    assert (check["met"], check["straddles"], check["counted"]) == (met, straddles, True)
    assert check["detail"].startswith(detail) and "(5 rounds)" in check["detail"]


@pytest.mark.parametrize(("fastest", "met"), [(4000, True), (11000, False)])
def test_the_router_must_pass_three_times_the_fastest_stack(fastest, met):
    data = results()
    data["router_capacity"] = {"router": [30000, 28000, 32000], "direct": [90000] * 3}
    # The fastest figure of the run is the largest median of any window kind: here the server alone on ping.
    data["configs"]["gunicorn"]["hop"] = {"rounds": {"/bench/ping/": [hop_round(1000, fastest)] * 3}}
    check = by_target(report.evaluate(data))[ROUTER]
    assert check["met"] is met and check["counted"] is True
    assert f"vs {fastest} (gunicorn, /bench/ping/ (direct))" in check["detail"]
