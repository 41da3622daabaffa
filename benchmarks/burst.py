"""A burst of 1,000 busy connections on each server's web dyno, rounds of each in one session: the figures
CONTRIBUTING.md quotes ("Measured figures", "A burst of connections") for the baked docs/waitress.md.

    sudo .venv/bin/python benchmarks/burst.py                      # 2 rounds of 20 s per server, about 5 minutes
    sudo .venv/bin/python benchmarks/burst.py --rounds 3 --seconds 10
    sudo .venv/bin/python benchmarks/burst.py --servers "gunicorn waitress:WAITRESS_CONNECTION_LIMIT=1000"

The load and the dynos are the test suite's own (tests/test_web_limits.py,
test_a_thousand_busy_connections_answered_in_bounded_time, on `bin/dyno web` with app.json's config vars):
this runs that test once per server and round in one session, under the suite's pytest settings (pytest.ini),
reads its FIGURE lines from the run's "figures" summary and prints them as a table; with none it fails. A
server may carry config vars after a colon, comma-separated.
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURE = re.compile(
    r"FIGURE .* busy connections for \S+ s through nginx, (?P<server>\S+): seconds=\S+, responses=(?P<responses>\d+), "
    r"statuses=(?P<statuses>\{[^}]*\}), p50_ms=(?P<p50>[\d.]+), p99_ms=(?P<p99>[\d.]+), max_ms=(?P<max>[\d.]+)"
)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--servers", default="gunicorn uwsgi waitress", help="space-separated, in the order run")
    args = parser.parse_args(argv)
    env = {
        **os.environ,
        "BURST_ROUNDS": str(args.rounds),
        "BURST_SECONDS": str(args.seconds),
        "BURST_SERVERS": args.servers,
    }
    command = [sys.executable, "-m", "pytest", "tests/test_web_limits.py", "-q", "-p", "no:cacheprovider"]
    command += ["-k", "busy_connections"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    rows = [match.groupdict() for match in FIGURE.finditer(result.stdout)]
    print(f"1,000 busy connections for {args.seconds:g} s, {args.rounds} round(s) per server in one session\n")
    print("| server | responses | statuses | p50 | p99 | slowest |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['server']} | {int(row['responses']):,} | {row['statuses']} | {float(row['p50']):,.0f} ms "
            f"| {float(row['p99']):,.0f} ms | {float(row['max']):,.0f} ms |"
        )
    summary = result.stdout.strip().splitlines()[-1:] if result.stdout.strip() else []
    print(f"\npytest: {' '.join(summary)}")
    if result.returncode != 0 or not rows:
        print(result.stdout[-4000:], result.stderr[-2000:], sep="\n", file=sys.stderr)
    if not rows:
        print("burst.py: pytest printed no burst FIGURE lines: no figures to show", file=sys.stderr)
        return result.returncode or 1
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
