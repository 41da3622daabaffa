#!/usr/bin/env python3
"""What the router stand-in (router.py) can pass on this machine: wrk straight to a trivial keep-alive backend
and through the router, alternated, three times each. run.py measures it the same way in every run and sets it
against the fastest stack it measures (the router must pass at least 3 times that, so that it is not what
limits the stacks behind it).

    .venv/bin/python benchmarks/routercost.py

Needs wrk and nginx. Loopback only.
"""

import asyncio
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from router import spawn  # noqa: E402

import realstack as rs  # noqa: E402

ROUNDS, SECONDS, CONNECTIONS = 3, 4, 32


async def backend(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def requests_per_second(port, seconds=SECONDS, connections=CONNECTIONS):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if failed:
        raise SystemExit(f"routercost: wrk saw failures through port {port}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def measure(rounds=ROUNDS):
    """{"direct": [req/s, ...], "router": [req/s, ...]}, alternated round by round."""
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(backend, "127.0.0.1", 0))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    port, router_port = server.sockets[0].getsockname()[1], rs.free_port()
    with tempfile.TemporaryDirectory(prefix="routercost-") as directory:
        try:
            router = spawn(f"127.0.0.1:{router_port}", f"127.0.0.1:{port}", "--directory", directory)
        except RuntimeError as error:
            raise SystemExit(f"routercost: {error}") from None
        try:
            figures = {"direct": [], "router": []}
            for _ in range(rounds):
                figures["direct"].append(requests_per_second(port))
                figures["router"].append(requests_per_second(router_port))
            return figures
        finally:
            router.terminate()
            router.wait(10)
            loop.call_soon_threadsafe(loop.stop)


def main():
    for name, values in measure().items():
        print(
            f"{name}: {min(values):.0f} to {max(values):.0f} req/s "
            f"(wrk, {CONNECTIONS} connections, {ROUNDS} x {SECONDS} s)"
        )


if __name__ == "__main__":
    main()
