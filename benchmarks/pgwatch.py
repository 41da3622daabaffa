#!/usr/bin/env python3
"""PostgreSQL's own view of a load test: client backends sampled every `interval`, and sessions opened.

    pgwatch.py --socket-dir DIR --port N --database NAME [--interval 0.05] [--seconds 120]

Runs with the baked virtualenv's Python (it has psycopg) as the superuser over the cluster's unix socket,
in a database of its own ("postgres"), so it is never counted itself. Stops on SIGTERM or after `seconds`
and prints one JSON object: peak and mean client backends of the database, how many of them used TLS,
and pg_stat_database.sessions before and after (connections opened, as PostgreSQL counts them).
"""

import argparse
import json
import signal
import sys
import time

import psycopg

BACKENDS = """
    SELECT count(*), count(*) FILTER (WHERE s.ssl)
    FROM pg_stat_activity a LEFT JOIN pg_stat_ssl s USING (pid)
    WHERE a.backend_type = 'client backend' AND a.datname = %s
"""
SESSIONS = "SELECT sessions FROM pg_stat_database WHERE datname = %s"


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args(argv)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    connection = psycopg.connect(
        host=args.socket_dir, port=args.port, user="postgres", dbname="postgres", autocommit=True
    )
    samples, peak, tls_at_peak, total = 0, 0, 0, 0

    def sessions():
        # Pending statistics reach the shared counters within a second; clear our snapshot each time.
        connection.execute("SELECT pg_stat_clear_snapshot()")
        return connection.execute(SESSIONS, (args.database,)).fetchone()[0]

    sessions_before = sessions()
    deadline = time.monotonic() + args.seconds
    print("ready", file=sys.stderr, flush=True)
    while not stop and time.monotonic() < deadline and samples < args.seconds / args.interval + 10:
        count, tls = connection.execute(BACKENDS, (args.database,)).fetchone()
        samples += 1
        total += count
        if count > peak:
            peak, tls_at_peak = count, tls
        time.sleep(args.interval)
    time.sleep(1.2)  # let backends that just ended report their session
    result = {
        "samples": samples,
        "peak_backends": peak,
        "tls_backends_at_peak": tls_at_peak,
        "mean_backends": round(total / samples, 2) if samples else None,
        "sessions_opened": sessions() - sessions_before,
    }
    connection.close()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
