#!/usr/bin/env python3
"""Markdown tables, the targets and the plot from a results JSON written by run.py.

    python3 benchmarks/report.py [benchmarks/results/latest.json]

Writes latest.md (or <name>.md) beside the JSON and, for latest.json, slow-clients.png and scale-out.png.
Every ratio is against a peer measured in the same run (peer 1, Heroku's python-getting-started, for
throughput and memory): the machine is shared and noisy, absolute times are not comparable between runs.
"""

import json
import sys
from pathlib import Path

DYNO_MB = 512  # Eco, Basic and Standard-1X dynos
DIRECT_CONNECTIONS = 2  # connection_budget's release phase and `heroku run` console (run.py holds them open)
TARGETS = {
    "slow_success": 0.999,
    "slow_p99_factor": 2,  # p99 at the top level at most twice the stack's own p99 without slow clients
    "peer_success_max": 0.05,
    # /bench/db/ req/s at least this times peer 1's, behind the router stand-in: the stacks whose workers
    # are processes (gunicorn's and uWSGI's sync workers) are to beat peer 1's threads by 10%; waitress's
    # threads share one interpreter, as peer 1's do, and are to match them.
    "db_ratio": {"gunicorn": 1.1, "uwsgi": 1.1, "waitress": 1.0},
    "db_p99_factor": 1.0,  # p99 no worse than peer 1's
    "hop_ratio": 0.9,  # /bench/ping/ req/s with nginx at least this times the same server alone
    "router_factor": 3,  # the router stand-in passes at least this times the fastest stack's req/s
    "pss_extra_mb": 20,  # web dyno PSS at most peer 1's plus this
}
PEER1 = "getting-started"
CEILING = "ceiling"  # our server straight on $PORT: the cost of the two hops
SLOW_NOUNS = {
    "upload": "uploaders",
    "read": "readers of 1 MB (inside the router's buffer)",
    "read-large": "readers of 4 MB (beyond the router's buffer)",
}
SLOW_TITLES = {
    "upload": "Slow uploaders: 100 KB at ~1 KB/s",
    "read": "Slow readers: 1 MB at ~1 KB/s",
    "read-large": "Slow readers: 4 MB at ~1 KB/s",
}
STACK_STYLE = {
    "gunicorn": "#1f77b4",
    "uwsgi": "#2ca02c",
    "waitress": "#9467bd",
    "getting-started": "#ff7f0e",
    "seed-003-waitress": "#8c564b",
    "old-default": "#d62728",
    "ceiling": "#7f7f7f",
}
STACK_MARKER = {
    "gunicorn": ("o", 13),
    "uwsgi": ("s", 9),
    "waitress": ("^", 6),
    "getting-started": ("D", 8),
    "seed-003-waitress": ("v", 8),
    "old-default": ("X", 9),
}


def is_peer(results, name):
    return name in results["meta"].get("peers", {})


def stacks(results):
    return [name for name in results["configs"] if not is_peer(results, name)]


def peers(results):
    return [name for name in results["configs"] if is_peer(results, name)]


def levels(results, kind):
    found = set()
    for config in results["configs"].values():
        found |= {int(n) for n in config.get("slow", {}).get(kind, {})}
    return sorted(found)


def pct(value):
    return "–" if value is None else f"{value * 100:.1f}%"


def ms(value, digits=1):
    return "timeout" if value is None else f"{value:.{digits}f}"


def ratio(value, reference, digits=1):
    if not value or not reference:
        return "–"
    return f"{value / reference:.{digits}f}×"


LABELS = {}  # filled from the results' meta by markdown() and plot()


def label(name):
    return LABELS.get(name, f"ours: {name} + nginx + PgBouncer")


def use_labels(results):
    LABELS.clear()
    LABELS.update({name: peer["label"] for name, peer in results["meta"].get("peers", {}).items()})


# --- targets --------------------------------------------------------------------------------------------
#
# A figure is the median of its repeats, with the lowest and highest beside it. A target is met when the
# median clears the line; when the range crosses the line the verdict says so ("straddles"): one more run
# could have landed on the other side. Counted targets test this template (ours against peer 1, the budget's
# predictions, memory, slow clients behind the router); context (a peer's failure, a margin over peers 2 and
# 3, which fail or trail by construction) is shown but not counted.


def runs(level):
    """The repeats of a measured level; a level measured once is its own only repeat."""
    return level.get("repeats") or [level]


def spread(values):
    """(median, lowest, highest) of the values that were measured, or (None, None, None)."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None, None
    return median(values), min(values), max(values)


def judge(values, limit, at_least):
    """Median against the limit, and whether the range crosses it. None in values (a run with no answer)
    counts as the worst figure."""
    worst = float("-inf") if at_least else float("inf")
    values = [worst if v is None else v for v in values]
    middle, low, high = spread(values)
    if middle is None or limit is None:
        return {"met": None, "straddles": False, "median": middle, "low": low, "high": high}
    if at_least:
        met, straddles = middle >= limit, low < limit <= high
    else:
        met, straddles = middle <= limit, low <= limit < high
    return {"met": met, "straddles": straddles, "median": middle, "low": low, "high": high}


def check(target, verdict, detail, counted=True):
    return {"target": target, "counted": counted, "detail": detail, **verdict}


def figure(middle, low, high, digits=0, unit=""):
    """'2100 (1980–2230)': a median with its range; a single run shows its figure alone."""

    def one(value):
        return "no answer" if value in (float("inf"), float("-inf")) else f"{value:.{digits}f}"

    if middle is None:
        return "–"
    if low == high:
        return f"{one(middle)}{unit}"
    return f"{one(middle)}{unit} ({one(low)}–{one(high)})"


def paired_ratios(ours, reference, key):
    """Ours over the reference, repeat by repeat: they were measured alternately, so each pair shared the
    machine's state of that moment."""
    pairs = zip(runs(ours), runs(reference), strict=False)
    return [None if not mine.get(key) or not theirs.get(key) else mine[key] / theirs[key] for mine, theirs in pairs]


def slow_checks(results):
    configs, checks = results["configs"], []
    for kind, noun in SLOW_NOUNS.items():
        top = max(levels(results, kind) or [0])
        if not top:
            continue
        for name in stacks(results):
            slow = configs[name].get("slow", {}).get(kind, {})
            outcome, base = slow.get(str(top), {}), slow.get("0", {})
            if not measured(outcome):
                continue
            probes = [r["probe"] for r in runs(outcome) if r.get("probe")]
            served = judge([p["success"] for p in probes], TARGETS["slow_success"], at_least=True)
            base_p99 = spread([r["probe"]["p99_ms"] for r in runs(base) if r.get("probe")])[0]
            limit = base_p99 * TARGETS["slow_p99_factor"] if base_p99 else None
            p99 = judge([p["p99_ms"] for p in probes], limit, at_least=False)
            checks.append(
                check(
                    f"{name}: {top} slow {noun}, fast clients served ≥ 99.9%",
                    served,
                    percent_figure(served),
                )
            )
            checks.append(
                check(
                    f"{name}: {top} slow {noun}, fast clients' p99 ≤ 2 × its own at N = 0",
                    p99,
                    f"{figure(*spread_of(p99), digits=1)} ms (limit {ms(limit)} ms)",
                )
            )
        for name in peers(results):
            outcome = configs[name].get("slow", {}).get(kind, {}).get(str(top), {})
            if measured(outcome):
                verdict = judge([r["probe"]["success"] for r in runs(outcome) if r.get("probe")], 0.999, at_least=True)
                checks.append(
                    check(
                        f"{label(name)}: {top} slow {noun}, fast clients served ≥ 99.9% (as ours must)",
                        verdict,
                        percent_figure(verdict),
                        counted=False,
                    )
                )
    return checks


def measured(outcome):
    return any(r.get("probe") for r in runs(outcome))


def spread_of(verdict):
    return verdict["median"], verdict["low"], verdict["high"]


def percent_figure(verdict):
    return figure(*(v * 100 for v in spread_of(verdict)), digits=1, unit="%") if verdict["median"] is not None else "–"


def db_checks(results):
    configs, checks = results["configs"], []
    reference = configs.get(PEER1, {}).get("db", {}).get("levels", {})
    for name in stacks(results):
        db = configs[name].get("db")
        if not db:
            continue
        for concurrency, level in db["levels"].items():
            peer1 = reference.get(concurrency)
            if peer1:
                least = TARGETS["db_ratio"].get(name, max(TARGETS["db_ratio"].values()))
                rate = judge(paired_ratios(level, peer1, "ok_per_s"), least, at_least=True)
                checks.append(
                    check(
                        f"{name}: /bench/db/ req/s ≥ {least} × peer 1's at {concurrency} clients per dyno",
                        rate,
                        f"{figure(*spread_of(rate), digits=2, unit='×')}; "
                        f"{figure(*spread([r['ok_per_s'] for r in runs(level)]))} vs "
                        f"{figure(*spread([r['ok_per_s'] for r in runs(peer1)]))} req/s "
                        f"({len(runs(level))} and {len(runs(peer1))} runs)",
                    )
                )
                p99 = judge(paired_ratios(level, peer1, "p99_ms"), TARGETS["db_p99_factor"], at_least=False)
                checks.append(
                    check(
                        f"{name}: p99 ≤ {TARGETS['db_p99_factor']} × peer 1's at {concurrency} clients per dyno",
                        p99,
                        f"{figure(*spread_of(p99), digits=2, unit='×')}; "
                        f"{figure(*spread([r['p99_ms'] for r in runs(level)]))} vs "
                        f"{figure(*spread([r['p99_ms'] for r in runs(peer1)]))} ms",
                    )
                )
            for peer in peers(results):
                other = configs[peer].get("db", {}).get("levels", {}).get(concurrency)
                if peer == PEER1 or not other:
                    continue
                ahead = judge(paired_ratios(level, other, "ok_per_s"), 1, at_least=True)
                checks.append(
                    check(
                        f"{name}: req/s against {short(results, peer)} at {concurrency} clients per dyno",
                        ahead,
                        f"{figure(*spread_of(ahead), digits=2, unit='×')}",
                        counted=False,
                    )
                    | ({"shown_as": "the hops' cost"} if peer == CEILING else {})
                )
                if peer == CEILING:
                    # What nginx and PgBouncer cost, against the same server with neither.
                    p99 = judge(paired_ratios(level, other, "p99_ms"), 1, at_least=False)
                    checks.append(
                        check(
                            f"{name}: p99 against {short(results, peer)} at {concurrency} clients per dyno",
                            p99,
                            f"{figure(*spread_of(p99), digits=2, unit='×')}",
                            counted=False,
                        )
                        | {"shown_as": "the hops' cost"}
                    )
    return checks


def short(results, name):
    return results["meta"].get("peers", {}).get(name, {}).get("short", label(name))


def scale_checks(results):
    """For each stack and pools: no connection errors at every count connection_budget accepts, and under
    the stall every web dyno opens exactly the connections the budget counts for it and no dyno more (its
    arithmetic is exact, not merely safe). The errors at the first count it rejects are context: the budget
    counts the worker dyno's monitor, scheduler and pusher as if each held a connection at once, which the
    stall cannot make them do, so that count may run without errors while the web dynos' part is exact."""
    checks = []
    for name, config in results["configs"].items():
        for mode, scale in config.get("scale", {}).items():
            rows = scale["levels"]
            peer = is_peer(results, name)
            within = [n for n, level in rows.items() if level["predicted_fits"]]
            beyond = [n for n, level in rows.items() if not level["predicted_fits"]]
            bad = [n for n in within if connection_errors(rows[n])]
            who = label(name) if peer else f"{name}, {mode} pools"
            if within:
                checks.append(
                    check(
                        f"{who}: no connection errors at web dynos {', '.join(within)} (predicted to fit)",
                        {"met": not bad, "straddles": False},
                        "; ".join(f"web={n}: {describe_errors(rows[n])}" for n in within),
                        counted=not peer,
                    )
                )
            exact = [n for n, level in rows.items() if level.get("peak_per_dyno") and level.get("budget")]
            if exact and not peer:
                checks.append(
                    check(
                        f"{who}: under the stall each web dyno opens exactly connection_budget's count per web "
                        "dyno, and the worker dyno no more than its count",
                        {"met": all(dyno_peaks_as_counted(rows[n]) for n in exact), "straddles": False},
                        "; ".join(f"web={n}: {describe_peaks(rows[n])}" for n in exact),
                    )
                )
            if beyond and mode != "advised":
                first = min(beyond, key=int)
                checks.append(
                    check(
                        f"{who}: connection errors at web dynos {first} (the first count predicted not to fit)",
                        {"met": bool(connection_errors(rows[first])), "straddles": False},
                        f"web={first}: {describe_errors(rows[first])}",
                        counted=False,
                    )
                )
    return checks


def dyno_peaks_as_counted(level):
    peaks, counted = level["peak_per_dyno"], level["budget"]["per_dyno"]
    web_exact = bool(peaks["web"]) and all(peak == counted["web"] for peak in peaks["web"])
    return web_exact and (peaks["worker"] is None or peaks["worker"] <= counted["worker"])


def describe_peaks(level):
    peaks, counted = level["peak_per_dyno"], level["budget"]["per_dyno"]
    low, high = min(peaks["web"]), max(peaks["web"])
    web = f"{low}" if low == high else f"{low}–{high}"
    text = f"web dynos {web} (counted {counted['web']})"
    if peaks["worker"] is not None:
        text += f", worker {peaks['worker']} (counted {counted['worker']})"
    return text


def describe_errors(level):
    refused = level["failures"].get("postgres_refused", 0)
    return f"{level['errors']} failed requests, {refused} logins refused"


def memory_checks(results):
    configs, checks = results["configs"], []
    peer1_memory = configs.get(PEER1, {}).get("memory_idle")
    for name in stacks(results):
        memory = configs[name].get("memory_idle")
        if memory and peer1_memory:
            limit = peer1_memory["pss_mb"] + TARGETS["pss_extra_mb"]
            checks.append(
                check(
                    f"{name}: web dyno PSS ≤ peer 1's + 20 MB at WEB_CONCURRENCY=2",
                    judge([memory["pss_mb"]], limit, at_least=False),
                    f"{memory['pss_mb']:.0f} vs {peer1_memory['pss_mb']:.0f} MB PSS",
                )
            )
    return checks


def worker_checks(results):
    """Worker scale-out, per broker: every task run at least once (the ORM broker's promise; the Redis
    broker promises at most once, so there it is shown, not counted), and PostgreSQL's backends at peak
    within what connection_budget counts for the formation, less the direct connections this phase does
    not hold and with pgwatch.py's own connection left out."""
    checks = []
    for broker, workers in results.get("workers", {}).items():
        for count, level in workers["levels"].items():
            who = f"{broker.upper() if broker == 'orm' else broker.capitalize()} broker, web=1 + {count} worker dynos"
            checks.append(
                check(
                    f"{who}: every task run at least once",
                    {"met": level["missing"] == 0, "straddles": False},
                    f"{level['missing']} of {workers['tasks']} missing, {level['duplicates']} run twice, "
                    f"{level['tasks_per_s'] or '–'} tasks/s",
                    counted=broker == "orm",
                )
            )
            total = level.get("budget", {}).get("total")
            peak = level.get("peak_backends")
            limit = total - DIRECT_CONNECTIONS if total is not None else None
            checks.append(
                check(
                    f"{who}: PostgreSQL backends at peak ≤ connection_budget's count",
                    judge([None if peak is None else peak - 1], limit, at_least=False),
                    f"{'–' if peak is None else peak - 1} at peak; budget {total} less {DIRECT_CONNECTIONS} direct",
                )
            )
    return checks


def workers_table(results):
    if not results.get("workers"):
        return "Not measured."
    tasks = next(iter(results["workers"].values()))["tasks"]
    lines = [
        f"{tasks} tasks (each inserts a numbered row) enqueued through the web dyno, run by N worker dynos "
        "(`bin/dyno worker`: PgBouncer and `qcluster`); PostgreSQL's backends sampled every 50 ms (pgwatch.py's "
        "own connection left out). The Redis broker's store is a redis-server on the host, reached through each "
        "dyno's relay.",
        "",
        "| broker | formation | tasks/s | seconds (enqueueing) | missing | run twice | PostgreSQL backends at peak "
        "| connection_budget |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for broker, workers in results["workers"].items():
        for level in workers["levels"].values():
            peak = level.get("peak_backends")
            lines.append(
                f"| {broker} | {level['formation']} | {level['tasks_per_s'] or '–'} "
                f"| {level['seconds']} ({level['enqueue_seconds']}) | {level['missing']} | {level['duplicates']} "
                f"| {'–' if peak is None else peak - 1} | {level['budget']['output']} |"
            )
    return "\n".join(lines)


def hop_rounds(config, path="/bench/ping/"):
    return [w for w in config.get("hop", {}).get("rounds", {}).get(path, []) if "nginx" in w and "direct" in w]


def hop_checks(results):
    checks = []
    for name in stacks(results):
        rounds = hop_rounds(results["configs"][name])
        if not rounds:
            continue
        ratios = [w["nginx"]["ok_per_s"] / w["direct"]["ok_per_s"] if w["direct"]["ok_per_s"] else None for w in rounds]
        verdict = judge(ratios, TARGETS["hop_ratio"], at_least=True)
        checks.append(
            check(
                f"{name}: /bench/ping/ req/s with nginx ≥ {TARGETS['hop_ratio']} × the server alone",
                verdict,
                f"{figure(*spread_of(verdict), digits=2, unit='×')}; "
                f"{figure(*spread([w['nginx']['ok_per_s'] for w in rounds]))} vs "
                f"{figure(*spread([w['direct']['ok_per_s'] for w in rounds]))} req/s ({len(rounds)} rounds)",
            )
        )
    return checks


def fastest_stack(results):
    """(req/s, where): the most any configuration served through one dyno in this run, a median of its
    rounds: the nginx hop's windows (either side) and the throughput phase's levels."""
    best = (0, None)
    for name, config in results["configs"].items():
        for path, rounds in config.get("hop", {}).get("rounds", {}).items():
            for side in ("nginx", "direct", "tcp"):
                rate = median([w[side]["ok_per_s"] for w in rounds if side in w])
                if rate and rate > best[0]:
                    best = (rate, f"{name}, {path} ({side})")
        for concurrency, level in config.get("db", {}).get("levels", {}).items():
            rate = median([r.get("ok_per_s") for r in runs(level)])
            if rate and rate > best[0]:
                best = (rate, f"{name}, /bench/db/ at {concurrency} clients")
    return best


def router_checks(results):
    capacity = results.get("router_capacity")
    if not capacity:
        return []
    fastest, where = fastest_stack(results)
    if not fastest:
        return []
    verdict = judge([rate / fastest for rate in capacity["router"]], TARGETS["router_factor"], at_least=True)
    return [
        check(
            f"the router stand-in passes ≥ {TARGETS['router_factor']} × the fastest stack's req/s",
            verdict,
            f"{figure(*spread_of(verdict), digits=1, unit='×')}; {figure(*spread(capacity['router']))} req/s "
            f"through it (routercost.py, {len(capacity['router'])} rounds; "
            f"{figure(*spread(capacity['direct']))} straight to its backend) vs {fastest:.0f} ({where})",
        )
    ]


def evaluate(results):
    """Each target: {"target", "counted", "met", "straddles", "detail"}; "met" is None when not measured."""
    use_labels(results)
    return (
        router_checks(results)
        + hop_checks(results)
        + slow_checks(results)
        + db_checks(results)
        + scale_checks(results)
        + worker_checks(results)
        + memory_checks(results)
    )


def connection_errors(level):
    """Failed requests of a scale-out level (5xx, socket errors) and PostgreSQL's refusals."""
    return level["errors"] + level["failures"].get("postgres_refused", 0)


def last_fitting(rows):
    """The largest measured count predicted to fit, and the budget's own last fitting count when recorded."""
    fitting = [int(n) for n, level in rows.items() if level["predicted_fits"]]
    return max(fitting) if fitting else None


# --- tables ---------------------------------------------------------------------------------------------


def slow_table(results, kind):
    columns = levels(results, kind)
    if not columns:
        return ""
    noun = SLOW_TITLES[kind].split(": ", 1)[1]
    noun = f"{SLOW_NOUNS[kind].split(' (')[0]} ({noun})"
    lines = [
        f"| fast clients served, p50 / p99 ms, with N slow {noun} | " + " | ".join(f"N = {n}" for n in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name, config in results["configs"].items():
        if "slow" not in config:
            continue
        cells = []
        for n in columns:
            outcome = config["slow"].get(kind, {}).get(str(n), {})
            probes = [r["probe"] for r in runs(outcome) if r.get("probe")]
            if not probes:
                cells.append("–")
                continue
            served = percent_figure(judge([p["success"] for p in probes], None, at_least=True))
            p50 = spread([p["p50_ms"] for p in probes])[0]
            p99 = figure(*spread_of(judge([p["p99_ms"] for p in probes], None, at_least=False)), digits=1)
            cells.append(f"{served} · {ms(p50)} / {p99}")
        lines.append(f"| {label(name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def db_table(results):
    configs = results["configs"]
    reference = configs.get(PEER1, {}).get("db", {}).get("levels", {})
    pool = results["meta"].get("pool", {})
    bound = int(pool.get("PGBOUNCER_DEFAULT_POOL_SIZE", 1)) + int(pool.get("PGBOUNCER_RESERVE_POOL_SIZE", 1))
    lines = [
        "| two dynos, one database | view | clients per dyno | req/s | × peer 1 (run by run) | p50 / p99 ms "
        "| PostgreSQL backends "
        f"at peak: all (sampled) / most on one dyno (exact); PgBouncer's bound {bound} per dyno "
        "| PostgreSQL connections opened (per request) | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for name, config in configs.items():
        db = config.get("db", {})
        for concurrency, level in db.get("levels", {}).items():
            rows.append((name, concurrency, level, reference.get(concurrency) if name != PEER1 else None))
    for name, config in configs.items():
        db = config.get("db", {})
        for key in ("health_before", "health"):
            if db.get(key):
                level = db[key]
                rows.append((name, str(level["concurrency_per_dyno"]), level, None))
    for name, concurrency, level, peer1 in rows:
        path = level.get("path", "/bench/db/")
        if path == "/bench/health-connect/":
            path = "/health/ before (a connection per call)"
        elif path == "/health/":
            path = "/health/" if is_peer(results, name) else "/health/ now (probe connection kept)"
        every = runs(level)
        rate = figure(*spread([r["ok_per_s"] for r in every]))
        versus = figure(*spread(paired_ratios(level, peer1, "ok_per_s")), digits=2, unit="×") if peer1 else "–"
        p50 = spread([r["p50_ms"] for r in every])[0]
        p99 = figure(*spread_of(judge([r["p99_ms"] for r in every], None, at_least=False)))
        lines.append(
            f"| {label(name)} | `{path}` | {concurrency} | {rate} | {versus} "
            f"| {ms(p50, 0)} / {p99} | {level['postgres'].get('peak_backends', '–')} / "
            f"{level['peak_backends_per_dyno']} | {level['connections_opened']} ({level['connections_per_request']}) "
            f"| {level['errors']} |"
        )
    calibration = next(
        (c["db"]["relay_calibration"] for c in configs.values() if c.get("db", {}).get("relay_calibration")), None
    )
    if calibration:
        lines.append(
            f"\nA new PostgreSQL connection (TLS, SCRAM, one query) took {calibration['via_relay_ms']:.1f} ms through "
            f"the benchmark's relay and {calibration['direct_ms']:.1f} ms directly: the relay's share of the "
            "per-request cost of peers 2 and 3, which open one per request."
        )
    return "\n".join(lines)


def scale_table(results):
    limit = results.get("scale_limit", {})
    lines = [
        f"PostgreSQL with max_connections {limit.get('max_connections')} ({limit.get('ordinary')} ordinary "
        "connections for the app, as a Heroku Postgres Essential-0 plan). Each level, with two direct "
        "connections held open as the app's role (the release phase and a `heroku run` console, which "
        "`connection_budget` counts): first a database stall, the worst case for connections (a table that "
        f"every request and task reads, locked for {first_level_value(results, 'stall_seconds')} s while "
        f"{first_level_value(results, 'clients_per_dyno')} clients per web dyno ask for a view that reads it and "
        "the worker dyno, where the stack has one, gets tasks that read it: every Django connection waits in a "
        "transaction, so each web dyno's PgBouncer opens one for each, up to pool + reserve), then steady load: "
        f"{first_level_value(results, 'clients_per_dyno')} clients per web dyno on `/bench/db/` for "
        f"{first_level_value(results, 'seconds')} s (req/s, served and p99 are this part's). Errors count both "
        "parts and PostgreSQL's refusals. Prediction: `connection_budget --plan essential-0` for our stacks; "
        "processes × threads per dyno (persistent connections) + the 2 direct for the peers.",
        "",
        "Counts: the last one the prediction accepts and the next (the boundary itself), for each stack and "
        "pool setting. Connections per dyno: the most each dyno's PgBouncer held open at once (counted by the "
        "relay in front of PostgreSQL), against what `connection_budget` counts for one dyno of that type.",
        "",
        "| configuration | pools (pool + reserve) | web dynos | predicted | the prediction's arithmetic | req/s "
        "| served | errors (kinds) | p99 ms | PostgreSQL backends at peak | connections per dyno (counted) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, config in results["configs"].items():
        for mode, scale in config.get("scale", {}).items():
            for count, level in scale["levels"].items():
                pools = "+".join(map(str, level["pools"])) + f" ({mode})" if level.get("pools") else "–"
                kinds = ", ".join(f"{k} {v}" for k, v in level["failures"].items()) or "–"
                lines.append(
                    f"| {label(name)} | {pools} | {count} | {'fits' if level['predicted_fits'] else 'too many'} "
                    f"| {level.get('prediction') or level.get('budget', {}).get('output', '–')} "
                    f"| {level['ok_per_s']:.0f} | {level['ok']} | {level['errors']} ({kinds}) "
                    f"| {ms(level['p99_ms'], 0)} | {level['peak_backends']} "
                    f"| {describe_peaks(level) if level.get('peak_per_dyno') and level.get('budget') else '–'} |"
                )
    return "\n".join(lines)


def first_level_value(results, key):
    for config in results["configs"].values():
        for scale in config.get("scale", {}).values():
            for level in scale["levels"].values():
                return level.get(key)
    return None


def hop_table(results):
    lines = [
        "| GET /bench/ping/ (no database) | p50 ms with nginx | p50 ms without | added by nginx | req/s with nginx "
        "| req/s without | with / without |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, config in results["configs"].items():
        hop = config.get("hop")
        if not hop:
            continue
        if "direct" in hop:
            added = hop["nginx"]["p50_ms"] - hop["direct"]["p50_ms"]
            lines.append(
                f"| {label(name)} | {hop['nginx']['p50_ms']:.2f} | {hop['direct']['p50_ms']:.2f} | {added:+.2f} ms "
                f"| {hop['nginx']['ok_per_s']:.0f} | {hop['direct']['ok_per_s']:.0f} "
                f"| {ratio(hop['nginx']['ok_per_s'], hop['direct']['ok_per_s'])} |"
            )
        else:
            lines.append(
                f"| {label(name)}, its own server on $PORT | – | {hop['tcp']['p50_ms']:.2f} | – | – "
                f"| {hop['tcp']['ok_per_s']:.0f} | – |"
            )
    return "\n".join(lines)


CPU_ROLES = (
    ("nginx", "nginx"),
    ("log tail", "log tail"),
    ("pgbouncer", "PgBouncer"),
    ("server", "WSGI server"),
    ("django", "Django"),
)


def cpu_table(results):
    """Microseconds of CPU per request served, by process, median of the hop's rounds."""
    lines = [
        "| stack, view, way in | req/s | "
        + " | ".join(title for _, title in CPU_ROLES)
        + " | the dyno | the relay (harness) |",
        "|---|---|" + "---|" * (len(CPU_ROLES) + 2),
    ]
    for name in stacks(results):
        for path, rounds in results["configs"][name].get("hop", {}).get("rounds", {}).items():
            for side, way in (("nginx", "through nginx"), ("direct", "the server alone")):
                windows = [w[side] for w in rounds if side in w and w[side]["us_per_request"]]
                if not windows:
                    continue
                cost = {
                    role: median([w["us_per_request"].get(role, 0.0) for w in windows])
                    for role in [r for r, _ in CPU_ROLES] + ["harness"]
                }
                dyno = sum(cost[role] for role, _ in CPU_ROLES)
                lines.append(
                    f"| {name}, {path}, {way} | {median([w['ok_per_s'] for w in windows]):.0f} | "
                    + " | ".join(f"{cost[role]:.0f}" for role, _ in CPU_ROLES)
                    + f" | {dyno:.0f} | {cost['harness']:.0f} |"
                )
    return "\n".join(lines)


def memory_table(results):
    top = max(levels(results, "read") or [0])
    lines = [
        f"| memory, WEB_CONCURRENCY=2 | RSS MB idle | PSS MB idle | of a {DYNO_MB} MB dyno (RSS) "
        f"| RSS / PSS MB with {top} slow readers "
        "| PSS by process (idle) |",
        "|---|---|---|---|---|---|",
    ]
    rows = [
        (
            label(name) + ", web",
            config.get("memory_idle"),
            config.get("slow", {}).get("read", {}).get(str(top), {}).get("memory"),
        )
        for name, config in results["configs"].items()
    ]
    if results.get("worker_memory"):
        rows.append(("worker dyno (qcluster, 2 workers)", results["worker_memory"], None))
    for title, idle, loaded in rows:
        if not idle:
            continue
        parts = ", ".join(
            f"{role} {v['pss_mb']:.0f}" + (f" ({v['processes']})" if v["processes"] > 1 else "")
            for role, v in sorted(idle["by_role"].items(), key=lambda item: -item[1]["pss_mb"])
        )
        under = f"{loaded['rss_mb']:.0f} / {loaded['pss_mb']:.0f}" if loaded else "–"
        lines.append(
            f"| {title} | {idle['rss_mb']:.0f} | {idle['pss_mb']:.0f} | {idle['rss_mb'] / DYNO_MB * 100:.0f}% "
            f"| {under} | {parts} |"
        )
    return "\n".join(lines)


def startup_table(results):
    lines = [
        "| start-up, seconds from process start (median of the run's starts) | to /tmp/app-initialized "
        "| to the first 200 (bin/dyno: nginx once start-nginx's once-a-second check finds the file) | starts |",
        "|---|---|---|---|",
    ]
    for name, config in results["configs"].items():
        starts = list(config.get("startup", [])) + list(config.get("db", {}).get("startup", []))
        if not starts:
            continue
        ready = median([s["ready_file_s"] for s in starts])
        first = median([s["first_200_s"] for s in starts])
        lines.append(f"| {label(name)} | {'–' if ready is None else f'{ready:.2f}'} | {first:.2f} | {len(starts)} |")
    return "\n".join(lines)


def noise_line(results):
    windows = [
        outcome
        for config in results["configs"].values()
        for kind in config.get("slow", {}).values()
        for outcome in kind.values()
        if outcome.get("noise")
    ]
    if not windows:
        return ""
    io = max(w["noise"].get("io_full_ms", 0) for w in windows)
    steal = max(w["noise"].get("steal_ms", 0) for w in windows)
    return (
        f"The machine is shared: in the worst of these windows, other loads held every waiting task on the disk "
        f"for {io:.0f} ms in all (PSI io full) and the hypervisor took {steal:.0f} ms of CPU (steal); the run keeps "
        "its files in memory, so the disk stalls do not reach the requests."
    )


def verdict_text(check):
    if check.get("shown_as"):
        return check["shown_as"]
    if check["met"] is None:
        return "not measured"
    text = "met" if check["met"] else "**missed**"
    return text + (", range straddles the line" if check["straddles"] else "")


def targets_table(checks):
    counted = [c for c in checks if c["counted"]]
    met = sum(1 for c in counted if c["met"])
    straddling = sum(1 for c in counted if c["straddles"])
    lines = [
        f"{met} of {len(counted)} counted targets met"
        + (f" ({straddling} with a range that straddles the line)" if straddling else "")
        + ". Figures: the median of the runs, lowest–highest in brackets; ratios are taken run by run against "
        "the peer measured next to it.",
        "",
        "| target | result | figures |",
        "|---|---|---|",
    ]
    lines += [f"| {c['target']} | {verdict_text(c)} | {c['detail']} |" for c in counted]
    context = [c for c in checks if not c["counted"]]
    if context:
        lines += [
            "",
            "Context, not counted (a peer's own result, a margin over a configuration that trails by "
            "construction, the ceiling's ratios, the Redis broker's at-most-once delivery, errors beyond "
            "connection_budget's worst case, which the stall cannot force on the worker dyno):",
            "",
            "| context | result | figures |",
            "|---|---|---|",
        ]
        lines += [f"| {c['target']} | {verdict_text(c)} | {c['detail']} |" for c in context]
    return "\n".join(lines)


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def peers_section(results):
    lines = []
    for name, peer in results["meta"].get("peers", {}).items():
        if name in results["configs"]:
            lines.append(f"- **{peer['label']}**: {peer['source']}")
    return "\n".join(lines)


def noise_summary(results):
    """PSI and steal over every measured window of the run: how much the shared machine interfered."""
    windows = []
    for config in results["configs"].values():
        for kind in config.get("slow", {}).values():
            windows += [outcome["noise"] for outcome in kind.values() if outcome.get("noise")]
        db = config.get("db", {})
        windows += [level["noise"] for level in db.get("levels", {}).values() if level.get("noise")]
    if not windows:
        return ""
    total = {key: sum(w.get(key, 0) for w in windows) for key in ("cpu_some_ms", "io_full_ms", "steal_ms")}
    return (
        f"Machine during the measured windows ({len(windows)}): CPU pressure (PSI some, includes this run's own "
        f"processes) {total['cpu_some_ms'] / 1000:.0f} s, I/O full stall {total['io_full_ms'] / 1000:.1f} s, "
        f"steal {total['steal_ms'] / 1000:.1f} s; load average {results['meta']['machine']['load_at_start'][0]:.1f} "
        f"at the start, {results['meta'].get('load_at_end', [0])[0]:.1f} at the end."
    )


def markdown(results, plot_name=None, scale_plot_name=None):
    use_labels(results)
    meta = results["meta"]
    settings = meta["settings"]
    sections = [
        f"Produced by `{meta['command']}` on {meta['started']} from the template at "
        f"{(meta.get('template') or {}).get('commit')}"
        f"{' with uncommitted changes' if (meta.get('template') or {}).get('uncommitted_changes') else ''} "
        f"({meta['machine']['cpus']} cores, {meta['profile']} profile, {meta['seconds'] // 60} min). "
        f"Versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items() if v)}."
        + "".join(
            f" Its {' and '.join(rerun['phases'])} figures are from a second run, `{rerun['command']}` on "
            f"{rerun['started']} at {(rerun.get('template') or {}).get('commit')}"
            f"{' with uncommitted changes' if (rerun.get('template') or {}).get('uncommitted_changes') else ''} "
            f"({rerun['seconds'] // 60} min), which replaced the first run's."
            for rerun in meta.get("reruns", [])
        )
        + "\n\n"
        + noise_summary(results),
        "### Configurations\n\nOurs: the baked Procfile's web dyno, nginx → PgBouncer → the WSGI server "
        "(`bin/dyno web`), app.json's config vars, WEB_CONCURRENCY=2. The peers, each from its own documented "
        "configuration, not tuned, running the same Django project straight against PostgreSQL on `$PORT`:\n\n"
        + peers_section(results),
        "### Targets\n\n" + targets_table(evaluate(results)),
        "### Slow clients\n\n"
        "Fast clients: GET /bench/db/ (one query on Django's connection) on a new connection, "
        f"{settings['probe_rate']} per second for {settings['probe_seconds']} s, each giving up after "
        f"{settings['probe_timeout_s']} s; a failed one counts as slower "
        "than any in the percentiles.\n\n"
        + slow_table(results, "upload")
        + "\n\n"
        + slow_table(results, "read")
        + "\n\n"
        + slow_table(results, "read-large")
        + "\n\n"
        + noise_line(results)
        + (f"\n\n![fast clients served against slow clients]({plot_name})" if plot_name else ""),
        "### Database throughput and connections\n\n" + db_table(results),
        "### Scale-out on a 20-connection database\n\n"
        + scale_table(results)
        + (f"\n\n![requests served and errors against web dynos]({scale_plot_name})" if scale_plot_name else ""),
        "### Worker scale-out\n\n" + workers_table(results),
        "### Memory\n\n" + memory_table(results),
        "### The nginx hop\n\n" + hop_table(results),
        "### Where each request's CPU goes\n\n"
        "CPU microseconds per request served, by process: the kernel's run time of each process of the web "
        "dyno (`/proc/PID/task/TID/schedstat`), read before and after each closed-loop window of the nginx hop "
        f"({settings.get('hop_concurrency', 8)} clients; through nginx on connections kept alive, as Heroku's "
        "router keeps them; the server alone on a new connection per request, as nginx opens them), divided "
        "by the requests served. Django's share of the server process is its own thread CPU time inside the "
        "WSGI application (`time.thread_time()`, the benchmark's bakes only). The relay stands in for the "
        "network between the dyno and PostgreSQL and is not part of the dyno. Medians of the rounds.\n\n"
        + cpu_table(results),
        "### Start-up\n\n" + startup_table(results),
    ]
    if meta.get("stack_env") or meta.get("patch") or meta.get("peer_env"):
        sections.insert(
            1,
            f"Experiment: stack config vars {meta.get('stack_env')}, peers {meta.get('peer_env')}, "
            f"patch {meta.get('patch')}.",
        )
    return "\n\n".join(sections) + "\n"


# --- the plots ------------------------------------------------------------------------------------------


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    use_labels(results)
    kinds = [(kind, title) for kind, title in SLOW_TITLES.items() if levels(results, kind)]
    figure, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 5.2), sharey=True, squeeze=False)
    axes = axes[0]
    for axis, (kind, title) in zip(axes, kinds, strict=True):
        columns = levels(results, kind)
        positions = list(range(len(columns)))
        for name, config in results["configs"].items():
            if "slow" not in config:
                continue
            values = [config["slow"].get(kind, {}).get(str(n), {}).get("probe", {}).get("success") for n in columns]
            values = [None if v is None else v * 100 for v in values]
            peer = is_peer(results, name)
            # The lines often overlap (ours at 100%, the peers at 0%): marker shapes and sizes keep each visible.
            marker, size = STACK_MARKER.get(name, ("o", 7))
            axis.plot(
                positions,
                values,
                marker=marker,
                markersize=size,
                markerfacecolor="none",
                markeredgewidth=1.6,
                linewidth=1.6,
                linestyle="--" if peer else "-",
                color=STACK_STYLE.get(name, None),
                label=label(name),
            )
        axis.axhline(99.9, color="#888888", linewidth=0.8, linestyle=":")
        axis.set_xticks(positions, [str(n) for n in columns])
        axis.set_xlabel("slow clients connected at once")
        axis.set_title(title, fontsize=11)
        axis.set_ylim(-4, 104)
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("fast clients served (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=2, frameon=False, fontsize=8.5)
    settings = results["meta"]["settings"]
    figure.suptitle(
        f"Fast clients served (one-query view, {settings['probe_rate']}/s, {settings['probe_timeout_s']} s timeout) "
        f"while slow clients are connected; one dyno behind the router stand-in, WEB_CONCURRENCY=2",
        fontsize=11,
    )
    figure.tight_layout(rect=(0, 0.16, 1, 0.95))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def scale_plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    use_labels(results)
    figure, (served, failed) = plt.subplots(1, 2, figsize=(12, 5.2))
    for name, config in results["configs"].items():
        for mode, scale in config.get("scale", {}).items():
            rows = dict(scale["levels"])
            if mode == "advised":
                # Where app.json's pools fit, the advised formation is the same one: draw it from there.
                rows = {**config["scale"].get("app.json", {}).get("levels", {}), **rows}
                rows = {n: rows[n] for n in sorted(rows, key=int)}
            counts = [int(n) for n in rows]
            marker, size = STACK_MARKER.get(name, ("o", 7))
            style = dict(
                marker=marker,
                markersize=size * 0.8,
                markerfacecolor="none",
                color=STACK_STYLE.get(name),
                linestyle=":" if mode == "advised" else ("--" if is_peer(results, name) else "-"),
                label=label(name) + ("" if is_peer(results, name) else f", {mode} pools"),
            )
            served.plot(counts, [level["ok"] for level in rows.values()], **style)
            failed.plot(counts, [connection_errors(level) for level in rows.values()], **style)
    limit = results.get("scale_limit", {})
    for axis, title in (
        (served, "requests served (2xx, steady load)"),
        (failed, "failed requests + connections PostgreSQL refused"),
    ):
        axis.set_xscale("log", base=2)
        measured = sorted(
            {int(n) for c in results["configs"].values() for sc in c.get("scale", {}).values() for n in sc["levels"]}
        )
        axis.set_xticks(measured, [str(n) for n in measured])
        axis.set_xlabel("web dynos")
        axis.set_title(title, fontsize=11)
        axis.grid(alpha=0.3)
    failed.set_yscale("symlog", linthresh=10)
    failed.set_ylim(bottom=0)
    handles, labels = served.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=2, frameon=False, fontsize=8.5)
    figure.suptitle(
        f"Scale-out on one PostgreSQL with {limit.get('ordinary')} ordinary connections (Essential-0), "
        "a database stall, then steady load, on every web dyno",
        fontsize=11,
    )
    figure.tight_layout(rect=(0, 0.22, 1, 0.95))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(results, json_path):
    json_path = Path(json_path)
    written = []
    prefix = "" if json_path.stem == "latest" else f"{json_path.stem}-"
    plot_path = json_path.with_name(f"{prefix}slow-clients.png")
    scale_path = json_path.with_name(f"{prefix}scale-out.png")
    has_slow = any("slow" in config for config in results["configs"].values())
    has_scale = any("scale" in config for config in results["configs"].values())
    if has_slow:
        plot(results, plot_path)
        written.append(plot_path)
    if has_scale:
        scale_plot(results, scale_path)
        written.append(scale_path)
    md_path = json_path.with_suffix(".md")
    md_path.write_text(markdown(results, plot_path.name if has_slow else None, scale_path.name if has_scale else None))
    written.insert(0, md_path)
    return written


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results" / "latest.json"
    for written_path in write(json.loads(source.read_text()), source):
        print(written_path)
