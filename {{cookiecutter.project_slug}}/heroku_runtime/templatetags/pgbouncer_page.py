"""What the PgBouncer page shows beside PgBouncer's own SHOW output: each column's unit, and the few figures
that say whether the pool is big enough.

Units and meanings: https://www.pgbouncer.org/usage.html#show-stats and #show-pools
"""

from django import template

from heroku_runtime import pgbouncer

register = template.Library()

# SHOW STATS and SHOW POOLS columns that are not plain counts.
UNITS = {"maxwait": "s", "maxwait_us": "µs", "total_received": "bytes", "total_sent": "bytes"}
UNITS |= {"avg_recv": "bytes/s", "avg_sent": "bytes/s"}


@register.filter
def unit(column):
    """'µs' for PgBouncer's times (every *_time column is in microseconds), 's', 'bytes' or '' for counts."""
    return "µs" if column.endswith("_time") else UNITS.get(column, "")


def app_rows(lines):
    """One {column: value} per row of a table turned on its side, leaving out PgBouncer's own database."""
    columns = dict(lines)
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    return [row for row in rows if row.get("database") != "pgbouncer"]


@register.simple_tag
def pool_summary(tables):
    """[(what, figure)] for the app's pools: server connections in use against the pool's size, clients
    waiting for one and the longest wait now, and the average wait over PgBouncer's last stats period."""
    pools, stats = app_rows(tables.get("POOLS", [])), app_rows(tables.get("STATS", []))
    if not pools:
        return []
    in_use = sum(int(row.get("sv_active", 0)) for row in pools)
    size, reserve = pgbouncer.pool_size() * len(pools), pgbouncer.reserve_pool_size() * len(pools)
    waiting = sum(int(row.get("cl_waiting", 0)) for row in pools)
    longest = max(int(row.get("maxwait", 0)) + int(row.get("maxwait_us", 0)) / 1e6 for row in pools)
    summary = [
        ("Server connections in use", f"{in_use} of {size} (and {reserve} in reserve)"),
        ("Clients waiting for a server connection", str(waiting)),
        ("Longest wait now", f"{longest * 1000:.0f} ms"),
    ]
    if stats:
        average = max(int(row.get("avg_wait_time", 0)) for row in stats)
        summary.append(("Average wait, last stats period", f"{average / 1000:.1f} ms"))
    return summary


@register.filter
def words(column):
    """The column's name split at its underscores: the page puts a line-break opportunity after each, so that
    on a phone a long name wraps between its words instead of pushing the table wider than the screen."""
    return column.split("_")
