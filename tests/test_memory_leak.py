"""A view that really leaks, under load through nginx on a 512 MB dyno's formation (two workers).

The test writes a view into the bake (not shipped) that keeps LEAK_MB more of memory on every call, starts
`bin/dyno web` and sends it REQUESTS requests from CLIENTS concurrent clients through nginx, while a sampler
adds up the proportional set size (PSS: shared pages counted once, the closest to what Heroku's dyno manager
counts, RSS and swap without the page cache) of every process of the dyno: nginx, PgBouncer, the server, the
local runner itself.

- gunicorn (`GUNICORN_MAX_WORKER_RSS_MB`, 200) and uWSGI (`reload-on-rss`, 200): each worker is replaced
  before the dyno's total passes 512 MB, and no request fails while one is;
- waitress is one process: nothing replaces it, its memory grows by what the view keeps, and no request
  fails; the dyno's limit is its only limit (docs/reliability.md, "Memory").

Figures go to the run's "figures" summary; CONTRIBUTING.md ("Measured figures") quotes them.
"""

import json
import os
import re
import threading
import time

import pytest

import realstack as rs
from conftest import SERVERS, figure

SECRET_KEY = "memory-leak-" + "k" * 60
HTTPS = {"X-Forwarded-Proto": "https", "Host": "localhost"}
DYNO_MB = 512  # Eco, Basic and Standard-1X
LEAK_MB = 2
CLIENTS = 4
REQUESTS = 600  # 1.2 GB kept in all: several replacements of each worker
WAITRESS_REQUESTS = 100  # one process that nothing replaces: 200 MB kept, below the dyno's 512
SAFETY_MB = 2048  # stop sending if the dyno ever holds this much (a guard that does not work)
REPLACED = {"gunicorn": r"replacing it", "uwsgi": r"Respawned uWSGI worker|reload-on-rss"}
LEAK_VIEW = f'''"""Written by tests/test_memory_leak.py: keeps {LEAK_MB} MB more on every call."""

import os

from django.http import JsonResponse

KEPT = []


def leak(request):
    KEPT.append(b"L" * ({LEAK_MB} << 20))  # written, so every page is resident
    return JsonResponse({{"pid": os.getpid(), "kept_mb": len(KEPT) * {LEAK_MB}}})
'''


def pss_mb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


class Sampler(threading.Thread):
    """The dyno's total PSS and its largest process's RSS, every 0.1 s, until stopped."""

    def __init__(self, web):
        super().__init__(daemon=True)
        self.web, self.running = web, True
        self.total_mb, self.largest_mb, self.samples = 0.0, 0.0, 0

    def run(self):
        while self.running:
            pids = self.web.dyno_pids()
            self.total_mb = max(self.total_mb, sum(pss_mb(pid) for pid in pids))
            self.largest_mb = max([self.largest_mb, *(rss_mb(pid) for pid in pids)])
            self.samples += 1
            time.sleep(0.1)


@pytest.fixture(scope="module")
def leaky(bake_once, baked_venv, user, workdir, postgres):
    """{server: (project, env, port)}: each bake with the leaking view written into it."""
    stacks = {}
    for server in SERVERS:
        project = rs.prepare_project(bake_once(wsgi_server=server), workdir / server, user, baked_venv)
        package = project / project.name  # the settings package: its urls.py is ROOT_URLCONF
        (package / "leak.py").write_text(LEAK_VIEW)
        urls = package / "urls.py"
        urls.write_text(
            urls.read_text() + f"\nfrom {package.name}.leak import leak  # noqa: E402\n\n"
            'urlpatterns.append(path("leak/", leak))\n'
        )
        app_json = json.loads((project / "app.json").read_text())
        config_vars = {key: spec["value"] for key, spec in app_json["env"].items() if "value" in spec}
        port = rs.free_port()
        env = rs.base_env(
            user,
            baked_venv,
            DJANGO_SECRET_KEY=SECRET_KEY,
            DATABASE_URL=postgres.create_database(f"leak_{server}"),
            PORT=port,
            **config_vars,
        )
        stacks[server] = project, env, port
    return stacks


@pytest.mark.parametrize("server", SERVERS)
def test_leaking_workers_are_replaced_below_the_dynos_memory(server, leaky, user, workdir):
    project, env, port = leaky[server]
    requests = WAITRESS_REQUESTS if server == "waitress" else REQUESTS
    with rs.Dyno(project, "web", env, user, workdir / f"leak-{server}.log") as web:
        web.wait_http(port)
        sampler = Sampler(web)
        sampler.start()
        time.sleep(0.5)
        idle_mb = sampler.total_mb
        failures, answers, lock = [], [], threading.Lock()
        budget = iter(range(requests))

        def client():
            while sampler.total_mb < SAFETY_MB:
                with lock:
                    if next(budget, None) is None:
                        return
                try:
                    status, _, body = rs.http_request(port, "GET", "/leak/", HTTPS, timeout=30)
                except OSError as error:
                    status, body = type(error).__name__, b""
                with lock:
                    if status == 200:
                        answers.append(json.loads(body))
                    else:
                        failures.append((status, body[:200]))

        started = time.monotonic()
        clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=600)
        elapsed = time.monotonic() - started
        time.sleep(1)  # the last replacement's new worker
        sampler.running = False
        sampler.join(timeout=5)
        output = web.output
        record = web.stop()
    replaced = len(re.findall(REPLACED.get(server, r"(?!)"), output))
    pids = {answer["pid"] for answer in answers}
    largest_kept = max((answer["kept_mb"] for answer in answers), default=0)
    figure(
        f"{server} leak {LEAK_MB} MB/request, {len(answers)} of {requests} answered 200 in {elapsed:.1f} s "
        f"({CLIENTS} clients)",
        f"dyno total PSS {idle_mb:.0f} MB idle, {sampler.total_mb:.0f} MB at most; "
        f"largest process RSS {sampler.largest_mb:.0f} MB; {len(pids)} app processes answered, {replaced} replaced; "
        f"most kept by one process {largest_kept} MB; {sampler.samples} samples",
    )
    assert not failures, f"{len(failures)} requests failed, e.g. {failures[:3]}\n{output[-3000:]}"
    assert len(answers) == requests
    assert sampler.total_mb < DYNO_MB, f"the dyno held {sampler.total_mb:.0f} MB\n{output[-3000:]}"
    assert record["returncode"] == 0, output[-3000:]
    if server == "waitress":
        assert len(pids) == 1 and largest_kept == requests * LEAK_MB, "waitress is one process that keeps all"
    else:
        assert replaced >= 4, f"{server}: {replaced} workers replaced\n{output[-3000:]}"
        assert len(pids) >= 6, f"{server}: only {len(pids)} workers answered"
