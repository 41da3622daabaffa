#!/usr/bin/env python3
"""Load generation, run inside a dyno's namespaces (nsenter --net --mount) and printing one JSON object.

    loadgen.py wait       --target T --path P [--ready-file F] --timeout S
    loadgen.py latency    --target T [--target T2] --path P --count N
    loadgen.py throughput --target T --path P --concurrency C --seconds S [--keep-alive]
    loadgen.py slow       --target T --kind upload|read --clients N ... (see slow_phase)

A target is tcp:HOST:PORT or unix:PATH. Every request is HTTP/1.1 on a new connection with
`Connection: close` (or, with `throughput --keep-alive`, on a connection kept as Heroku's router keeps its
connections to a dyno) and the headers Heroku's router adds (X-Forwarded-Proto: https), so the production
settings neither redirect nor refuse it. Everything is asyncio on raw sockets, one process, and every loop
is bounded twice: by a count and by a deadline. Only the stdlib: the script runs with any Python 3.11.
"""

import argparse
import asyncio
import errno
import json
import math
import os
import re
import resource
import socket
import sys
import time

REQUEST = (
    "{method} {path} HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\nUser-Agent: heroku-django-bench\r\n"
    "Connection: close\r\n{extra}\r\n"
)
UPLOAD_BYTES = 100 * 1024
READ_CHUNK = 1024  # "about 1 KB/s": one chunk a second
SLOW_RCVBUF = 16384  # a slow reader's small receive window (a phone on a poor link), set before connect
SLOW_SNDBUF = 8192


def request_bytes(path, method="GET", extra=""):
    return REQUEST.format(method=method, path=path, extra=extra).encode()


def new_socket(target, rcvbuf=None, sndbuf=None):
    kind, _, where = target.partition(":")
    if kind == "unix":
        sock, address = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), where
    elif kind == "tcp":
        host, _, port = where.rpartition(":")
        sock, address = socket.socket(socket.AF_INET, socket.SOCK_STREAM), (host, int(port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        raise SystemExit(f"unknown target {target!r}: use tcp:HOST:PORT or unix:PATH")
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.setblocking(False)
    return sock, address


def error_name(error):
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(error, OSError) and error.errno:
        return errno.errorcode.get(error.errno, str(error.errno))
    return type(error).__name__


def status_of(head):
    try:
        return int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


async def fetch(target, path, timeout, method="GET", body=b""):
    """One request on a new connection: {"start", "ms", "status", "error"}; ms covers connect to EOF."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    sock = None
    result = {"start": started, "ms": None, "status": None, "error": None}
    try:
        async with asyncio.timeout(timeout):
            sock, address = new_socket(target)
            await loop.sock_connect(sock, address)
            extra = f"Content-Length: {len(body)}\r\n" if method == "POST" else ""
            await loop.sock_sendall(sock, request_bytes(path, method, extra) + body)
            received = bytearray()
            for _ in range(100_000):  # bounded: responses here are small (at most a few MB)
                chunk = await loop.sock_recv(sock, 65536)
                if not chunk:
                    break
                received += chunk
        result["status"] = status_of(bytes(received[:64]))
        result["ms"] = (time.monotonic() - started) * 1000
        result["bytes"] = len(received)
        if result["status"] is None:
            result["error"] = "no response"
    except (TimeoutError, OSError) as error:
        result["error"] = error_name(error)
    finally:
        if sock is not None:
            sock.close()
    return result


def percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    value = sorted_values[index]
    return None if value == math.inf else round(value, 3)


def summarize(results, ok_status=200):
    """Success and latency percentiles over every request; a failed one counts as slower than any."""
    latencies = sorted(r["ms"] if r["status"] == ok_status else math.inf for r in results)
    errors = {}
    for r in results:
        if r["status"] != ok_status:
            key = r["error"] or f"status {r['status']}"
            errors[key] = errors.get(key, 0) + 1
    ok = sum(1 for r in results if r["status"] == ok_status)
    good = [r["ms"] for r in results if r["status"] == ok_status]
    return {
        "requests": len(results),
        "ok": ok,
        "success": round(ok / len(results), 5) if results else None,
        "p50_ms": percentile(latencies, 0.50),
        "p90_ms": percentile(latencies, 0.90),
        "p99_ms": percentile(latencies, 0.99),
        "max_ok_ms": round(max(good), 3) if good else None,
        "errors": errors,
    }


# --- wait: start-up -----------------------------------------------------------------------------------


async def wait(target, path, ready_file, timeout, interval=0.01):
    """Poll until the first 200; note when ready_file appeared. Times are CLOCK_MONOTONIC seconds."""
    deadline = time.monotonic() + timeout
    seen_ready = None
    attempts = 0
    while time.monotonic() < deadline and attempts < timeout / interval + 10:
        attempts += 1
        if ready_file and seen_ready is None and os.path.exists(ready_file):
            seen_ready = time.monotonic()
        result = await fetch(target, path, timeout=2)
        if result["status"] == 200:
            if ready_file and seen_ready is None and os.path.exists(ready_file):
                seen_ready = time.monotonic()
            return {"first_200": time.monotonic(), "ready_file": seen_ready, "attempts": attempts}
        await asyncio.sleep(interval)
    return {"first_200": None, "ready_file": seen_ready, "attempts": attempts}


# --- latency and throughput -----------------------------------------------------------------------------


async def latency(targets, path, count, timeout=5):
    """Sequential requests, alternating between targets so that drift in a noisy machine hits both."""
    results = {target: [] for target in targets}
    deadline = time.monotonic() + count * len(targets) * timeout
    for _ in range(count):
        for target in targets:
            if time.monotonic() > deadline:
                break
            results[target].append(await fetch(target, path, timeout))
    return {target: summarize(values) for target, values in results.items()}


async def closed_loop(client, concurrency, results):
    """Run `concurrency` copies of `client` to their end; the summary of what they put in `results`."""
    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    summary = summarize(results)
    summary["seconds"] = round(elapsed, 3)
    summary["ok_per_s"] = round(summary["ok"] / elapsed, 1)
    return summary


async def throughput(target, path, concurrency, seconds, timeout=10, max_requests=2_000_000):
    """Closed loop: `concurrency` clients, each sending its next request as soon as the last one ends."""
    results = []
    deadline = time.monotonic() + seconds

    async def client():
        while time.monotonic() < deadline and len(results) < max_requests:
            results.append(await fetch(target, path, timeout))

    return await closed_loop(client, concurrency, results)


async def throughput_kept_alive(target, path, concurrency, seconds, timeout=10, max_requests=2_000_000):
    """Closed loop as throughput(), each client on one connection it keeps for its requests, as Heroku's
    router keeps its connections to a dyno; a new one only when the server closes it."""
    results = []
    deadline = time.monotonic() + seconds
    request = REQUEST.format(method="GET", path=path, extra="").replace("Connection: close\r\n", "").encode()

    async def connect():
        kind, _, where = target.partition(":")
        if kind == "unix":
            return await asyncio.open_unix_connection(where)
        host, _, port = where.rpartition(":")
        return await asyncio.open_connection(host, int(port))

    async def client():
        connection = None
        while time.monotonic() < deadline and len(results) < max_requests:
            started = time.monotonic()
            result = {"start": started, "ms": None, "status": None, "error": None}
            try:
                async with asyncio.timeout(timeout):
                    if connection is None:
                        connection = await connect()
                    reader, writer = connection
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    headers = head.lower()
                    length = re.search(rb"\r\ncontent-length:\s*(\d+)", headers)
                    if length:
                        await reader.readexactly(int(length[1]))
                    closes = b"\r\nconnection: close" in headers or (
                        headers.startswith(b"http/1.0") and b"\r\nconnection: keep-alive" not in headers
                    )
                    if not length or closes:
                        await reader.read()  # to the end: the server closes this connection
                        writer.close()
                        connection = None
                result["status"] = status_of(head[:64])
                result["ms"] = (time.monotonic() - started) * 1000
            except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
                result["error"] = error_name(error)
                if connection is not None:
                    connection[1].close()
                connection = None
            results.append(result)
        if connection is not None:
            connection[1].close()

    return await closed_loop(client, concurrency, results)


def wrk_command(url, concurrency, seconds, timeout=10):
    """wrk (C, epoll) for the high-concurrency runs, where a Python client would need a core of its own."""
    return [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{seconds}s",
        f"--timeout={timeout}s",
        "--latency",
        "-H",
        "X-Forwarded-Proto: https",
        "-H",
        "Host: localhost",
        url,
    ]


def parse_wrk(output, seconds):
    """The figures of wrk's --latency report; ok_per_s counts only 2xx/3xx responses."""
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def ms(text):
        match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
        return round(float(match[1]) * units[match[2]], 3) if match else None

    result = {"percentiles_ms": {}}
    for pct, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.M):
        result["percentiles_ms"][pct] = ms(value)
    match = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    requests = int(match[1]) if match else 0
    elapsed = float(match[2]) * {"s": 1, "ms": 0.001, "m": 60}.get(match[3], 1) if match else seconds
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["requests"] = requests
    result["non_2xx"] = int(non_2xx[1]) if non_2xx else 0
    result["socket_errors"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)) if errors else {}
    )
    result["seconds"] = elapsed
    result["ok_per_s"] = round((requests - result["non_2xx"]) / elapsed, 1) if elapsed else None
    return result


# --- slow clients and the fast-client probe -------------------------------------------------------------


class SlowClient:
    """One slow uploader or reader; its state is read when the probe window ends."""

    def __init__(self):
        self.connected = self.responded = self.finished = False
        self.bytes = 0
        self.status = None
        self.error = None


async def slow_reader(target, path, client, deadline):
    """GET a large response and read it at about 1 KB/s through a small receive window."""
    loop = asyncio.get_running_loop()
    sock, address = new_socket(target, rcvbuf=SLOW_RCVBUF)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, address), max(0.1, deadline - time.monotonic()))
        client.connected = True
        await loop.sock_sendall(sock, request_bytes(path))
        for _ in range(20_000_000 // READ_CHUNK):  # bounded by the response size as well as the deadline
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            chunk = await asyncio.wait_for(loop.sock_recv(sock, READ_CHUNK), remaining)
            if not chunk:
                client.finished = True
                break
            if not client.responded:
                client.responded, client.status = True, status_of(chunk[:64])
            client.bytes += len(chunk)
            await asyncio.sleep(len(chunk) / READ_CHUNK)
    except (TimeoutError, OSError) as error:
        if time.monotonic() < deadline:
            client.error = error_name(error)
    finally:
        sock.close()


async def slow_uploader(target, path, client, deadline):
    """POST a 100 KB body at about 1 KB/s; note it if the server answers or hangs up before the end."""
    loop = asyncio.get_running_loop()
    sock, address = new_socket(target, sndbuf=SLOW_SNDBUF)
    extra = f"Content-Type: application/octet-stream\r\nContent-Length: {UPLOAD_BYTES}\r\n"
    chunk = b"u" * READ_CHUNK
    try:
        await asyncio.wait_for(loop.sock_connect(sock, address), max(0.1, deadline - time.monotonic()))
        client.connected = True
        await loop.sock_sendall(sock, request_bytes(path, "POST", extra))
        while client.bytes < UPLOAD_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.wait_for(loop.sock_sendall(sock, chunk), remaining)
            client.bytes += len(chunk)
            await asyncio.sleep(1.0)
        if client.bytes >= UPLOAD_BYTES:
            head = await asyncio.wait_for(loop.sock_recv(sock, 64), max(0.1, deadline - time.monotonic()))
            client.responded, client.finished, client.status = True, True, status_of(head)
    except (TimeoutError, OSError) as error:
        if time.monotonic() < deadline:
            client.error = error_name(error)
    finally:
        sock.close()


async def open_loop(target, path, rate, seconds, timeout):
    """The fast clients: a new connection every 1/rate s whatever happened to the previous ones."""
    loop = asyncio.get_running_loop()
    count = int(rate * seconds)
    start = loop.time()
    tasks = []
    for index in range(count):
        delay = start + index / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fetch(target, path, timeout)))
    return await asyncio.gather(*tasks)


async def slow_phase(args):
    """N slow clients connect over `ramp` s, `settle` s pass, then the probe runs for `probe_seconds`."""
    loop = asyncio.get_running_loop()
    clients = [SlowClient() for _ in range(args.clients)]
    reading = args.kind in ("read", "read-large")  # the two differ only in the file run.py names
    worker = slow_reader if reading else slow_uploader
    path = args.read_path if reading else args.upload_path
    hold_until = time.monotonic() + args.ramp + args.settle + args.probe_seconds + args.probe_timeout + 5
    tasks = []
    started = loop.time()
    for index, client in enumerate(clients):
        delay = started + index * args.ramp / max(1, args.clients) - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(worker(args.target, path, client, hold_until)))
    await asyncio.sleep(max(0.0, started + args.ramp + args.settle - loop.time()))
    at_probe = snapshot(clients)
    window_started = time.time()  # wall clock, to line the slowest probes up with the dyno's log
    probe = await open_loop(args.target, args.probe_path, args.probe_rate, args.probe_seconds, args.probe_timeout)
    at_end = snapshot(clients)
    if args.hold_file:
        # Let the caller measure the dyno (memory) while every slow client is still there.
        with open(args.hold_file, "w") as marker:
            marker.write("holding\n")
        await asyncio.sleep(args.hold_seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    summary = summarize(probe)
    summary["timeline"] = timeline(probe, args.probe_seconds)
    summary["slowest"] = slowest(probe)
    summary["window_started"] = (
        time.strftime("%H:%M:%S", time.localtime(window_started)) + f"{window_started % 1:.2f}"[1:]
    )
    return {"probe": summary, "slow_at_probe_start": at_probe, "slow_at_probe_end": at_end}


def snapshot(clients):
    errors = {}
    for client in clients:
        if client.error:
            errors[client.error] = errors.get(client.error, 0) + 1
    return {
        "clients": len(clients),
        "connected": sum(c.connected for c in clients),
        "responded": sum(c.responded for c in clients),
        "finished": sum(c.finished for c in clients),
        "bytes": sum(c.bytes for c in clients),
        "statuses": sorted({c.status for c in clients if c.status is not None}),
        "errors": errors,
    }


def slowest(results, count=10):
    """The slowest requests as [seconds into the window, ms (None: failed), error]: spread or bunched?"""
    if not results:
        return []
    start = results[0]["start"]
    ranked = sorted(results, key=lambda r: -(math.inf if r["status"] != 200 else r["ms"]))[:count]
    return [
        [round(r["start"] - start, 2), None if r["status"] != 200 else round(r["ms"], 1), r["error"]] for r in ranked
    ]


def timeline(results, seconds):
    """Success rate per second of the probe window, to see whether failures are spread or bunched."""
    if not results:
        return []
    start = results[0]["start"]
    buckets = [[0, 0] for _ in range(max(1, math.ceil(seconds)))]
    for r in results:
        index = min(len(buckets) - 1, int(r["start"] - start))
        buckets[index][0] += 1
        buckets[index][1] += r["status"] == 200
    return [round(ok / sent, 3) if sent else None for sent, ok in buckets]


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("wait")
    p.add_argument("--target", required=True)
    p.add_argument("--path", default="/health/")
    p.add_argument("--ready-file")
    p.add_argument("--timeout", type=float, default=60)
    p = sub.add_parser("latency")
    p.add_argument("--target", action="append", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--count", type=int, default=300)
    p = sub.add_parser("throughput")
    p.add_argument("--target", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--keep-alive", action="store_true", help="one connection per client, as Heroku's router")
    p = sub.add_parser("slow")
    p.add_argument("--target", required=True)
    p.add_argument("--kind", choices=["upload", "read", "read-large"], required=True)
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--read-path", required=True)
    p.add_argument("--upload-path", required=True)
    p.add_argument("--probe-path", default="/health/")
    p.add_argument("--probe-rate", type=float, default=50)
    p.add_argument("--probe-seconds", type=float, default=20)
    p.add_argument("--probe-timeout", type=float, default=5)
    p.add_argument("--ramp", type=float, default=2)
    p.add_argument("--settle", type=float, default=3)
    p.add_argument("--hold-file")
    p.add_argument("--hold-seconds", type=float, default=2)
    args = parser.parse_args(argv)

    # Hundreds of slow clients plus the probes in flight: raise the descriptor limit to the hard one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.command == "wait":
        result = asyncio.run(wait(args.target, args.path, args.ready_file, args.timeout))
    elif args.command == "latency":
        result = asyncio.run(latency(args.target, args.path, args.count))
    elif args.command == "throughput":
        measure = throughput_kept_alive if args.keep_alive else throughput
        result = asyncio.run(measure(args.target, args.path, args.concurrency, args.seconds))
    else:
        result = asyncio.run(slow_phase(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
