#!/usr/bin/env python3
"""Markdown tables, the targets and the plot from a results JSON written by run.py.

    python3 benchmarks/report.py [benchmarks/results/latest.json]

Writes latest.md (or <name>.md) beside the JSON and, for latest.json, slow-clients.png. Every ratio is
against the control measured in the same run: the machine is shared and noisy, absolute times are not
comparable from one run to the next.
"""

import json
import sys
from pathlib import Path

DYNO_MB = 512  # Eco, Basic and Standard-1X dynos
TARGETS = {
    "slow_success": 0.999,
    "slow_p99_ms": 25,
    "control_success_max": 0.05,
    "db_ratio": 5,
    "hop_p50_ms": 1.0,
    "rss_mb": 300,
}
STACK_STYLE = {"gunicorn": "#1f77b4", "uwsgi": "#2ca02c", "waitress": "#9467bd"}
STACK_MARKER = {"gunicorn": ("o", 13), "uwsgi": ("s", 9), "waitress": ("^", 6)}


def stacks(results):
    return [name for name in results["configs"] if name != "control"]


def levels(results, kind):
    found = set()
    for config in results["configs"].values():
        found |= {int(n) for n in config.get("slow", {}).get(kind, {})}
    return sorted(found)


def pct(value):
    return "–" if value is None else f"{value * 100:.1f}%"


def ms(value, digits=1):
    return "timeout" if value is None else f"{value:.{digits}f}"


def ratio(value, reference):
    if not value or not reference:
        return "–"
    return f"{value / reference:.1f}×"


def label(name):
    return "control (Heroku default)" if name == "control" else f"{name} + nginx + PgBouncer"


# --- targets --------------------------------------------------------------------------------------------


def evaluate(results):
    """Each target: {"target", "met", "detail"}; "met" is None when the run did not measure it."""
    configs, checks = results["configs"], []
    control = configs.get("control", {})
    pool = results["meta"].get("pool", {})
    bound = int(pool.get("PGBOUNCER_DEFAULT_POOL_SIZE", 1)) + int(pool.get("PGBOUNCER_RESERVE_POOL_SIZE", 1))
    for kind, noun in (("upload", "uploaders"), ("read", "readers")):
        top = max(levels(results, kind) or [0])
        if not top:
            continue
        for name in stacks(results):
            probe = configs[name]["slow"][kind][str(top)]["probe"]
            met = (
                probe["success"] >= TARGETS["slow_success"]
                and probe["p99_ms"] is not None
                and probe["p99_ms"] <= TARGETS["slow_p99_ms"]
            )
            checks.append(
                {
                    "target": f"{name}: {top} slow {noun}, fast clients ≥ 99.9% served, p99 ≤ 25 ms",
                    "met": met,
                    "detail": f"{pct(probe['success'])}, p99 {ms(probe['p99_ms'])} ms",
                }
            )
        if "slow" in control:
            probe = control["slow"][kind][str(top)]["probe"]
            checks.append(
                {
                    "target": f"control: {top} slow {noun}, fast clients ≤ 5% served",
                    "met": probe["success"] <= TARGETS["control_success_max"],
                    "detail": pct(probe["success"]),
                }
            )
    for name in stacks(results):
        db = configs[name].get("db")
        if not db:
            continue
        for concurrency, level in db["levels"].items():
            reference = control.get("db", {}).get("levels", {}).get(concurrency)
            if reference:
                factor = level["ok_per_s"] / reference["ok_per_s"] if reference["ok_per_s"] else float("inf")
                checks.append(
                    {
                        "target": f"{name}: database throughput ≥ 5× control at {concurrency} clients per dyno",
                        "met": factor >= TARGETS["db_ratio"],
                        "detail": f"{level['ok_per_s']:.0f} vs {reference['ok_per_s']:.0f} req/s = {factor:.1f}×",
                    }
                )
        peaks = {f"{c} clients": level["peak_backends_per_dyno"] for c, level in db["levels"].items()}
        scaled = configs[name].get("db_scaled")
        if scaled:
            for c, level in scaled["levels"].items():
                peaks[f"{c} clients, WEB_CONCURRENCY={scaled['web_concurrency']}"] = level["peak_backends_per_dyno"]
        checks.append(
            {
                "target": f"{name}: PostgreSQL backends per dyno ≤ pool + reserve ({bound})",
                "met": max(peaks.values()) <= bound,
                "detail": ", ".join(f"{p} at {c}" for c, p in peaks.items()),
            }
        )
    for name in stacks(results):
        hop = configs[name].get("hop")
        if hop and "direct" in hop:
            added = hop["nginx"]["p50_ms"] - hop["direct"]["p50_ms"]
            checks.append(
                {
                    "target": f"{name}: the nginx hop adds ≤ 1 ms at p50",
                    "met": added <= TARGETS["hop_p50_ms"],
                    "detail": f"{added:+.2f} ms ({hop['nginx']['p50_ms']:.2f} vs {hop['direct']['p50_ms']:.2f})",
                }
            )
    for name in stacks(results):
        memory = configs[name].get("memory_idle")
        if memory:
            checks.append(
                {
                    "target": f"{name}: web dyno RSS ≤ 300 MB at WEB_CONCURRENCY=2",
                    "met": memory["rss_mb"] <= TARGETS["rss_mb"],
                    "detail": f"{memory['rss_mb']:.0f} MB RSS ({memory['pss_mb']:.0f} MB PSS)",
                }
            )
    return checks


# --- tables ---------------------------------------------------------------------------------------------


def slow_table(results, kind):
    columns = levels(results, kind)
    noun = "uploaders (100 KB at ~1 KB/s)" if kind == "upload" else "readers (1 MB at ~1 KB/s)"
    lines = [
        f"| fast clients served, p50 / p99 ms, with N slow {noun} | " + " | ".join(f"N = {n}" for n in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name, config in results["configs"].items():
        if "slow" not in config:
            continue
        cells = []
        for n in columns:
            probe = config["slow"][kind].get(str(n), {}).get("probe")
            cells.append(
                "–" if not probe else f"{pct(probe['success'])} · {ms(probe['p50_ms'])} / {ms(probe['p99_ms'])}"
            )
        lines.append(f"| {label(name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def db_table(results):
    control = results["configs"].get("control", {}).get("db", {}).get("levels", {})
    pool = results["meta"].get("pool", {})
    bound = int(pool.get("PGBOUNCER_DEFAULT_POOL_SIZE", 1)) + int(pool.get("PGBOUNCER_RESERVE_POOL_SIZE", 1))
    lines = [
        "| two dynos, one database | view | clients per dyno | req/s | × control | p50 / p99 ms | PostgreSQL backends "
        f"at peak: all (sampled) / most on one dyno (exact); bound {bound} per dyno | PostgreSQL connections opened "
        "(per request) | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for name, config in results["configs"].items():
        db = config.get("db", {})
        for concurrency, level in db.get("levels", {}).items():
            rows.append((name, "", concurrency, level, control.get(concurrency, {}).get("ok_per_s")))
        if db.get("health"):
            level = db["health"]
            reference = results["configs"].get("control", {}).get("db", {}).get("health", {}).get("ok_per_s")
            rows.append((name, "", str(level["concurrency_per_dyno"]), level, reference))
        scaled = config.get("db_scaled")
        if scaled:
            reference_levels = results["configs"].get("control", {}).get("db_scaled", {}).get("levels", {})
            for concurrency, level in scaled["levels"].items():
                rows.append(
                    (
                        name,
                        f", WEB_CONCURRENCY={scaled['web_concurrency']}",
                        concurrency,
                        level,
                        reference_levels.get(concurrency, {}).get("ok_per_s"),
                    )
                )
    for name, suffix, concurrency, level, reference in rows:
        lines.append(
            f"| {label(name)}{suffix} | `{level.get('path', '/bench/db/')}` | {concurrency} | {level['ok_per_s']:.0f} "
            f"| {'1.0×' if name == 'control' else ratio(level['ok_per_s'], reference)} "
            f"| {ms(level['p50_ms'], 0)} / {ms(level['p99_ms'], 0)} | {level['postgres'].get('peak_backends', '–')} / "
            f"{level['peak_backends_per_dyno']} | {level['connections_opened']} ({level['connections_per_request']}) "
            f"| {level['errors']} |"
        )
    calibration = results["configs"].get("control", {}).get("db", {}).get("relay_calibration")
    if calibration:
        lines.append(
            f"\nA new PostgreSQL connection (TLS, SCRAM, one query) took {calibration['via_relay_ms']:.1f} ms through "
            f"the benchmark's relay and {calibration['direct_ms']:.1f} ms directly: the relay's share of the "
            "control's per-request cost."
        )
    return "\n".join(lines)


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
                f"| {label(name)}, gunicorn on TCP | – | {hop['tcp']['p50_ms']:.2f} | – | – "
                f"| {hop['tcp']['ok_per_s']:.0f} | – |"
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
        "| to the first 200 "
        "| starts |",
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


def targets_table(checks):
    lines = ["| target | result | figures |", "|---|---|---|"]
    for check in checks:
        verdict = "met" if check["met"] else "**missed**"
        lines.append(f"| {check['target']} | {verdict} | {check['detail']} |")
    return "\n".join(lines)


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def markdown(results, plot_name=None):
    meta = results["meta"]
    settings = meta["settings"]
    sections = [
        f"Produced by `{meta['command']}` on {meta['started']} from the template at "
        f"{(meta.get('template') or {}).get('commit')}"
        f"{' with uncommitted changes' if (meta.get('template') or {}).get('uncommitted_changes') else ''} "
        f"({meta['machine']['cpus']} cores, load "
        f"{meta['machine']['load_at_start'][0]:.1f} at the start, {meta['seconds'] // 60} min). "
        f"Versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items() if v)}.",
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
        + noise_line(results)
        + (f"\n\n![fast clients served against slow clients]({plot_name})" if plot_name else ""),
        "### Database throughput and connections\n\n" + db_table(results),
        "### The nginx hop\n\n" + hop_table(results),
        "### Memory\n\n" + memory_table(results),
        "### Start-up\n\n" + startup_table(results),
    ]
    if meta.get("stack_env") or meta.get("patch") or meta.get("control_env"):
        sections.insert(
            1,
            f"Experiment: stack config vars {meta.get('stack_env')}, control {meta.get('control_env')}, "
            f"patch {meta.get('patch')}.",
        )
    return "\n\n".join(sections) + "\n"


# --- the plot -------------------------------------------------------------------------------------------


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [("upload", "Slow uploaders: 100 KB at ~1 KB/s"), ("read", "Slow readers: 1 MB at ~1 KB/s")]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
    for axis, (kind, title) in zip(axes, kinds, strict=True):
        columns = levels(results, kind)
        positions = list(range(len(columns)))
        for name, config in results["configs"].items():
            if "slow" not in config:
                continue
            values = [config["slow"][kind].get(str(n), {}).get("probe", {}).get("success") for n in columns]
            values = [None if v is None else v * 100 for v in values]
            control = name == "control"
            # The stacks often overlap at 100%: different marker shapes and sizes keep each one visible.
            marker, size = ("X", 9) if control else STACK_MARKER.get(name, ("o", 7))
            axis.plot(
                positions,
                values,
                marker=marker,
                markersize=size,
                markerfacecolor="none" if not control else None,
                markeredgewidth=1.6,
                linewidth=2.4 if control else 1.6,
                linestyle="--" if control else "-",
                color="#d62728" if control else STACK_STYLE.get(name, None),
                label=label(name),
            )
            if control:
                for x, value in zip(positions, values, strict=True):
                    if value is not None:
                        axis.annotate(
                            f"{value:.0f}%",
                            (x, value),
                            textcoords="offset points",
                            xytext=(8, 6),
                            color="#d62728",
                            fontsize=9,
                        )
        axis.axhline(99.9, color="#888888", linewidth=0.8, linestyle=":")
        axis.set_xticks(positions, [str(n) for n in columns])
        axis.set_xlabel("slow clients connected at once")
        axis.set_title(title, fontsize=11)
        axis.set_ylim(-4, 104)
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("fast clients served (%)")
    axes[0].text(
        0.98,
        97,
        "99.9% target",
        fontsize=8,
        color="#666666",
        va="top",
        ha="right",
        transform=axes[0].get_yaxis_transform(),
    )
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=4, frameon=False, fontsize=9)
    settings = results["meta"]["settings"]
    figure.suptitle(
        f"Fast clients served (one-query view, {settings['probe_rate']}/s, {settings['probe_timeout_s']} s timeout) "
        f"while slow clients are connected; one dyno, WEB_CONCURRENCY=2",
        fontsize=11,
    )
    figure.tight_layout(rect=(0, 0.09, 1, 0.95))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(results, json_path):
    json_path = Path(json_path)
    written = []
    plot_path = json_path.with_name(
        "slow-clients.png" if json_path.stem == "latest" else f"{json_path.stem}-slow-clients.png"
    )
    has_slow = any("slow" in config for config in results["configs"].values())
    if has_slow:
        plot(results, plot_path)
        written.append(plot_path)
    md_path = json_path.with_suffix(".md")
    md_path.write_text(markdown(results, plot_path.name if has_slow else None))
    written.insert(0, md_path)
    return written


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results" / "latest.json"
    for written_path in write(json.loads(source.read_text()), source):
        print(written_path)
