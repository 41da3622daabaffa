#!/usr/bin/env python3
"""What router.py can pass on this machine: wrk straight to a trivial keep-alive backend and through the
router (in its own process, as in the benchmark), alternated, three times each.

    .venv/bin/python benchmarks/routercost.py

The router takes CPU from the same cores as the dyno it fronts; this says how much headroom it leaves at
the request rates the benchmark reaches. Needs wrk. Loopback only.
"""

import asyncio
import re
import subprocess
import sys
import threading
from pathlib import Path

ROUTER = Path(__file__).resolve().parent / "router.py"
ROUTER_PORT = 18080


async def backend(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def requests_per_second(port, seconds=4, connections=32):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main():
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(backend, "127.0.0.1", 0))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    port = server.sockets[0].getsockname()[1]
    router = subprocess.Popen(
        [sys.executable, ROUTER, "--listen", f"127.0.0.1:{ROUTER_PORT}", "--backend", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE,
    )
    try:
        router.stderr.readline()  # "ready"
        figures = {"direct": [], "router": []}
        for _ in range(3):
            figures["direct"].append(requests_per_second(port))
            figures["router"].append(requests_per_second(ROUTER_PORT))
        for name, values in figures.items():
            print(f"{name}: {min(values):.0f} to {max(values):.0f} req/s (wrk, 32 connections, 3 x 4 s)")
    finally:
        router.kill()
        router.wait(10)


if __name__ == "__main__":
    main()
