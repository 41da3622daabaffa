"""gunicorn behind nginx on a Heroku dyno: `gunicorn --config config/gunicorn.conf.py`.

nginx (config/nginx.conf.erb) buffers whole requests and responses, so each sync worker is busy only
while Django runs; slow clients wait in nginx, not here.
https://docs.gunicorn.org/en/stable/settings.html
"""

import os
from pathlib import Path

wsgi_app = "{{ cookiecutter.project_slug }}.wsgi:application"

# The nginx buildpack proxies to this socket and starts nginx once /tmp/app-initialized exists.
bind = "unix:/tmp/nginx.socket"
READY_FILE = Path("/tmp/app-initialized")

# Heroku's Python buildpack sets WEB_CONCURRENCY from the dyno's memory (2 on 512 MB dynos).
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Sync processes, not threads: gthread with 2 x 4 threads did 0.58 and 0.70 times peer 1's requests a
# second at 32 clients per dyno in its two benchmark runs, sync 0.64 to 1.45 in ten (a noisy shared
# machine); the views are CPU-bound on a dyno's shared cores, and nginx already keeps slow clients off
# the workers, which is what threads would be for.
worker_class = "sync"
# nginx queues connections on the socket while every worker is busy; room for a burst of them.
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))

# Heroku's router gives up on a request after 30 s (H12); end a stuck worker just before that.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "28"))
# Heroku sends SIGTERM to every process of the dyno and SIGKILL 30 s later. gunicorn's master takes
# SIGTERM as a graceful stop (stop accepting, let each worker finish its request), and a sync worker that
# gets SIGTERM directly does the same, so nothing is cut short before this many seconds, well inside 30.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Import the project once, in the master, and fork the workers from it. Each worker then starts in
# milliseconds instead of importing Django again, which matters because max_requests below recycles a
# worker every few seconds under load (2 workers at ~700 req/s per dyno). The forked workers also share
# the imported code's pages, so the dyno's PSS is lower. The app opens no database connection at import
# (core/apps.py talks to PgBouncer's console and closes it), so no socket is shared across the fork.
# Measured (benchmarks/run.py --quick, gunicorn and peer 1 in each run, two runs each way on a shared
# 2-core machine): the web dyno's PSS 103 and 106 MB without, 79 and 81 MB with (peer 1, which preloads
# too: 74 to 104 MB). The saving wears off as workers run and Python writes to the shared objects
# (reference counts, the garbage collector): in the full run one worker held 41 MB of its own and the dyno
# 103 MB, level with peer 1's 105. /bench/db/ throughput moved within the machine's noise, 0.7 to 1.5 times
# peer 1's either way.
preload_app = True
# Recycle workers now and then so a slow memory leak can't reach the dyno's limit (R14). Each worker
# draws its own limit from max_requests to max_requests + jitter: with a jitter as large as half of it,
# workers that share the load evenly reach their limits hundreds of requests apart, not in the same
# second, which would leave the dyno with no worker while the new ones boot.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "1000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", str(max_requests // 2)))

# nginx writes the access log with the request id and timings; gunicorn's own would repeat it.
accesslog = None
errorlog = "-"
# Requests arrive from nginx over the unix socket; trust its X-Forwarded-* headers.
forwarded_allow_ips = "*"


def when_ready(server):
    # The socket is bound and listening: connections queue until a worker accepts them.
    READY_FILE.touch()
    server.log.info("touched %s", READY_FILE)
