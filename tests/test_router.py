"""The benchmark's stand-in for Heroku's router (benchmarks/router.py, Debian's nginx configured to Heroku's HTTP
Routing article) behaves as the article says: a response that fits its 1 MB buffer frees the dyno however slowly
the client reads, a larger one does not (tried at 256 KB and 8 MB, and on each side of 1 MB: 64 KB below it, and
64 KB beyond it plus what the kernel's socket buffers hold on the way); request bodies are streamed, not
buffered; no response within the timeout is a 503 (H12); a request line over 8 KB is dropped undispatched;
connections to the dyno are kept alive.

Loopback only: a small socket server in this process stands in for the dyno, router.py runs nginx."""

import os
import shutil
import socket
import sys
import tempfile
import threading
import time

import pytest

import realstack as rs
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import router  # noqa: E402

SMALL = 256 * 1024  # well inside the router's 1 MB response buffer
LARGE = 8 * 1024 * 1024  # well beyond it and every kernel buffer on the way
# The kernel holds part of a response on the way as well: the client's socket (KERNEL_BUFFER, which the kernel
# doubles, and the client's 16 KB) and the dyno's 16 KB.
KERNEL_SLACK = 4 * router.KERNEL_BUFFER
# Heroku's figure, not the stand-in's own constant: "The router maintains a 1MB buffer for responses from the
# dyno per connection" (https://devcenter.heroku.com/articles/http-routing#response-buffering).
HEROKU_BUFFER = 1 << 20
JUST_INSIDE = HEROKU_BUFFER - 4 * router.BUFFER_PAGE
JUST_BEYOND = HEROKU_BUFFER + KERNEL_SLACK + 4 * router.BUFFER_PAGE


class Dyno:
    """A backend that records what it received and when it finished writing each response."""

    def __init__(self):
        # On a Unix socket: the router's side of it holds no more than the dyno's 16 KB send buffer, where
        # a TCP socket's receive buffer would autotune to megabytes on this loopback (in the benchmark, the
        # dyno's network namespace caps it: nsinit.py's tcp_rmem).
        self.directory = tempfile.mkdtemp(prefix="router-dyno-")
        self.address = f"{self.directory}/dyno.sock"
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(self.address)
        os.chmod(self.directory, 0o755)
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.connections = 0
        self.heads = []  # (time, request line) as each request head arrived
        self.body_bytes = {}  # request line -> body bytes received so far
        self.sent = {}  # request line -> time its response was completely written
        self.stopping = False
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self):
        while not self.stopping:
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            # A small send buffer: the dyno's write blocks as soon as the router stops reading.
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def serve(self, connection):
        stream = connection.makefile("rb")
        with connection:
            while not self.stopping:
                line = stream.readline()
                if not line:
                    return
                request = line.decode().split()[1]
                self.heads.append((time.monotonic(), request))
                length = 0
                while (header := stream.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                self.body_bytes[request] = 0
                while self.body_bytes[request] < length:
                    chunk = stream.read1(min(65536, length - self.body_bytes[request]))
                    if not chunk:
                        return
                    self.body_bytes[request] += len(chunk)
                kind, _, value = request.strip("/").partition("/")
                if kind == "sleep":
                    time.sleep(float(value))
                size = int(value) if kind == "size" else 2
                try:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size)
                except OSError:
                    return
                self.sent[request] = time.monotonic()

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.listener.close()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def dyno():
    backend = Dyno()
    yield backend
    backend.close()


def start_router(dyno, *options):
    port = rs.free_port()
    try:
        process = router.spawn(f"127.0.0.1:{port}", f"unix:{dyno.address}", *options)
    except RuntimeError as error:
        pytest.fail(str(error))

    def stop():
        process.terminate()
        process.wait(10)

    return port, stop


@pytest.fixture
def routed(dyno):
    port, stop = start_router(dyno)
    yield port
    stop()


def slow_client(port, path):
    """A client with a 16 KB receive window that sends a request and reads nothing yet."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    client.settimeout(30)
    client.connect(("127.0.0.1", port))
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: app\r\n\r\n".encode())
    return client


def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def read_all(client, expected):
    received = b""
    while len(received) < expected:
        chunk = client.recv(1 << 20)
        if not chunk:
            break
        received += chunk
    return received


@pytest.mark.parametrize("size", [SMALL, JUST_INSIDE], ids=["256KB", "1MB-64KB"])
def test_a_slow_reader_of_a_response_inside_the_buffer_frees_the_dyno_at_once(dyno, routed, size):
    port = routed
    path = f"/size/{size}"
    with slow_client(port, path) as client:
        assert wait_for(lambda: path in dyno.sent, 10), "the dyno still writes a response that fits the buffer"
        assert len(read_all(client, size)) >= size


@pytest.mark.parametrize("size", [JUST_BEYOND, LARGE], ids=["1MB+kernel+64KB", "8MB"])
def test_a_slow_reader_of_a_response_beyond_the_buffer_holds_the_dyno(dyno, routed, size):
    port = routed
    path = f"/size/{size}"
    with slow_client(port, path) as client:
        assert wait_for(lambda: dyno.heads, 10)
        time.sleep(2)  # ample for 8 MB on loopback, had anything buffered it all
        assert path not in dyno.sent, f"the router buffered {size:,} bytes, beyond its 1 MB and the kernel's"
        received = read_all(client, size)
        head, _, body = received.partition(b"\r\n\r\n")
        while len(body) < size:
            chunk = client.recv(1 << 20)
            assert chunk, "the response was cut short"
            body += chunk
        assert head.startswith(b"HTTP/1.1 200") and len(body) == size
    assert wait_for(lambda: path in dyno.sent, 10)


def test_the_request_body_is_streamed_to_the_dyno_as_it_arrives(dyno, routed):
    port = routed
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(b"POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: 100000\r\n\r\n" + b"y" * 1000)
        # Dispatched on its headers, the first part of the body already at the dyno: a slow uploader holds it.
        assert wait_for(lambda: dyno.body_bytes.get("/upload") == 1000, 10)
        client.sendall(b"y" * 99000)
        assert read_all(client, 1).startswith(b"HTTP/1.1 200")
        assert wait_for(lambda: dyno.body_bytes.get("/upload") == 100000, 10)


def test_no_response_within_the_timeout_is_a_503(dyno):
    port, stop = start_router(dyno, "--timeout", "1")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            started = time.monotonic()
            client.sendall(b"GET /sleep/6 HTTP/1.1\r\nHost: app\r\n\r\n")
            answer = read_all(client, 1)
            elapsed = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 503"), answer[:100]
        assert elapsed < 5, f"the 503 came after {elapsed:.1f} s with a 1 s timeout"
        assert dyno.heads and dyno.heads[0][1] == "/sleep/6"
    finally:
        stop()


def test_a_request_line_over_8_kb_is_dropped_without_being_dispatched(dyno, routed):
    port = routed
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(b"GET /size/2?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: app\r\n\r\n")
        answer = read_all(client, 1 << 16)
    assert answer.startswith(b"HTTP/1.1 414"), answer[:100]
    time.sleep(0.5)  # had it been dispatched, the dyno would have its head by now
    assert dyno.heads == []


def test_connections_to_the_dyno_are_kept_alive_between_clients(dyno, routed):
    port = routed
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(b"GET /size/2 HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
            assert read_all(client, 1 << 20).startswith(b"HTTP/1.1 200")
    assert len(dyno.heads) == 3
    assert dyno.connections == 1
