#!/usr/bin/env python3
"""A stand-in for Heroku's router, put in front of every stack the benchmark measures (ours and the peers).

    python3 benchmarks/router.py --listen 127.0.0.1:8080 --backend 127.0.0.1:5000

What it does is what Heroku's "HTTP Routing" article (devcenter.heroku.com/articles/http-routing) documents,
and no more:

- "Request buffering": "a router sets up an 8KB receive buffer and begins reading the HTTP request line and
  request headers. Each of these can be at most 8KB in length, but together can be more than 8KB in total.
  Requests containing a request line or header line longer than 8KB will be dropped by the router without
  being dispatched." Once the headers are in, the request goes to the dyno and its body follows as it
  arrives: "The dyno is protected from slow clients until the request body needs to be read."
- "Response buffering": "The router maintains a 1MB buffer for responses from the dyno per connection. This
  means that you can send a response up to 1MB in size before the rate at which the client receives the
  response will affect the dyno". Here: the connection's write buffer towards the client holds up to
  RESPONSE_BUFFER bytes before the router stops reading from the dyno, and the dyno's connection goes back to
  the pool as soon as the whole response is read.
- "Timeouts": a response must begin within 30 s of the request reaching the dyno, else the client gets a 503
  (H12); after that each byte either way resets a rolling 55 s window (H15 when it runs out).
- Router 2.0 keeps connections to the dyno alive between requests ("Keepalives": closed after 90 s idle),
  which is why servers behind it set keepalive 95 s.

Not modelled: TLS (terminated before the router on Heroku), HTTP/2, request distribution across dynos
(one router stands in front of one dyno), the router's own network hop and its CPU (here it shares the
machine's cores with the dyno it fronts).
"""

import argparse
import asyncio
import socket
import sys
import time

LINE_MAX = 8192  # request line, and each header line: "at most 8KB"
HEAD_MAX = 65536  # "together can be more than 8KB": the article gives no total, this is the stand-in's
RESPONSE_BUFFER = 1 << 20  # "a 1MB buffer for responses from the dyno per connection"
FIRST_BYTE_TIMEOUT = 30  # H12: the response must start within 30 s
IDLE_TIMEOUT = 55  # H15: then a rolling 55 s window, reset by each byte either way
DYNO_KEEPALIVE = 90  # Router 2.0 closes a kept-alive connection to the dyno after 90 s idle
# The kernel's own buffers on the router's two sockets, kept small (the kernel doubles this) so that what
# the router holds for a connection is RESPONSE_BUFFER and little more: loopback autotuning would otherwise
# add up to tcp_rmem's maximum (32 MB here) and make every response "fit".
KERNEL_BUFFER = 65536
CHUNK = 65536
HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"}


class Dropped(Exception):
    """The request is dropped without being dispatched (a line over the limit, a malformed head)."""


async def within(awaitable, seconds):
    """await with a deadline, without the task asyncio.wait_for makes per call (the router's hot path)."""
    async with asyncio.timeout(seconds):
        return await awaitable


async def read_line(reader, timeout):
    """One CRLF-terminated line of at most LINE_MAX bytes (chunk sizes and trailers)."""
    try:
        line = await within(reader.readuntil(b"\n"), timeout)
    except asyncio.LimitOverrunError as error:
        raise Dropped("line over 8 KB") from error
    except asyncio.IncompleteReadError as error:
        if error.partial:
            raise Dropped("connection closed inside a line") from error
        return None
    if len(line) > LINE_MAX:
        raise Dropped("line over 8 KB")
    return line


async def read_head(reader, timeout):
    """(first line, [(name, value)]) or None at a clean end of the connection. Each line at most 8 KB;
    the head as a whole may be longer (up to HEAD_MAX here)."""
    try:
        head = await within(reader.readuntil(b"\r\n\r\n"), timeout)
    except asyncio.LimitOverrunError as error:
        raise Dropped("head over the limit") from error
    except asyncio.IncompleteReadError as error:
        if error.partial:
            raise Dropped("connection closed inside a head") from error
        return None
    lines = head[:-4].split(b"\r\n")
    if any(len(line) + 2 > LINE_MAX for line in lines):
        raise Dropped("line over 8 KB")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise Dropped("malformed header line")
        headers.append((name.strip(), value.strip()))
    return lines[0] + b"\r\n", headers


def header(headers, name):
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def body_framing(headers):
    """('chunked', None), ('length', n) or ('none', None) for a request; see response_framing."""
    encoding = header(headers, b"transfer-encoding")
    if encoding and b"chunked" in encoding.lower():
        return "chunked", None
    length = header(headers, b"content-length")
    return ("length", int(length)) if length is not None else ("none", None)


async def copy_body(framing, reader, writer, timeout, until_close=False):
    """Copy a message body as it arrives, each read bounded by the idle timeout. Returns bytes copied."""
    kind, length = framing
    copied = 0
    if kind == "length":
        while copied < length:
            data = await within(reader.read(min(CHUNK, length - copied)), timeout)
            if not data:
                raise ConnectionError("body cut short")
            writer.write(data)
            await writer.drain()
            copied += len(data)
    elif kind == "chunked":
        while True:
            size_line = await read_line(reader, timeout)
            if size_line is None:
                raise ConnectionError("chunked body cut short")
            writer.write(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = await read_line(reader, timeout)
                    if trailer is None:
                        raise ConnectionError("chunked body cut short")
                    writer.write(trailer)
                    if trailer in (b"\r\n", b"\n"):
                        break
                await writer.drain()
                return copied
            await copy_body(("length", size + 2), reader, writer, timeout)
            copied += size
    elif until_close:
        while data := await within(reader.read(CHUNK), timeout):
            writer.write(data)
            await writer.drain()
            copied += len(data)
    return copied


class Router:
    def __init__(self, backend, first_byte_timeout=FIRST_BYTE_TIMEOUT, idle_timeout=IDLE_TIMEOUT,
                 response_buffer=RESPONSE_BUFFER, dyno_keepalive=DYNO_KEEPALIVE):  # fmt: skip
        self.backend = backend
        self.first_byte_timeout = first_byte_timeout
        self.idle_timeout = idle_timeout
        self.response_buffer = response_buffer
        self.dyno_keepalive = dyno_keepalive
        self.idle = []  # (reader, writer, since): kept-alive connections to the dyno
        self.stats = {"requests": 0, "dyno_connections": 0, "h12": 0, "dropped": 0, "dyno_errors": 0}

    async def dyno_connection(self):
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since < self.dyno_keepalive and not reader.at_eof():
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*self.backend, limit=HEAD_MAX), 10)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, KERNEL_BUFFER)
        self.stats["dyno_connections"] += 1
        return reader, writer, False

    async def serve_client(self, client_reader, client_writer):
        # The response buffer: the router reads from the dyno until this much waits for the client.
        client_writer.transport.set_write_buffer_limits(high=self.response_buffer)
        client_writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_BUFFER)
        peer = client_writer.get_extra_info("peername") or ("127.0.0.1", 0)
        try:
            while await self.one_request(client_reader, client_writer, peer[0]):
                pass
        except Dropped:
            self.stats["dropped"] += 1
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            client_writer.close()

    async def one_request(self, client_reader, client_writer, client_ip):
        """Route one request; True when the client connection stays open for another."""
        head = await read_head(client_reader, self.idle_timeout)
        if head is None:
            return False
        first, headers = head
        parts = first.split()
        if len(parts) != 3:
            raise Dropped("malformed request line")
        method, version = parts[0], parts[2]
        self.stats["requests"] += 1
        client_close = (header(headers, b"connection") or b"").lower() == b"close" or version == b"HTTP/1.0"
        forwarded = [
            (k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and not k.lower().startswith(b"x-forwarded-")
        ]
        prior = header(headers, b"x-forwarded-for")
        forwarded += [
            (b"X-Forwarded-For", (prior + b", " if prior else b"") + client_ip.encode()),
            (b"X-Forwarded-Proto", b"https"),  # Heroku's clients arrive over TLS, terminated before the router
            (b"X-Forwarded-Port", b"443"),
            (b"X-Request-Start", str(int(time.time() * 1000)).encode()),
        ]
        request_head = b"%s %s HTTP/1.1\r\n" % (parts[0], parts[1]) + b"".join(
            k + b": " + v + b"\r\n" for k, v in forwarded
        )
        request_head += b"\r\n"
        framing = body_framing(headers)
        for attempt in range(2):
            try:
                dyno_reader, dyno_writer, reused = await self.dyno_connection()
            except (TimeoutError, OSError):
                self.stats["dyno_errors"] += 1
                await self.error(client_writer, b"503 Service Unavailable")
                return False
            try:
                dyno_writer.write(request_head)
                await dyno_writer.drain()
                # The body is streamed as it arrives: a slow uploader holds the dyno's connection.
                await copy_body(framing, client_reader, dyno_writer, self.idle_timeout)
                response = await read_head(dyno_reader, self.first_byte_timeout)
            except TimeoutError:
                self.stats["h12"] += 1
                dyno_writer.close()
                await self.error(client_writer, b"503 Service Unavailable")  # H12
                return False
            except (ConnectionError, Dropped):
                dyno_writer.close()
                response = None
            if response is not None:
                break
            dyno_writer.close()
            if not (reused and framing[0] == "none" and attempt == 0):
                self.stats["dyno_errors"] += 1
                await self.error(client_writer, b"503 Service Unavailable")
                return False
            # A kept-alive connection the dyno had just closed: once more on a new one, as nothing was sent.
        status_line, response_headers = response
        status = int(status_line.split()[1])
        dyno_close = (header(response_headers, b"connection") or b"").lower() == b"close" or status_line.startswith(
            b"HTTP/1.0"
        )
        if method == b"HEAD" or status in (204, 304) or 100 <= status < 200:
            response_framing, until_close = ("length", 0), False
        else:
            response_framing = body_framing(response_headers)
            until_close = response_framing[0] == "none"
        keep = [(k, v) for k, v in response_headers if k.lower() not in HOP_BY_HOP]
        if until_close or client_close:
            keep.append((b"Connection", b"close"))
        client_writer.write(
            status_line.replace(b"HTTP/1.0", b"HTTP/1.1") + b"".join(k + b": " + v + b"\r\n" for k, v in keep) + b"\r\n"
        )
        try:
            # drain() waits only while more than the response buffer is queued for the client, so a response
            # that fits is read from the dyno at once, however slowly the client reads it.
            await copy_body(response_framing, dyno_reader, client_writer, self.idle_timeout, until_close)
        except BaseException:
            dyno_writer.close()
            raise
        if dyno_close or until_close:
            dyno_writer.close()
        else:
            self.idle.append((dyno_reader, dyno_writer, time.monotonic()))
        if until_close or client_close:
            await asyncio.wait_for(client_writer.drain(), self.idle_timeout)
            return False
        return True

    async def error(self, client_writer, status):
        body = b"<h1>Application error</h1>\n"
        client_writer.write(
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            + body
        )
        try:
            await asyncio.wait_for(client_writer.drain(), 5)
        except (TimeoutError, ConnectionError):
            pass

    async def start(self, host, port):
        return await asyncio.start_server(self.serve_client, host, port, limit=HEAD_MAX, backlog=4096)


def address(text):
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def main(args):
    router = Router(address(args.backend), args.timeout, args.idle_timeout, args.response_buffer)
    server = await router.start(*address(args.listen))
    print("ready", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", default="127.0.0.1:8080", help="host:port the clients connect to")
    parser.add_argument("--backend", default="127.0.0.1:5000", help="the dyno's $PORT")
    parser.add_argument("--timeout", type=float, default=FIRST_BYTE_TIMEOUT, help="H12: seconds to the response")
    parser.add_argument("--idle-timeout", type=float, default=IDLE_TIMEOUT, help="H15: rolling idle window")
    parser.add_argument("--response-buffer", type=int, default=RESPONSE_BUFFER, help="bytes per connection")
    try:
        asyncio.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        pass
