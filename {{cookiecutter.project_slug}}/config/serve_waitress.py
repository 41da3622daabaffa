"""waitress behind nginx on a Heroku dyno: `python config/serve_waitress.py`.

waitress is one process with a pool of threads. It binds the socket first and only then touches
/tmp/app-initialized, so nginx never starts in front of a socket that does not accept yet.
https://docs.pylonsproject.org/projects/waitress/en/stable/arguments.html
"""

import os
import pkgutil
import signal
import sys
import time
from pathlib import Path

# This file lives in config/; the project package is one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from waitress import create_server, wasyncore  # noqa: E402

from heroku_runtime.pgbouncer import waitress_threads  # noqa: E402

# The project's WSGI callable, named as gunicorn.conf.py and uwsgi.ini name it.
APPLICATION = "{{ cookiecutter.project_slug }}.wsgi:application"

SOCKET = "/tmp/nginx.socket"
READY_FILE = Path("/tmp/app-initialized")
# Heroku sends SIGKILL 30 s after SIGTERM: requests in flight get this long to finish, as with gunicorn's
# graceful_timeout.
GRACEFUL_TIMEOUT = 20


def main():
    server = create_server(
        pkgutil.resolve_name(APPLICATION),
        unix_socket=SOCKET,
        unix_socket_perms="660",
        # Threads share one process's memory; each holds one database connection to PgBouncer, so there are
        # as many as the pool (heroku_runtime/pgbouncer.py).
        # https://docs.pylonsproject.org/projects/waitress/en/stable/arguments.html
        threads=waitress_threads(),
        # Connections beyond connection_limit wait here, in the kernel, in the order nginx opened them (nginx
        # closes each after its response: config/nginx.conf.erb); past the backlog nginx gets a refusal and
        # answers 502 at once.
        backlog=int(os.environ.get("WAITRESS_BACKLOG", "2048")),
        # The event loop goes over every open connection on each turn, in Python, under the GIL the threads
        # need. 100 keeps a turn short and the process far below select()'s 1,024 descriptors
        # (docs/waitress.md, "A burst of connections").
        connection_limit=int(os.environ.get("WAITRESS_CONNECTION_LIMIT", "100")),
        # nginx sends X-Forwarded-Proto; Django reads it through SECURE_PROXY_SSL_HEADER.
        clear_untrusted_proxy_headers=False,
        ident=None,
    )
    # Heroku sends SIGTERM to every process of the dyno. The handler only takes note; serve() stops.
    stopping = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(time.monotonic()))
    READY_FILE.touch()
    print(f"waitress listening on unix:{SOCKET} with {server.adj.threads} threads", flush=True)
    serve(server, stopping)


def serve(server, stopping):
    """server.run() with a graceful stop, which waitress lacks.

    The usual server.close() from a SIGTERM handler closes the sockets under the running event loop,
    which fails and returns at once: the process exits in the middle of its requests (their threads are
    daemon threads) without sending their responses. Here, once SIGTERM has arrived, the listening socket
    is closed, the loop keeps running until every request taken has run and its response is sent, or
    GRACEFUL_TIMEOUT has passed, and only then does the process exit. (This reads a few attributes of
    waitress's server object, none of them documented; checked with waitress 3.0.)
    """
    options = {"map": server._map, "use_poll": server.adj.asyncore_use_poll}
    while not stopping:
        wasyncore.loop(timeout=server.adj.asyncore_loop_timeout, count=1, **options)
    # The listening socket only: server.close() would also close the trigger that threads wake the loop with.
    wasyncore.dispatcher.close(server)
    Path(SOCKET).unlink(missing_ok=True)
    print(f"waitress: SIGTERM, no longer accepting; {in_flight(server)} request(s) in flight", flush=True)
    deadline = stopping[0] + GRACEFUL_TIMEOUT
    while (in_flight(server) or unsent(server)) and time.monotonic() < deadline:
        wasyncore.loop(timeout=0.1, count=1, **options)
    left = in_flight(server)
    cut_off = f"; {left} request(s) cut off after {GRACEFUL_TIMEOUT} s" if left else ""
    print(f"waitress: stopped{cut_off}", flush=True)


def in_flight(server):
    """Requests running in a thread or waiting for one."""
    tasks = server.task_dispatcher
    return tasks.active_count + len(tasks.queue)


def unsent(server):
    return any(channel.total_outbufs_len for channel in list(server.active_channels.values()))


if __name__ == "__main__":
    main()
