#!/usr/bin/env python3
"""A stand-in for Heroku's router, put in front of every stack the benchmark measures (ours and the peers):
Debian's nginx, configured to what Heroku's "HTTP Routing" article documents and no more.

    python3 benchmarks/router.py --listen 127.0.0.1:8080 --backend 127.0.0.1:5000

It writes the config below into a scratch directory, runs `nginx -p DIR -c router.conf` in the foreground,
prints "ready" on stderr once the port accepts connections, and stops nginx when it is stopped itself
(SIGTERM, SIGINT) or its parent dies. A proxy built for the job, so that it takes a small share of the cores
it shares with the dyno it fronts (`routercost.py` measures how much it passes).

Each setting quotes the article (https://devcenter.heroku.com/articles/http-routing). Not modelled: TLS
(terminated before the router on Heroku), HTTP/2, request distribution across dynos (one router stands in
front of one dyno), the router's own network hop.
"""

import argparse
import ctypes
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
FIRST_BYTE_TIMEOUT = 30  # H12: "the application has 30 seconds to respond" (the first byte)
IDLE_TIMEOUT = 55  # H15: then "each byte transmitted... resets a rolling 55 second window"
DYNO_KEEPALIVE = 90  # Router 2.0 closes a kept-alive connection to the dyno after 90 s idle
RESPONSE_BUFFER = 1 << 20  # "a 1MB buffer for responses from the dyno per connection"
BUFFER_PAGE = 16384  # nginx holds the response in pages of this size: RESPONSE_BUFFER / BUFFER_PAGE of them
# The kernel's own buffers on the client's socket, kept small so that what the router holds for a slow
# reader is RESPONSE_BUFFER and little more (loopback autotuning would add megabytes). Its socket to the dyno
# is held the same way by the dyno's network namespace (nsinit.py's tcp_rmem).
KERNEL_BUFFER = 65536

CONFIG = """\
daemon off;
# One process, no master: the stand-in runs on the cores of the dyno it fronts, so it should cost as little
# as it can (one nginx process passes several times what a 2-core dyno serves: routercost.py), and it dies
# with router.py (a master's workers would outlive a killed master).
master_process off;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;

events {{
	use epoll;
	worker_connections {connections};
	multi_accept on;
}}

http {{
	access_log off;
	server_tokens off;
	client_body_temp_path {prefix}/client_body;
	proxy_temp_path {prefix}/proxy;
	fastcgi_temp_path {prefix}/fastcgi;
	uwsgi_temp_path {prefix}/uwsgi;
	scgi_temp_path {prefix}/scgi;

	# "Request buffering": "a router sets up an 8KB receive buffer and begins reading the HTTP request
	# line and request headers. Each of these can be at most 8KB in length, but together can be more than
	# 8KB in total. Requests containing a request line or header line longer than 8KB will be dropped by the
	# router without being dispatched." nginx answers 414 or 400 to those, and does not dispatch them.
	client_header_buffer_size 8k;
	large_client_header_buffers 8 8k;
	# "The dyno is protected from slow clients until the request body needs to be read": once the headers
	# are in, the request goes to the dyno and its body follows as it arrives.
	proxy_request_buffering off;
	client_max_body_size 0;

	# "Response buffering": "The router maintains a 1MB buffer for responses from the dyno per connection.
	# This means that you can send a response up to 1MB in size before the rate at which the client receives
	# the response will affect the dyno". Nothing beyond it goes to a temporary file: once the 1 MB is full,
	# nginx reads from the dyno only as fast as the client reads.
	proxy_buffering on;
	proxy_buffer_size {page};
	proxy_buffers {pages} {page};
	proxy_busy_buffers_size {busy};
	proxy_max_temp_file_size 0;

	# "Timeouts": the response must begin within 30 s (H12, a 503 to the client), then "each byte transmitted
	# (either from the client or from the app) resets a rolling 55 second window" (H15). nginx has one
	# timeout between two reads from the dyno, so the first byte's 30 s is also the window while a response
	# is read; the client's side gets the 55 s.
	proxy_connect_timeout 5s;
	proxy_read_timeout {first_byte}s;
	proxy_send_timeout {idle}s;
	client_body_timeout {idle}s;
	client_header_timeout {idle}s;
	send_timeout {idle}s;
	keepalive_timeout {keepalive}s;
	keepalive_requests 1000000;

	upstream dyno {{
		server {backend} max_fails=0;
		# "Keepalives": Router 2.0 keeps connections to the dyno open between requests, closing them after
		# 90 s idle.
		keepalive 256;
		keepalive_timeout {keepalive}s;
		keepalive_requests 1000000;
	}}

	server {{
		listen {listen} backlog=4096 sndbuf={kernel_buffer} rcvbuf={kernel_buffer};
		# An H12 is a 503 from the router, not nginx's 504.
		error_page 504 =503 /h12;
		location = /h12 {{
			internal;
			return 503 "H12 Request timeout\\n";
		}}
		location / {{
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host $http_host;
			# "X-Forwarded-For: the originating IP address of the client connecting to the Heroku router",
			# "X-Forwarded-Proto: the originating protocol of the HTTP request (example: https)",
			# "X-Forwarded-Port: the originating port of the HTTP request (example: 443)". Heroku's clients
			# arrive over TLS, terminated before the router.
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto https;
			proxy_set_header X-Forwarded-Port 443;
			proxy_set_header X-Request-Id $request_id;
			proxy_pass http://dyno;
		}}
	}}
}}
"""


def render(prefix, listen, backend, first_byte_timeout=FIRST_BYTE_TIMEOUT, idle_timeout=IDLE_TIMEOUT):
    pages = RESPONSE_BUFFER // BUFFER_PAGE
    # Two descriptors per proxied client; the soft limit is raised to the hard one (main), and nginx is
    # given what fits in it.
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return CONFIG.format(
        connections=max(64, min(8192, soft - 64)),
        prefix=prefix,
        listen=listen,
        backend=backend,
        page=f"{BUFFER_PAGE // 1024}k",
        pages=pages,
        # What nginx may be sending to the client while it reads on: all but one page of the buffer.
        busy=f"{(pages - 1) * BUFFER_PAGE // 1024}k",
        first_byte=first_byte_timeout,
        idle=idle_timeout,
        keepalive=DYNO_KEEPALIVE,
        kernel_buffer=KERNEL_BUFFER,
    )


def die_with_parent():
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def wait_until_listening(address, nginx, seconds=20):
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if nginx.poll() is not None:
            return False
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def spawn(listen, backend, *options):
    """This script as a child process on `listen` that dies with its caller, returned once it says "ready"; one
    that does not start is killed (its nginx dies with it) and its output raised, instead of read to an end
    that never comes."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--listen", listen, "--backend", backend, *map(str, options)],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    ready = process.stderr.readline()
    if ready.strip() != "ready":
        process.kill()
        raise RuntimeError(f"router.py did not start: {ready}{process.communicate(timeout=10)[1]}")
    return process


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", default="127.0.0.1:8080", help="host:port the clients connect to")
    parser.add_argument("--backend", default="127.0.0.1:5000", help="the dyno's $PORT")
    parser.add_argument("--timeout", type=int, default=FIRST_BYTE_TIMEOUT, help="H12: seconds to the response")
    parser.add_argument("--idle-timeout", type=int, default=IDLE_TIMEOUT, help="H15: rolling idle window")
    parser.add_argument("--directory", help="for nginx's config and logs (default: a new temporary one)")
    args = parser.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.directory:
        os.makedirs(args.directory, mode=0o755, exist_ok=True)
    prefix = args.directory or tempfile.mkdtemp(prefix="router-")
    os.chmod(prefix, 0o755)
    config = os.path.join(prefix, "router.conf")
    with open(config, "w") as out:
        out.write(render(prefix, args.listen, args.backend, args.timeout, args.idle_timeout))
    # nginx's own start-up messages go to its log, not to this script's stderr, where the first line is "ready".
    with open(os.path.join(prefix, "nginx.out"), "wb") as nginx_out:
        nginx = subprocess.Popen(
            [NGINX, "-p", prefix, "-c", config, "-e", os.path.join(prefix, "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=nginx_out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )

    def stop(*_):
        nginx.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if not wait_until_listening(args.listen, nginx):
            for name in ("nginx.out", "error.log"):
                with open(os.path.join(prefix, name), "a+") as log:
                    log.seek(0)
                    print(log.read()[-2000:], file=sys.stderr)
            return 1
        print("ready", file=sys.stderr, flush=True)
        nginx.wait()
        return 0
    finally:
        if nginx.poll() is None:
            nginx.kill()
            nginx.wait(10)
        if not args.directory:
            shutil.rmtree(prefix, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
