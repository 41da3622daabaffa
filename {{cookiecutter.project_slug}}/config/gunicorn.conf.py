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

# `workers`: gunicorn reads WEB_CONCURRENCY itself, which Heroku's Python buildpack sets from the dyno's
# memory (2 on 512 MB dynos) and bin/dyno sets as it does; unset, gunicorn runs one worker.
# Sync processes, not threads: the views are CPU-bound on a dyno's shared cores, and nginx already keeps
# slow clients off the workers, which is what threads would be for.
# https://docs.gunicorn.org/en/stable/design.html#how-many-workers
worker_class = "sync"
# nginx queues connections on the socket while every worker is busy; room for a burst of them.
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))

# Heroku's router gives up on a request after 30 s (H12); end a stuck worker just before that.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "28"))
# Heroku sends SIGTERM to every process of the dyno and SIGKILL 30 s later. gunicorn's master takes
# SIGTERM as a graceful stop (stop accepting, let each worker finish its request), and a sync worker that
# gets SIGTERM directly does the same, so nothing is cut short before this many seconds, well inside 30.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Import the project once, in the master, and fork the workers from it: a worker that is replaced starts
# in milliseconds instead of importing Django again, and the forked workers share the imported code's
# pages. The app opens no database connection at import (heroku_runtime/apps.py talks to PgBouncer's console and
# closes it), so no socket is shared across the fork. The memory saved wears off as workers run and Python
# writes to the shared objects (reference counts, the garbage collector).
# https://docs.gunicorn.org/en/stable/settings.html#preload-app
preload_app = True
# Replace a worker whose memory has grown past this, so that a leak ends in a fresh worker rather than in the
# dyno swapping (R14), checked after each request. Not every N requests (max_requests): at the rates a dyno
# reaches, that replaces each worker every few seconds, and each replacement's fresh connections and cold
# caches cost throughput and slow the requests that meet them. 200 MB per worker leaves a 512 MB dyno room
# for two, the master, nginx and PgBouncer (docs/gunicorn.md, "Memory").
# https://devcenter.heroku.com/articles/error-codes#r14-memory-quota-exceeded
max_worker_rss_mb = int(os.environ.get("GUNICORN_MAX_WORKER_RSS_MB", "200"))
# Recycling by request count stays available for an app that wants it; each worker then draws its own
# limit from max_requests to max_requests + jitter, so workers that share the load recycle apart.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
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


def post_request(worker, req, environ, resp):
    rss_mb = resident_mb()
    if rss_mb > max_worker_rss_mb and worker.alive:
        # The worker finishes this request, exits, and the master forks a fresh one.
        worker.alive = False
        worker.log.warning(
            "worker %s holds %d MB (GUNICORN_MAX_WORKER_RSS_MB=%d): replacing it", worker.pid, rss_mb, max_worker_rss_mb
        )


def resident_mb():
    """This process's resident memory in MB (Linux; elsewhere 0, and workers are never replaced)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE // 2**20
    except OSError:
        return 0


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
