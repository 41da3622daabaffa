#!/usr/bin/env python3
"""PID 1 of one benchmark "dyno": a private /tmp and loopback, a PostgreSQL forwarder, then bin/dyno.

stack.py starts it as root with

    unshare --mount --net --pid --fork --mount-proc --propagation private --kill-child -- python3 nsinit.py CONFIG

so it runs in fresh mount, network and PID namespaces. Why each:
  - mount: the buildpacks' fixed paths (/tmp/nginx.socket, /tmp/app-initialized, PgBouncer's admin socket
    in /tmp) get a tmpfs of their own, so two dynos, and the template's own test suite, can run at once;
  - network: PgBouncer's fixed 127.0.0.1:6000 and PORT exist once per dyno, and the loopback gets an
    ordinary Ethernet MTU (1500) instead of 65536, so the kernel sizes TCP send buffers the way it does on
    a real network (with 64 KB segments it lets a server queue ~4 MB for a client that reads nothing,
    and no slow client would ever hold a worker);
  - PID: when this process ends, for whatever reason, the kernel kills everything left in the namespace.

PostgreSQL stays outside, on the host's 127.0.0.1. This process listens on the namespace's
127.0.0.1:<listen_port> and relays each connection to it over TCP, so password (SCRAM) and TLS
negotiation happen exactly as they would for a remote server. The outgoing sockets are created in the
host's network namespace (setns to a descriptor of it that the parent passed down). The relay counts
connections, which gives exact per-dyno figures: backends now, their peak, and connections opened.

The config (a JSON file) names the command to run as the ordinary user; SIGTERM is passed on to it (then
SIGKILL after `grace` seconds), SIGUSR1 resets the peak. Stats go to `stats_path` every 0.2 s.
"""

import asyncio
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


class Relay:
    """127.0.0.1:listen_port here -> PostgreSQL on the host's 127.0.0.1:pg_port, with counters."""

    def __init__(self, config):
        self.host_netns = config["host_netns_fd"]
        self.own_netns = os.open("/proc/self/ns/net", os.O_RDONLY)
        self.target = (config.get("pg_host", "127.0.0.1"), config["pg_port"])
        self.listen_port = config.get("listen_port", 5432)
        self.stats_path = config["stats_path"]
        self.current = self.opened = self.peak = self.failed = 0
        self.bytes = 0
        self.extra = {}
        self.dirty = True

    def host_socket(self):
        # A socket belongs to the network namespace its creator was in at socket() time: step into the
        # host's for that one call. Single-threaded event loop, so nothing else runs in between.
        setns(self.host_netns)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        finally:
            setns(self.own_netns)
        # asyncio turns Nagle off only for sockets whose proto is IPPROTO_TCP; say so explicitly anyway:
        # with Nagle on, the TLS handshake's small writes wait for delayed ACKs, 40 ms per connection.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    async def start(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", self.listen_port, backlog=1024)

    async def handle(self, client_reader, client_writer):
        self.opened += 1
        self.current += 1
        self.peak = max(self.peak, self.current)
        self.dirty = True
        upstream_writer = None
        try:
            sock = self.host_socket()
            sock.setblocking(False)
            try:
                await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, self.target), 10)
            except BaseException:
                sock.close()
                raise
            upstream_reader, upstream_writer = await asyncio.open_connection(sock=sock)
            await asyncio.gather(self.pipe(client_reader, upstream_writer), self.pipe(upstream_reader, client_writer))
        except (TimeoutError, OSError):
            self.failed += 1
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    writer.close()
            self.current -= 1
            self.dirty = True

    async def pipe(self, reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self.bytes += len(data)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            # Half-close: let the other direction finish (PostgreSQL's goodbye after a Terminate).
            try:
                writer.write_eof()
            except (OSError, RuntimeError):
                pass

    def reset_peak(self):
        self.peak = self.current
        self.dirty = True
        self.write_stats()

    def write_stats(self):
        times = os.times()
        stats = {
            "monotonic": time.monotonic(),
            "current": self.current,
            "opened": self.opened,
            "peak": self.peak,
            "failed": self.failed,
            "bytes": self.bytes,
            # CPU used by this process (the relay): it is not part of a dyno, so it is reported apart.
            "relay_cpu_s": times.user + times.system,
            **self.extra,
        }
        partial = self.stats_path + ".part"
        with open(partial, "w") as out:
            json.dump(stats, out)
        os.replace(partial, self.stats_path)
        self.dirty = False

    async def write_stats_forever(self):
        while True:
            self.write_stats()
            await asyncio.sleep(0.2)


def prepare_namespace(mtu):
    """A private /tmp (the buildpacks' fixed paths), the loopback up with an Ethernet MTU, bounded TCP buffers."""
    mount = shutil.which("mount", path=SBIN_PATH)
    ip = shutil.which("ip", path=SBIN_PATH)
    subprocess.run([mount, "-t", "tmpfs", "-o", "mode=1777,size=4g", "dyno-tmp", "/tmp"], check=True)
    subprocess.run([ip, "link", "set", "lo", "mtu", str(mtu), "up"], check=True)
    # TCP receive buffers in this namespace stop at 128 KB (the kernel's own default size), where loopback
    # autotuning would let them grow to megabytes: the router stand-in's socket to the dyno then holds what a
    # router's would, and a response beyond its 1 MB buffer still reaches the dyno's writer (router.py).
    with open("/proc/sys/net/ipv4/tcp_rmem", "w") as tcp_rmem:
        tcp_rmem.write("4096 131072 131072")


async def main(config):
    prepare_namespace(config.get("mtu", 1500))
    relay = Relay(config)
    await relay.start()
    if config.get("redis_port"):
        # The worker scale-out's Redis broker: the host's redis-server on the namespace's 127.0.0.1:6379.
        redis = Relay({**config, "pg_port": config["redis_port"], "listen_port": 6379})
        await redis.start()
    stats_task = asyncio.create_task(relay.write_stats_forever())
    loop = asyncio.get_running_loop()
    log = open(config["log_path"], "ab")  # noqa: SIM115 - the child writes to it for its whole life
    relay.extra["command_started"] = time.monotonic()
    child = await asyncio.create_subprocess_exec(
        *config["argv"],
        cwd=config["cwd"],
        env=config["env"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        user=config["uid"],
        group=config["gid"],
        extra_groups=[],
        umask=0o022,
        start_new_session=True,
    )
    log.close()
    relay.extra["command_pid"] = child.pid
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    loop.add_signal_handler(signal.SIGUSR1, relay.reset_peak)

    waiter = asyncio.create_task(child.wait())
    stop_request = asyncio.create_task(stopping.wait())
    await asyncio.wait({waiter, stop_request}, return_when=asyncio.FIRST_COMPLETED)
    if not waiter.done():
        # What Heroku does to a dyno: SIGTERM, then SIGKILL after the grace period.
        child.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), config.get("grace", 35))
        except TimeoutError:
            child.kill()
            await asyncio.wait_for(waiter, 10)
    relay.extra["command_exit"] = waiter.result()
    relay.extra["command_ended"] = time.monotonic()
    stop_request.cancel()
    stats_task.cancel()
    relay.server.close()
    relay.write_stats()
    # Returning ends PID 1: the kernel kills whatever is left in the namespace.
    return waiter.result()


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        settings = json.load(handle)
    code = asyncio.run(main(settings))
    sys.exit(code if isinstance(code, int) and code >= 0 else 1)
