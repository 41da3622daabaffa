"""waitress behind nginx on a Heroku dyno: `python config/serve_waitress.py`.

waitress is one process with a pool of threads. It binds the socket first and only then touches
/tmp/app-initialized, so nginx never starts in front of a socket that does not accept yet.
https://docs.pylonsproject.org/projects/waitress/en/stable/arguments.html
"""

import os
import signal
import sys
from pathlib import Path

# This file lives in config/; the project package is one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from waitress import create_server  # noqa: E402

from {{ cookiecutter.project_slug }}.wsgi import application  # noqa: E402

SOCKET = "/tmp/nginx.socket"
READY_FILE = Path("/tmp/app-initialized")


def main():
    server = create_server(
        application,
        unix_socket=SOCKET,
        unix_socket_perms="660",
        # Threads share one process's memory; each holds one database connection to PgBouncer.
        threads=int(os.environ.get("WAITRESS_THREADS", "8")),
        # nginx queues requests on the socket when every thread is busy.
        backlog=int(os.environ.get("WAITRESS_BACKLOG", "2048")),
        connection_limit=int(os.environ.get("WAITRESS_CONNECTION_LIMIT", "1000")),
        # nginx sends X-Forwarded-Proto; Django reads it through SECURE_PROXY_SSL_HEADER.
        clear_untrusted_proxy_headers=False,
        ident=None,
    )
    # Heroku sends SIGTERM to every process: stop accepting and exit instead of dying mid-response.
    signal.signal(signal.SIGTERM, lambda signum, frame: server.close())
    READY_FILE.touch()
    print(f"waitress listening on unix:{SOCKET} with {server.adj.threads} threads", flush=True)
    try:
        server.run()
    except OSError:
        # server.close() from the SIGTERM handler ends the loop with EBADF.
        pass


if __name__ == "__main__":
    main()
