#!/usr/bin/env python3
"""Measure what the stack is for, against what Heroku users run today, in one run on this machine.

    sudo .venv/bin/python benchmarks/run.py            # the full run (about 40 minutes on 2 cores)
    sudo .venv/bin/python benchmarks/run.py --quick    # fewer levels, shorter windows (about 20 minutes)

Bakes the template once per WSGI server, builds each bake as Heroku would (collectstatic), runs the
release phase, and measures every configuration in the same run:

  gunicorn, uwsgi, waitress   ours: the baked Procfile's web dyno, nginx -> PgBouncer -> server (bin/dyno web)
  getting-started             peer 1, heroku/python-getting-started: gunicorn gthread 2 x 5 threads, preload,
                              persistent connections (conn_max_age=600), on $PORT straight to PostgreSQL
  seed-003-waitress           peer 2, seed 003: waitress-serve on $PORT with its defaults, CONN_MAX_AGE=0
  old-default                 peer 3, the old default: `gunicorn <project>.wsgi` sync on $PORT, CONN_MAX_AGE=0

All with WEB_CONCURRENCY=2 (a 512 MB dyno) and app.json's config vars, each dyno in namespaces of its own
(nsinit.py), PostgreSQL 15 with scram-sha-256 and TLS outside them, each web dyno behind the router stand-in
(router.py, whose capacity is measured first: routercost.py). Phases: start-up, the hops and where each
request's CPU goes, memory, slow clients (uploaders and readers), database throughput and connections with two dynos per
configuration, and scale-out (1 to 8 web dynos on a database with Essential-0's 20 connections).
Results: results/latest.json, then report.py writes results/latest.md and the plots.
Root is needed for the namespaces; the dynos themselves run as an ordinary user (PgBouncer and
PostgreSQL refuse root). Every process started here is stopped at the end, also on Ctrl-C or error.
"""

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import loadgen  # noqa: E402
import report  # noqa: E402
import routercost  # noqa: E402
import stack as st  # noqa: E402

rs = st.rs
log = st.log

PROFILES = {
    "full": {
        "slow_levels": [0, 256],
        # 300 probes at 50/s: 99.9% means none may fail. About 70 slow-client windows (the judged ones 5
        # times), 7 configurations x 5 rounds x 2 throughput levels, a dozen scale-out levels: aimed at 40
        # minutes on 2 cores. `--levels 0,64,256` adds a level between.
        "probe_seconds": 6,
        "hop_count": 200,
        "hop_seconds": 2,
        "db_concurrency": [32, 256],
        "db_seconds": 6,
        "scaled_web_concurrency": None,
        "scale_clients": 32,
        "scale_seconds": 5,
        "repeats": 5,
        "worker_dynos": [1, 2, 4],
        "worker_tasks": 1000,
    },
    "quick": {
        "slow_levels": [0, 256],
        "probe_seconds": 6,
        "hop_count": 150,
        "hop_seconds": 2,
        "db_concurrency": [128],
        "db_seconds": 6,
        "scaled_web_concurrency": None,
        "scale_clients": 32,
        "scale_seconds": 4,
        "repeats": 2,
        "worker_dynos": [1, 2],
        "worker_tasks": 300,
    },
}
# Slow uploaders (the router streams bodies: they reach the dyno), slow readers of the 1 MB file (inside the
# router's response buffer) and of the 4 MB one (beyond it).
SLOW_KINDS = ("upload", "read", "read-large")
PROBE_RATE = 50  # fast clients per second, each on a new connection
SLOW_RAMP = 2  # the slow clients connect over this many seconds
SLOW_SETTLE = 1  # then this many pass (each has sent its request line) before the fast clients arrive
PROBE_TIMEOUT = 5  # a fast client gives up after this many seconds
HOP_CONCURRENCY = 8
CPU_PATHS = ("/bench/ping/", "/bench/db/")  # the cost of the hops alone, and with one query
TCP = f"tcp:127.0.0.1:{st.PORT}"
# The clients' way in: through router.py, Heroku's router stand-in (--no-router: straight to $PORT).
ROUTED = f"tcp:127.0.0.1:{st.ROUTER_PORT}"
# One query on Django's own connection (benchmarks' view): the fast clients and the throughput runs.
# The template's /health/ is measured too, apart, and the benchmark's copy of what it did before it kept its
# probe connection (a new connection per call).
DB_VIEW = "/bench/db/"
HEALTH_BEFORE = "/bench/health-connect/"
# Scale-out: ordinary connections of a Heroku Postgres Essential-0 database (its plan limit, 20).
ESSENTIAL_0_CONNECTIONS = 20
# Each scale-out level opens with a database stall (a table every request and task reads, locked this long),
# which puts every dyno at its worst case: each Django connection waits in a transaction, so each PgBouncer
# opens all it may, the reserve included once clients have waited reserve_pool_timeout (5 s). Below the
# app's query_wait_timeout (10 s), so that a dyno within its budget loses no request to it.
STALL_SECONDS = 7
STALL_PATH = "/bench/stall/"
# What connection_budget counts besides the dynos (the release phase and a `heroku run` console): held open,
# straight to PostgreSQL as the app's role, through each scale-out level.
DIRECT_CONNECTIONS = 2
# The most web dynos one scale-out level starts (peer 3, two connections per dyno, fits 9 on Essential-0).
MAX_SCALE_DYNOS = 12
# Log lines that say why a scale-out request failed, counted per dyno count (PostgreSQL's log and the
# dynos' own output: PgBouncer's lines and Django's tracebacks).
FAILURE_SIGNS = {
    # PostgreSQL refused a connection: every ordinary slot taken (max_connections - superuser_reserved)...
    "slots_reserved": "remaining connection slots are reserved",
    # ... or every slot at all.
    "too_many_clients": "too many clients already",
    "pgbouncer_login_failing": "server login has been failing",  # PgBouncer passes the refusal on
    "pgbouncer_wait_timeout": "query_wait_timeout",  # a client waited longer than PGBOUNCER_QUERY_WAIT_TIMEOUT
}
SOCKET = "unix:/tmp/nginx.socket"


class Run:
    """The shared state of one benchmark run: workdir, PostgreSQL, projects, and what is running."""

    def __init__(self, args):
        self.args = args
        self.profile = dict(PROFILES["quick" if args.quick else "full"])
        if args.levels:
            self.profile["slow_levels"] = args.levels
        if args.probe_seconds:
            self.profile["probe_seconds"] = args.probe_seconds
        if args.db_concurrency:
            self.profile["db_concurrency"] = args.db_concurrency
        if args.db_seconds:
            self.profile["db_seconds"] = args.db_seconds
        if args.repeats:
            self.profile["repeats"] = args.repeats
        st.ROUTER["enabled"] = not args.no_router
        self.entry = ROUTED if not args.no_router else TCP
        self.entry_port = st.ROUTER_PORT if not args.no_router else st.PORT
        self.user = rs.ordinary_user()
        self.workdir = Path(tempfile.mkdtemp(prefix="heroku-django-bench-", dir=args.workdir))
        if not args.disk:
            # Projects, logs and PostgreSQL's data in memory: every request writes log lines (nginx's
            # access log, bin/dyno's tail of it), and on a shared machine a neighbour's disk writeback
            # can hold such a write for hundreds of ms. A dyno's filesystem is ephemeral anyway. The
            # mount lives in this run's private mount namespace (see main) and ends with it.
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=6g,mode=755", "heroku-django-bench", str(self.workdir)], check=True
            )
        # The dynos' user must reach its projects and PostgreSQL's directory below this one.
        self.workdir.chmod(0o755)
        self.postgres = None
        self.configs = []
        self.last_fitting = {}  # (stack, pools) -> connection_budget's last fitting web dyno count
        self.redis = self.redis_port = self.redis_config = None

    # -- set-up

    def prepare(self):
        log(f"work directory {self.workdir}")
        self.venv = st.baked_venv(self.workdir)
        log(f"virtualenv {self.venv}")
        self.postgres = st.start_postgres(self.workdir, self.user, tls=not self.args.no_tls)
        log(f"PostgreSQL on 127.0.0.1:{self.postgres.port} (TLS {'off' if self.args.no_tls else 'on'})")
        for server in self.args.servers:
            self.configs.append({"name": server, "answers": {"wsgi_server": server}, "peer": None})
        for peer in self.args.peers:
            self.configs.append({"name": peer, "answers": st.PEERS[peer]["answers"], "peer": peer})
        if self.args.servers and "workers" not in self.args.skip:
            # The worker scale-out's second broker: the first server's bake with task_broker=redis, its
            # Redis a redis-server on the host that every dyno reaches through its relay.
            self.redis, self.redis_port = st.start_redis()
            server = self.args.servers[0]
            self.redis_config = {
                "name": f"{server}-redis",
                "answers": {"wsgi_server": server, "task_broker": "redis"},
                "peer": None,
                "redis_url": "redis://127.0.0.1:6379/0",
            }
        for config in self.configs + ([self.redis_config] if self.redis_config else []):
            name = config["name"]
            log(f"{name}: bake and build")
            project = st.build(
                name,
                config["answers"],
                self.workdir,
                self.user,
                self.venv,
                peer=config["peer"],
                patch=None if config["peer"] else self.args.patch,
            )
            config["project"] = project
            config["database"] = "bench_" + name.replace("-", "_")
            config["url"] = st.database_url(self.postgres, config["database"])
            extra = dict(self.args.peer_env if config["peer"] else self.args.env)
            if config["peer"]:
                for key, value in st.PEERS[config["peer"]].get("env", {}).items():
                    extra.setdefault(key, value)
            if config.get("redis_url"):
                extra["REDIS_URL"] = config["redis_url"]
            config["vars"] = st.config_vars(project, **extra)
            config["env"] = self.env(config)
            st.release(f"{name}-release", project, config["env"], self.user, self.workdir, self.postgres)
            self.postgres.sql(
                f"CREATE TABLE bench_stall (id int); ALTER TABLE bench_stall OWNER TO {rs.Postgres.APP_USER}; "
                f"CREATE TABLE bench_tasks (n int); ALTER TABLE bench_tasks OWNER TO {rs.Postgres.APP_USER}",
                database=config["database"],
            )
            config["big_static"] = st.static_path(project)
            config["large_static"] = st.static_path(project, st.LARGE_STATIC)

    def env(self, config):
        return rs.base_env(
            self.user,
            self.venv,
            DJANGO_SECRET_KEY=st.SECRET_KEY,
            DATABASE_URL=config["url"],
            PORT=st.PORT,
            **config["vars"],
        )

    # -- one web dyno: start-up, the nginx hop, memory, slow clients

    def single_dyno(self, config):
        name = config["name"]
        log(f"{name}: web dyno")
        dyno, startup = st.start_web(
            f"{name}-web",
            config["project"],
            config["env"],
            self.user,
            self.workdir,
            self.postgres,
            ready_file=not config["peer"],
        )
        result = {"startup": [startup], "slow": {kind: {} for kind in SLOW_KINDS}}
        try:
            # Warm up: every worker has imported Django and opened its database connection.
            dyno.loadgen("throughput", "--target", TCP, "--path", DB_VIEW, "--concurrency", "4", "--seconds", "2")
            result["hop"] = self.hop(dyno, config)
            # Memory after a few ordinary requests, every worker with its connection open.
            dyno.loadgen("throughput", "--target", TCP, "--path", DB_VIEW, "--concurrency", "2", "--seconds", "1")
            time.sleep(0.5)
            result["memory_idle"] = dyno.memory()
            log(f"{name}: memory {result['memory_idle']['rss_mb']} MB RSS, {result['memory_idle']['pss_mb']} MB PSS")
            top = max(self.profile["slow_levels"])
            for kind, clients in self.slow_plan():
                # The windows the counted targets read (ours, none and the most slow clients) are repeated;
                # the levels between, and the peers (context), are measured once.
                judged = not config["peer"] and clients in (0, top)
                repeats = self.profile["repeats"] if judged else 1
                outcome = merge_repeats([self.slow(dyno, config, kind, clients) for _ in range(repeats)])
                kinds = list(SLOW_KINDS) if clients == 0 else [kind]
                for each in kinds:
                    result["slow"][each][str(clients)] = outcome
        finally:
            dyno.stop()
        return result

    def slow_plan(self):
        levels = [n for n in self.profile["slow_levels"] if n]
        plan = [("read", 0)] if 0 in self.profile["slow_levels"] else []
        return plan + [(kind, n) for kind in SLOW_KINDS for n in levels]

    def hop(self, dyno, config):
        """The hops' cost, on /bench/ping/ (nginx alone) and /bench/db/ (with PgBouncer and one query): p50 of
        sequential requests on ping, then closed-loop windows through nginx on $PORT and straight to the
        server's socket, alternated, `repeats` rounds (the order reversed every other round). nginx is
        reached on connections kept alive, as Heroku's router reaches it; the server alone on a new connection
        per request, as nginx reaches it. Each window also says where its CPU went (cpu_window)."""
        count, seconds = str(self.profile["hop_count"]), self.profile["hop_seconds"]
        targets = [TCP] if config["peer"] else [TCP, SOCKET]
        args = ["latency", "--path", "/bench/ping/", "--count", count]
        for target in targets:
            args += ["--target", target]
        latency = dyno.loadgen(*args)
        sides = {TCP: "nginx" if not config["peer"] else "tcp", SOCKET: "direct"}
        rounds = {path: [] for path in CPU_PATHS}
        repeats = 1 if config["peer"] else self.profile["repeats"]
        for repeat in range(repeats):
            for path in CPU_PATHS:
                windows = {}
                for target in targets if repeat % 2 == 0 else targets[::-1]:
                    windows[sides[target]] = self.cpu_window(dyno, target, path, seconds, keep_alive=target == TCP)
                rounds[path].append(windows)
        hop = {"rounds": rounds}
        for target in targets:
            side = sides[target]
            rates = [windows[side]["ok_per_s"] for windows in rounds["/bench/ping/"]]
            hop[side] = {**latency[target], "ok_per_s": round(statistics.median(rates), 1)}
        if "nginx" in hop:
            ratios = [w["nginx"]["ok_per_s"] / w["direct"]["ok_per_s"] for w in rounds["/bench/ping/"]]
            log(
                f"{config['name']}: hop p50 {hop['nginx']['p50_ms']} ms with nginx, "
                f"{hop['direct']['p50_ms']} ms without; {hop['nginx']['ok_per_s']} vs {hop['direct']['ok_per_s']} "
                f"req/s, with / without {min(ratios):.2f} to {max(ratios):.2f}"
            )
        return hop

    def cpu_window(self, dyno, target, path, seconds, keep_alive):
        """One closed-loop window and where its CPU went: microseconds per request served, by process role
        (Dyno.cpu_seconds: the kernel's schedstat run time; Django's from its own thread CPU time)."""
        before = dyno.cpu_seconds()
        outcome = dyno.loadgen(
            "throughput",
            "--target",
            target,
            "--path",
            path,
            "--concurrency",
            str(HOP_CONCURRENCY),
            "--seconds",
            str(seconds),
            *(["--keep-alive"] if keep_alive else []),
        )
        after = dyno.cpu_seconds()
        spent = {role: after[role] - before.get(role, 0.0) for role in after}
        served = outcome["ok"]
        us = {role: round(value / served * 1e6, 1) for role, value in spent.items()} if served else {}
        if us and "django" in us:
            us["server"] = round(us.pop("app", 0.0) - us["django"], 1)  # the WSGI server, Django excluded
        return {"ok_per_s": outcome["ok_per_s"], "requests": outcome["requests"], "ok": served, "us_per_request": us}

    def slow(self, dyno, config, kind, clients):
        """One slow-client level: the load generator runs in the dyno's namespace; memory is read while
        the slow clients are all still there (it writes a marker file then)."""
        hold_file = dyno.rundir / "holding"
        hold_file.unlink(missing_ok=True)
        args = [
            sys.executable,
            BENCH / "loadgen.py",
            "slow",
            "--target",
            self.entry,
            "--kind",
            kind,
            "--clients",
            clients,
            "--read-path",
            config["large_static"] if kind == "read-large" else config["big_static"],
            "--upload-path",
            "/bench/upload/",
            "--probe-path",
            DB_VIEW,
            "--probe-rate",
            PROBE_RATE,
            "--probe-seconds",
            self.profile["probe_seconds"],
            "--probe-timeout",
            PROBE_TIMEOUT,
            "--hold-file",
            hold_file,
            "--hold-seconds",
            1,
            # With no slow clients there is nothing to wait for.
            "--ramp",
            SLOW_RAMP if clients else 0,
            "--settle",
            SLOW_SETTLE if clients else 0,
        ]
        limit = self.profile["probe_seconds"] + PROBE_TIMEOUT + 60
        noise = st.Noise()
        process = dyno.popen(args)
        memory = None
        deadline = time.monotonic() + limit
        while process.poll() is None and time.monotonic() < deadline:
            if memory is None and hold_file.exists():
                memory = dyno.memory()
            time.sleep(0.05)
        try:
            out, err = process.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            dyno.fail(f"the slow-client load generator ran over {limit} s")
        if process.returncode != 0:
            dyno.fail(f"the slow-client load generator failed:\n{err[-3000:]}")
        outcome = json.loads(out)
        outcome["noise"] = noise.end()
        if memory:
            outcome["memory"] = {k: v for k, v in memory.items() if k != "processes"}
        probe = outcome["probe"]
        log(
            f"{config['name']}: {clients:>3} slow clients ({kind}) -> fast clients {probe['success'] * 100:.1f}% ok, "
            f"p50 {probe['p50_ms']} ms, p99 {probe['p99_ms']} ms "
            f"(machine: io stalled {outcome['noise'].get('io_full_ms')} ms, "
            f"steal {outcome['noise'].get('steal_ms')} ms)"
        )
        # Back to normal before the next level: the slow clients are gone, the queue must drain.
        recovered = dyno.loadgen("wait", "--target", TCP, "--path", DB_VIEW, "--timeout", "90", timeout=150)
        outcome["recovered"] = recovered["first_200"] is not None
        time.sleep(1)
        return outcome

    # -- two dynos: database throughput and connections

    def db_phase(self, results):
        """Every configuration's two dynos, `repeats` rounds, each from fresh dynos: ours and peer 1 are
        measured in turn within a round, and the order is reversed every other round so that none always
        follows the same neighbour. report.py pairs ours with peer 1 round by round."""
        rounds = {c["name"]: [] for c in self.configs}
        for repeat in range(self.profile["repeats"]):
            log(f"throughput: round {repeat + 1} of {self.profile['repeats']}")
            for config in self.configs if repeat % 2 == 0 else self.configs[::-1]:
                rounds[config["name"]].append(self.two_dynos(config, first=repeat == 0))
        for config in self.configs:
            results["configs"].setdefault(config["name"], {})["db"] = merge_rounds(rounds[config["name"]])

    def two_dynos(self, config, web_concurrency=None, first=True):
        """Two web dynos of one app (one database); with web_concurrency, only the top client level. The
        /health/ comparison and the relay's calibration are context: measured in the first round only."""
        name = config["name"]
        env = dict(config["env"], **({"WEB_CONCURRENCY": str(web_concurrency)} if web_concurrency else {}))
        log(
            f"{name}: two web dynos on one database"
            + (f", WEB_CONCURRENCY={web_concurrency}" if web_concurrency else "")
        )
        second = self.workdir / f"{name}-b" / config["project"].name
        if not second.exists():
            second = st.clone_project(config["project"], self.workdir / f"{name}-b", self.user)
        dynos, result = [], {"startup": [], "levels": {}}
        try:
            for suffix, project in (("a", config["project"]), ("b", second)):
                dyno, startup = st.start_web(
                    f"{name}-{suffix}",
                    project,
                    env,
                    self.user,
                    self.workdir,
                    self.postgres,
                    ready_file=not config["peer"],
                )
                dynos.append(dyno)
                result["startup"].append(startup)
            for dyno in dynos:
                dyno.loadgen("throughput", "--target", TCP, "--path", DB_VIEW, "--concurrency", "4", "--seconds", "1")
            if config["peer"] == "old-default" and not web_concurrency and first:
                result["relay_calibration"] = self.relay_calibration(dynos[0], config)
            levels = self.profile["db_concurrency"][-1:] if web_concurrency else self.profile["db_concurrency"]
            for concurrency in levels:
                result["levels"][str(concurrency)] = self.db_level(config, dynos, concurrency, DB_VIEW)
            if not web_concurrency and first:
                result["health"] = self.db_level(config, dynos, levels[0], "/health/")
                if not config["peer"]:
                    result["health_before"] = self.db_level(config, dynos, levels[0], HEALTH_BEFORE)
        finally:
            for dyno in dynos:
                dyno.stop()
        if web_concurrency:
            result["web_concurrency"] = web_concurrency
            del result["startup"]  # not a default dyno: kept out of the start-up figures
        return result

    def relay_calibration(self, dyno, config, count=30):
        """What the relay adds to a new PostgreSQL connection (TLS, SCRAM, first query), in ms: the control
        opens one per request, so this is the relay's share of its cost. Same client, same database."""
        code = (
            "import sys, time, psycopg\nstart = time.perf_counter()\n"
            f"for _ in range({count}):\n    c = psycopg.connect(sys.argv[1]); c.execute('SELECT 1'); c.close()\n"
            f"print((time.perf_counter() - start) / {count} * 1000)\n"
        )
        python = str(self.venv / "bin" / "python")
        via_relay = float(dyno.run([python, "-c", code, config["url"]], 120))
        direct_url = config["url"].replace(f"127.0.0.1:{st.PG_PORT_IN_DYNO}", f"127.0.0.1:{self.postgres.port}")
        direct = float(
            subprocess.run(
                [python, "-c", code, direct_url], capture_output=True, text=True, timeout=120, check=True
            ).stdout
        )
        log(f"relay calibration: a new connection takes {via_relay:.1f} ms through the relay, {direct:.1f} ms direct")
        return {"via_relay_ms": round(via_relay, 2), "direct_ms": round(direct, 2)}

    def db_level(self, config, dynos, concurrency, path):
        seconds = self.profile["db_seconds"]
        for dyno in dynos:
            dyno.reset_peak()
        before = [dyno.stats() for dyno in dynos]
        noise = st.Noise()
        watcher = self.pgwatch(config, seconds)
        try:
            url = f"http://127.0.0.1:{self.entry_port}{path}"
            loads = [dyno.popen(loadgen.wrk_command(url, concurrency, seconds)) for dyno in dynos]
            outputs = []
            for process in loads:
                try:
                    outputs.append(process.communicate(timeout=seconds + 40)[0])
                except subprocess.TimeoutExpired:
                    process.kill()
                    outputs.append(process.communicate()[0])
            # Right away: requests still queued when wrk stops would otherwise count too.
            time.sleep(0.25)  # nsinit.py rewrites its stats every 0.2 s
            after = [dyno.stats() for dyno in dynos]
        finally:
            watcher.send_signal(signal.SIGTERM)
            try:
                watched, _ = watcher.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                watcher.kill()
                watched = watcher.communicate()[0]
        window_noise = noise.end()
        per_dyno = []
        for out, start, end in zip(outputs, before, after, strict=True):
            figures = loadgen.parse_wrk(out, seconds)
            if not figures["percentiles_ms"]:
                figures["wrk_output"] = out[-1500:]  # kept to see what went wrong
            figures["peak_backends"] = end["peak"]
            figures["connections_opened"] = end["opened"] - start["opened"]
            figures["relay_cpu_s"] = round(end["relay_cpu_s"] - start["relay_cpu_s"], 2)
            per_dyno.append(figures)
        pg = json.loads(watched) if watched.strip() else {}
        ok_per_s = round(sum(d["ok_per_s"] or 0 for d in per_dyno), 1)
        opened = sum(d["connections_opened"] for d in per_dyno)
        ok_requests = sum(d["requests"] - d["non_2xx"] for d in per_dyno)
        level = {
            "path": path,
            "concurrency_per_dyno": concurrency,
            "ok_per_s": ok_per_s,
            # The worse of the two dynos: each wrk reports its own distribution.
            "p50_ms": worst(d["percentiles_ms"].get("50") for d in per_dyno),
            "p99_ms": worst(d["percentiles_ms"].get("99") for d in per_dyno),
            "errors": sum(d["non_2xx"] + sum(d["socket_errors"].values()) for d in per_dyno),
            "peak_backends_per_dyno": max(d["peak_backends"] for d in per_dyno),
            "connections_opened": opened,
            "connections_per_request": round(opened / ok_requests, 3) if ok_requests else None,
            "postgres": pg,
            "noise": window_noise,
            "dynos": per_dyno,
        }
        log(
            f"{config['name']}: {path} c={concurrency}x2 -> {ok_per_s} req/s, p99 {level['p99_ms']} ms, backends "
            f"{pg.get('peak_backends')} at peak ({level['peak_backends_per_dyno']} per dyno), "
            f"{opened} connections opened"
        )
        return level

    # -- scale-out: 1 to 8 web dynos (and a worker) on a database with Essential-0's 20 connections

    def limit_connections(self):
        """Restart PostgreSQL so that the app's role gets exactly 20 connections: max_connections = 20 + the
        superuser's reserve + 2 for pgwatch.py and the stall's lock (a superuser connection takes an ordinary
        slot while one is free, and PostgreSQL refuses other roles once only the reserve is left)."""
        reserved = int(self.postgres.sql("SHOW superuser_reserved_connections")[0][0])
        self.postgres.sql(f"ALTER SYSTEM SET max_connections = {ESSENTIAL_0_CONNECTIONS + reserved + 2}")
        rs.run_as(
            self.user,
            ["pg_ctl", "-D", self.postgres.data, "-l", self.postgres.base / "postgres.log", "-m", "fast", "-w"]
            + ["-t", "60", "restart"],
            timeout=90,
        )
        limit = int(self.postgres.sql("SHOW max_connections")[0][0])
        log(f"PostgreSQL restarted with max_connections {limit} ({limit - reserved - 2} for the app)")
        return {"max_connections": limit, "superuser_reserved": reserved, "ordinary": limit - reserved - 2}

    def budget(self, config, formation, pool, reserve):
        """What the bake's `connection_budget` says of this formation on Essential-0: fits, and its advice."""
        result = subprocess.run(
            [
                str(self.venv / "bin" / "python"),
                "manage.py",
                "connection_budget",
                "--dynos",
                formation,
                "--pool",
                str(pool),
                "--reserve",
                str(reserve),
                "--plan",
                "essential-0",
            ],
            cwd=config["project"],
            # WEB_CONCURRENCY as the measured dynos have it (bin/dyno's, unless the run sets one).
            env={"WEB_CONCURRENCY": "2", **config["env"], "PYTHONDONTWRITEBYTECODE": "1"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        text = (result.stdout + result.stderr).strip()
        advice = re.search(r"PGBOUNCER_DEFAULT_POOL_SIZE=(\d+) PGBOUNCER_RESERVE_POOL_SIZE=(\d+)", text)
        if result.returncode != 0 and not advice:
            raise rs.StackError(f"connection_budget failed:\n{text[-2000:]}")
        return {
            "formation": formation,
            "pool": pool,
            "reserve": reserve,
            "fits": result.returncode == 0,
            "advice": [int(advice[1]), int(advice[2])] if advice else None,
            # Its count of the formation's connections (dynos at what they can open, plus the direct ones).
            "total": int(total[1]) if (total := re.search(r"total: (\d+) of", text)) else None,
            # What it counts for one dyno of each process type: "web: 7 dyno(s) x 2 = 14 (...)".
            "per_dyno": {kind: int(each) for kind, each in re.findall(r"^(\w+): \d+ dyno\(s\) x (\d+) =", text, re.M)},
            "output": text.splitlines()[-1],
        }

    def scale_out(self, config, advised):
        """Steady load on 1, 2, 4, 8 web dynos (plus the worker dyno for our stacks), one database with 20
        ordinary connections. With `advised`, each formation runs with the pools connection_budget advises
        for it (only where app.json's do not fit: elsewhere they are app.json's, measured already)."""
        name, peer = config["name"], config["peer"]
        app_pool = int(config["vars"].get("PGBOUNCER_DEFAULT_POOL_SIZE", 1))
        app_reserve = int(config["vars"].get("PGBOUNCER_RESERVE_POOL_SIZE", 1))
        with_worker = not peer and "worker:" in (config["project"] / "Procfile").read_text()
        last, counts = self.scale_counts(config, with_worker, (app_pool, app_reserve))
        result = {"worker": with_worker, "last_fitting": last, "levels": {}}
        log(f"{name}: predicted to fit up to {last} web dynos; measuring {counts}")
        webs, worker, running_pools = [], None, None
        try:
            for count in counts:
                formation = f"web={count}" + (",worker=1" if with_worker else "")
                level = {"formation": formation}
                if peer:
                    per_dyno = st.PEERS[peer]["backends_per_dyno"](int(config["env"].get("WEB_CONCURRENCY", 2)))
                    level["predicted_fits"] = per_dyno * count + DIRECT_CONNECTIONS <= ESSENTIAL_0_CONNECTIONS
                    level["prediction"] = f"{count} x {per_dyno} connections per dyno + {DIRECT_CONNECTIONS} direct"
                    pools = None
                else:
                    budget = self.budget(config, formation, app_pool, app_reserve)
                    pools = (app_pool, app_reserve)
                    if advised:
                        if budget["fits"]:
                            continue  # app.json's pools: the other pass measures this formation
                        pools = tuple(budget["advice"])
                        budget = self.budget(config, formation, *pools)
                    level["budget"] = budget
                    level["prediction"] = budget["output"]
                    level["predicted_fits"] = budget["fits"]
                    level["pools"] = list(pools)
                if pools != running_pools:
                    for dyno in webs + ([worker] if worker else []):
                        dyno.stop()
                    webs, worker, running_pools = [], None, pools
                env = dict(config["env"])
                if pools:
                    env["PGBOUNCER_DEFAULT_POOL_SIZE"], env["PGBOUNCER_RESERVE_POOL_SIZE"] = map(str, pools)
                if with_worker and worker is None:
                    worker = self.start_worker(config, env)
                webs += self.start_webs(config, env, range(len(webs), count))
                level.update(self.scale_level(config, webs, worker))
                result["levels"][str(count)] = level
                fits = "fits" if level["predicted_fits"] else "does not fit"
                log(
                    f"{name}: {formation}{' pools ' + str(pools) if pools else ''} ({fits}) -> "
                    f"{level['ok_per_s']} req/s, {level['errors']} errors {level['failures']}, "
                    f"p99 {level['p99_ms']} ms, {level['peak_backends']} backends at peak"
                )
        finally:
            for dyno in webs + ([worker] if worker else []):
                dyno.stop()
        return result

    def scale_counts(self, config, with_worker, pools):
        """(the last web dyno count the prediction accepts, the counts to measure): that count and the next,
        the boundary seen from both sides, at exact counts. --scale-dynos overrides the counts."""
        peer = config["peer"]
        if peer:
            per_dyno = st.PEERS[peer]["backends_per_dyno"](int(config["env"].get("WEB_CONCURRENCY", 2)))
            last = (ESSENTIAL_0_CONNECTIONS - DIRECT_CONNECTIONS) // per_dyno
        elif (config["name"], pools) in self.last_fitting:
            last = self.last_fitting[config["name"], pools]
        else:
            last = 0
            for count in range(1, MAX_SCALE_DYNOS + 1):
                formation = f"web={count}" + (",worker=1" if with_worker else "")
                if not self.budget(config, formation, *pools)["fits"]:
                    break
                last = count
            self.last_fitting[config["name"], pools] = last
        counts = self.args.scale_dynos or [n for n in (last, last + 1) if 1 <= n <= MAX_SCALE_DYNOS]
        return last, counts

    def clone(self, config, index):
        """The project for web dyno `index` of a formation (bin/dyno keeps its run files in the project)."""
        if index == 0:
            return config["project"]
        destination = self.workdir / "clones" / f"{config['name']}-{index}"
        project = destination / config["project"].name
        return project if project.exists() else st.clone_project(config["project"], destination, self.user)

    def start_webs(self, config, env, indexes):
        """Start web dynos together (as `heroku ps:scale` does), then wait for each one's first 200."""
        dynos = []
        try:
            for index in indexes:
                name = f"{config['name']}-scale-web{index + 1}"
                project = self.clone(config, index)
                dynos.append(st.Dyno(name, project, "web", env, self.user, self.workdir / "ns" / name, self.postgres))
                dynos[-1].start()
            for dyno in dynos:
                # A view without the database: a dyno PostgreSQL refuses still starts (and then fails requests).
                waited = dyno.loadgen("wait", "--target", TCP, "--path", "/bench/ping/", "--timeout", "99", timeout=200)
                if waited["first_200"] is None:
                    dyno.fail("no 200 within 120 s")
        except BaseException:
            for dyno in dynos:
                dyno.stop()
            raise
        return dynos

    def start_worker(self, config, env):
        dyno = st.Dyno(
            f"{config['name']}-scale-worker",
            config["project"],
            "worker",
            env,
            self.user,
            self.workdir / "ns" / f"{config['name']}-scale-worker",
            self.postgres,
        ).start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "running" not in dyno.output.lower():
            if dyno.process.poll() is not None:
                dyno.fail("the worker dyno exited")
            time.sleep(0.2)
        return dyno

    def scale_level(self, config, webs, worker):
        """The stall (every dyno at its worst case), then steady load, with the direct connections held."""
        seconds, clients = self.profile["scale_seconds"], self.profile["scale_clients"]
        pg_log = self.postgres.base / "postgres.log"
        pg_mark = pg_log.stat().st_size
        marks = [len(dyno.output) for dyno in webs + ([worker] if worker else [])]
        for dyno in webs + ([worker] if worker else []):
            dyno.reset_peak()  # each dyno's PostgreSQL connections at once, from here on (nsinit.py's relay)
        watcher = self.pgwatch(config, STALL_SECONDS + seconds)
        held = [
            self.psql_as_app(config, f"SELECT pg_sleep({STALL_SECONDS + seconds + 3})")
            for _ in range(DIRECT_CONNECTIONS)
        ]
        try:
            lock = self.psql_superuser(
                config,
                f"BEGIN; LOCK TABLE bench_stall IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({STALL_SECONDS}); COMMIT;",
            )
            time.sleep(0.5)  # the lock is taken
            if worker:
                # Tasks that read the locked table: the worker dyno's processes wait in the stall too.
                enqueue = f"http://127.0.0.1:{st.PORT}/bench/enqueue/?n=6"
                webs[0].run(
                    [
                        sys.executable,
                        "-c",
                        f"import urllib.request as u; u.urlopen(u.Request({enqueue!r}, "
                        "headers={'X-Forwarded-Proto': 'https', 'Host': 'localhost'}), timeout=30).read()",
                    ],
                    40,
                )
            stall_url = f"http://127.0.0.1:{self.entry_port}{STALL_PATH}"
            stalls = [
                dyno.popen(loadgen.wrk_command(stall_url, clients, STALL_SECONDS + 1, timeout=30)) for dyno in webs
            ]
            stall_outputs = [communicate(process, STALL_SECONDS + 40) for process in stalls]
            communicate(lock, 30)
            url = f"http://127.0.0.1:{self.entry_port}{DB_VIEW}"
            loads = [dyno.popen(loadgen.wrk_command(url, clients, seconds)) for dyno in webs]
            outputs = [communicate(process, seconds + 40) for process in loads]
            time.sleep(1)  # PgBouncer's and Django's last lines reach the logs
            peaks = {
                "web": [dyno.stats()["peak"] for dyno in webs],
                "worker": worker.stats()["peak"] if worker else None,
            }
        finally:
            pg = stop_watch(watcher)
            for process in held:
                process.kill()
                process.wait()
        with open(pg_log, "rb") as handle:
            handle.seek(pg_mark)
            pg_text = handle.read().decode(errors="replace")
        dyno_text = "".join(
            dyno.output[mark:] for dyno, mark in zip(webs + ([worker] if worker else []), marks, strict=True)
        )
        failures = {
            "postgres_refused": pg_text.count(FAILURE_SIGNS["too_many_clients"])
            + pg_text.count(FAILURE_SIGNS["slots_reserved"]),
            **{sign: dyno_text.count(text) for sign, text in FAILURE_SIGNS.items()},
        }
        per_dyno = [loadgen.parse_wrk(out, seconds) for out in outputs]
        per_dyno_stall = [loadgen.parse_wrk(out, STALL_SECONDS + 1) for out in stall_outputs]
        kinds = ("connect", "read", "write", "timeout")
        every = per_dyno + per_dyno_stall
        http_errors = sum(d["non_2xx"] for d in every)
        socket_errors = {key: sum(d["socket_errors"].get(key, 0) for d in every) for key in kinds}
        failures["http_5xx"] = http_errors
        failures.update({f"socket_{key}": value for key, value in socket_errors.items() if value})
        return {
            "web_dynos": len(webs),
            "clients_per_dyno": clients,
            "seconds": seconds,
            "stall_seconds": STALL_SECONDS,
            "stall_requests": sum(d["requests"] for d in per_dyno_stall),
            "ok_per_s": round(sum(d["ok_per_s"] or 0 for d in per_dyno), 1),
            "requests": sum(d["requests"] for d in per_dyno),
            "ok": sum(d["requests"] - d["non_2xx"] for d in per_dyno),
            "errors": http_errors + sum(socket_errors.values()),
            "failures": {key: value for key, value in failures.items() if value},
            "p99_ms": worst(d["percentiles_ms"].get("99") for d in per_dyno),
            "peak_backends": pg.get("peak_backends"),
            "peak_per_dyno": peaks,
            "postgres": pg,
            "dynos_failing": sum(1 for d in every if d["non_2xx"] or sum(d["socket_errors"].values())),
        }

    def psql_superuser(self, config, query):
        command, kwargs = rs.user_command(
            self.user,
            ["psql", "-X", "-q", "-h", self.postgres.sockets, "-p", self.postgres.port, "-U", "postgres"]
            + ["-d", config["database"], "-v", "ON_ERROR_STOP=1", "-c", query],
        )
        return self.popen_psql(command, kwargs)

    def psql_as_app(self, config, query):
        """A direct connection as the app's role (TLS, password), like the release phase or `heroku run`."""
        dsn = (
            f"host=127.0.0.1 port={self.postgres.port} dbname={config['database']} user={rs.Postgres.APP_USER} "
            f"password={rs.Postgres.APP_PASSWORD}"
        )
        command, kwargs = rs.user_command(self.user, ["psql", "-X", "-q", dsn, "-c", query])
        return self.popen_psql(command, kwargs)

    def popen_psql(self, command, kwargs):
        return subprocess.Popen(
            command,
            env={**os.environ, "PATH": rs.tools_path()},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )

    def pgwatch(self, config, seconds):
        watcher = subprocess.Popen(
            [
                str(self.venv / "bin" / "python"),
                str(BENCH / "pgwatch.py"),
                "--socket-dir",
                str(self.postgres.sockets),
                "--port",
                str(self.postgres.port),
                "--database",
                config["database"],
                "--seconds",
                str(seconds + 30),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=st.die_with_parent,
        )
        watcher.stderr.readline()  # "ready": its own connection is open and the first count taken
        return watcher

    # -- the worker dyno's memory

    def worker_memory(self, config):
        log(f"{config['name']}: worker dyno")
        with st.Dyno(
            f"{config['name']}-worker",
            config["project"],
            "worker",
            config["env"],
            self.user,
            self.workdir / "ns" / f"{config['name']}-worker",
            self.postgres,
        ) as dyno:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "running" not in dyno.output.lower():
                if dyno.process.poll() is not None:
                    dyno.fail("the worker dyno exited")
                time.sleep(0.2)
            time.sleep(5)  # let the cluster's processes settle after their start
            memory = dyno.memory()
        log(f"worker dyno: {memory['rss_mb']} MB RSS, {memory['pss_mb']} MB PSS")
        return memory

    # -- worker scale-out: 1, 2, 4 worker dynos beside a web dyno, the ORM broker

    def worker_scale_out(self, config, redis_port=None):
        """Per worker dyno count: tasks a second, every task run at least once, duplicates, PostgreSQL's
        backends at peak against what connection_budget counts for the formation (before the scale-out
        limits PostgreSQL, so that what is measured is what the formation opens, not what it is refused)."""
        result = {"tasks": self.profile["worker_tasks"], "levels": {}}
        pool = int(config["vars"].get("PGBOUNCER_DEFAULT_POOL_SIZE", 1))
        reserve = int(config["vars"].get("PGBOUNCER_RESERVE_POOL_SIZE", 1))
        web, _ = st.start_web(
            f"{config['name']}-tasks-web",
            config["project"],
            config["env"],
            self.user,
            self.workdir,
            self.postgres,
            redis_port=redis_port,
        )
        try:
            for count in self.profile["worker_dynos"]:
                formation = f"web=1,worker={count}"
                budget = self.budget(config, formation, pool, reserve)
                level = {"formation": formation, "budget": budget, **self.task_level(config, web, count, redis_port)}
                result["levels"][str(count)] = level
                log(
                    f"{config['name']}: {formation} -> {level['tasks_per_s']} tasks/s, {level['missing']} missing, "
                    f"{level['duplicates']} duplicates, {level['peak_backends']} backends at peak "
                    f"(connection_budget: {budget['output']})"
                )
        finally:
            web.stop()
        return result

    def task_level(self, config, web, count, redis_port=None):
        tasks = self.profile["worker_tasks"]
        self.postgres.sql("TRUNCATE bench_tasks; DELETE FROM django_q_ormq;", database=config["database"])
        if redis_port:
            st.redis_flush(redis_port)
        workers = []
        watcher = self.pgwatch(config, 200)
        try:
            for index in range(count):
                name = f"{config['name']}-tasks-worker{index + 1}"
                project = self.clone(config, 100 + index)
                workers.append(
                    st.Dyno(
                        name,
                        project,
                        "worker",
                        config["env"],
                        self.user,
                        self.workdir / "ns" / name,
                        self.postgres,
                        redis_port=redis_port,
                    )
                )
                workers[-1].start()
            deadline = time.monotonic() + 90
            for dyno in workers:
                while "running" not in dyno.output.lower():
                    if dyno.process.poll() is not None or time.monotonic() > deadline:
                        dyno.fail("the worker dyno did not start")
                    time.sleep(0.2)
            started = time.monotonic()
            enqueue = f"http://127.0.0.1:{st.PORT}/bench/enqueue-numbered/?start=0&n={tasks}"
            web.run(
                [
                    sys.executable,
                    "-c",
                    f"import urllib.request as u; u.urlopen(u.Request({enqueue!r}, "
                    "headers={'X-Forwarded-Proto': 'https', 'Host': 'localhost'}), timeout=120).read()",
                ],
                150,
            )
            enqueued = time.monotonic()
            done, total, distinct = None, 0, 0
            while time.monotonic() < enqueued + 120:
                total, distinct = (
                    int(v)
                    for v in self.postgres.sql(
                        "SELECT count(*), count(DISTINCT n) FROM bench_tasks", database=config["database"]
                    )[0]
                )
                if distinct >= tasks:
                    done = time.monotonic()
                    break
                time.sleep(0.5)
            time.sleep(2)  # a duplicate run would land within the ORM broker's retry, not this soon: counted below
            total, distinct = (
                int(v)
                for v in self.postgres.sql(
                    "SELECT count(*), count(DISTINCT n) FROM bench_tasks", database=config["database"]
                )[0]
            )
        finally:
            pg = stop_watch(watcher)
            for dyno in workers:
                dyno.stop()
        return {
            "worker_dynos": count,
            "seconds": round((done or time.monotonic()) - started, 2),
            "enqueue_seconds": round(enqueued - started, 2),
            "tasks_per_s": round(tasks / (done - started), 1) if done else None,
            "missing": tasks - distinct,
            "duplicates": total - distinct,
            "peak_backends": pg.get("peak_backends"),
            "postgres": pg,
        }

    # -- the whole run

    def execute(self):
        started = time.time()
        self.prepare()
        results = {
            "meta": self.meta(),
            "configs": {},
        }
        if not self.args.no_router:
            # What the router stand-in passes on this machine now (routercost.py), for the report to set
            # against the fastest stack measured behind it.
            results["router_capacity"] = routercost.measure()
            log(f"router stand-in: {results['router_capacity']} req/s (through it, and straight to the backend)")
        for config in self.configs:
            if "single" not in self.args.skip and measured_in(config, "single"):
                results["configs"].setdefault(config["name"], {}).update(self.single_dyno(config))
        if "db" not in self.args.skip and self.configs:
            self.db_phase(results)
        scaled = self.profile.get("scaled_web_concurrency")
        for config in self.configs:
            if scaled and "db" not in self.args.skip and config["name"] in ("gunicorn", "old-default"):
                results["configs"][config["name"]]["db_scaled"] = self.two_dynos(config, web_concurrency=scaled)
        stacks = [c for c in self.configs if not c["peer"]]
        if stacks and "worker" not in self.args.skip:
            results["worker_memory"] = self.worker_memory(stacks[0])
        if stacks and "workers" not in self.args.skip and "worker:" in (stacks[0]["project"] / "Procfile").read_text():
            results["workers"] = {"orm": self.worker_scale_out(stacks[0])}
            if self.redis_config:
                results["workers"]["redis"] = self.worker_scale_out(self.redis_config, redis_port=self.redis_port)
        if "scale" not in self.args.skip and self.configs:
            # Last: PostgreSQL is restarted with Essential-0's connection limit for it.
            results["scale_limit"] = self.limit_connections()
            for config in self.configs:
                if not measured_in(config, "scale"):
                    continue
                scale = results["configs"].setdefault(config["name"], {}).setdefault("scale", {})
                scale["app.json" if not config["peer"] else "own"] = self.scale_out(config, advised=False)
                if not config["peer"]:
                    scale["advised"] = self.scale_out(config, advised=True)
        results["meta"]["seconds"] = round(time.time() - started)
        results["meta"]["load_at_end"] = os.getloadavg()
        return results

    def meta(self):
        return {
            "command": shlex.join(["sudo", python_as_typed(), "benchmarks/run.py", *sys.argv[1:]]),
            "argv": sys.argv[1:],
            "profile": "quick" if self.args.quick else "full",
            "settings": {
                **self.profile,
                "probe_rate": PROBE_RATE,
                "probe_timeout_s": PROBE_TIMEOUT,
                "hop_concurrency": HOP_CONCURRENCY,
                "slow_upload_bytes": loadgen.UPLOAD_BYTES,
                "slow_read_bytes": 1 << 20,
                "slow_rate_bytes_per_s": loadgen.READ_CHUNK,
                "slow_reader_rcvbuf": loadgen.SLOW_RCVBUF,
                "loopback_mtu": 1500,
                "postgres_tls": not self.args.no_tls,
                "router": not self.args.no_router,
                "web_concurrency": 2,
            },
            "stack_env": self.args.env,
            "peer_env": self.args.peer_env,
            "peers": {
                c["name"]: {k: st.PEERS[c["peer"]][k] for k in ("label", "short", "source")}
                for c in self.configs
                if c["peer"]
            },
            "patch": str(self.args.patch) if self.args.patch else None,
            "pool": {
                k: v for k, v in (self.configs[0]["vars"] if self.configs else {}).items() if k.startswith("PGBOUNCER_")
            },
            "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "load_at_start": os.getloadavg()},
            "versions": versions(self.venv),
            "template": template_revision(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def cleanup(self):
        if self.postgres is not None:
            self.postgres.stop()
        if self.redis is not None:
            self.redis.kill()
            self.redis.wait(10)
        if self.args.keep:
            if not self.args.disk:
                keep = Path(tempfile.mkdtemp(prefix="heroku-django-bench-kept-", dir=self.args.workdir))
                subprocess.run(["cp", "-a", f"{self.workdir}/.", str(keep)], check=False)
                log(f"kept a copy in {keep}")
            else:
                log(f"kept {self.workdir}")
        if not self.args.disk:
            subprocess.run(["umount", "--lazy", str(self.workdir)], check=False)
        if not self.args.keep or not self.args.disk:
            shutil.rmtree(self.workdir, ignore_errors=True)


RERUN_PHASES = ("worker_memory", "workers")


def rerun_into(path, rerun):
    """The earlier run at `path` with the rerun's worker phases in place of its own, the rerun recorded."""
    earlier = json.loads(path.read_text())
    phases = [key for key in RERUN_PHASES if key in rerun]
    earlier.update({key: rerun[key] for key in phases})
    record = {key: rerun["meta"][key] for key in ("command", "started", "template", "seconds")}
    earlier["meta"].setdefault("reruns", []).append({**record, "phases": phases})
    return earlier


def template_revision():
    """The template's commit, and whether its files (the results aside) differed from it when baked."""

    def git(*args):
        result = subprocess.run(["git", *args], cwd=st.ROOT, capture_output=True, text=True, timeout=30)
        return result.stdout.strip() if result.returncode == 0 else None

    changed = git("status", "--porcelain", "--", ".", ":(exclude)benchmarks/results")
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_changes": bool(changed)}


def python_as_typed():
    """The Python that runs this, as the README's command names it (.venv/bin/python from the checkout)."""
    path = Path(sys.executable)
    return str(path.relative_to(BENCH.parent)) if path.is_relative_to(BENCH.parent) else str(path)


def communicate(process, timeout):
    try:
        return process.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0]


def stop_watch(watcher):
    watcher.send_signal(signal.SIGTERM)
    try:
        watched, _ = watcher.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        watcher.kill()
        watched = watcher.communicate()[0]
    return json.loads(watched) if watched.strip() else {}


ROUND_FIGURES = (
    "ok_per_s",
    "p50_ms",
    "p99_ms",
    "errors",
    "peak_backends_per_dyno",
    "connections_opened",
    "connections_per_request",
)


def merge_rounds(rounds):
    """The throughput phase's rounds of one configuration: each level's figures per round under "repeats",
    their medians on top; the first round's details (per-dyno figures, PostgreSQL's samples)."""
    merged = dict(rounds[0])
    merged["startup"] = [startup for r in rounds for startup in r.get("startup", [])]
    merged["levels"] = {}
    for concurrency, first in rounds[0]["levels"].items():
        every = [r["levels"][concurrency] for r in rounds]
        level = dict(first)
        level["repeats"] = [{key: each.get(key) for key in ROUND_FIGURES} for each in every]
        for key in ("ok_per_s", "p50_ms", "p99_ms"):
            level[key] = report.median([each.get(key) for each in every])
        level["noise"] = {
            key: sum(each.get("noise", {}).get(key, 0) for each in every) for key in first.get("noise", {})
        }
        merged["levels"][concurrency] = level
    return merged


def measured_in(config, phase):
    """Whether a configuration takes part in a phase (the ceiling only in the throughput phase)."""
    return not config["peer"] or phase in st.PEERS[config["peer"]].get("phases", (phase,))


def merge_repeats(outcomes):
    """One window's repeats as report.py reads them: the figures of each under "repeats", the medians of the
    probe on top (for the plots), the first repeat's memory, the machine's noise summed."""
    if len(outcomes) == 1:
        return outcomes[0]
    merged = dict(outcomes[0])
    keys = [
        key
        for key in outcomes[0]["probe"]
        if all(o["probe"].get(key) is None or isinstance(o["probe"].get(key), (int, float)) for o in outcomes)
    ]
    merged["repeats"] = [
        {"probe": {key: o["probe"].get(key) for key in keys}, "noise": o.get("noise")} for o in outcomes
    ]
    merged["probe"] = {
        **outcomes[0]["probe"],
        **{key: report.median([o["probe"].get(key) for o in outcomes]) for key in keys},
    }
    merged["noise"] = {
        key: sum(o.get("noise", {}).get(key, 0) for o in outcomes) for key in outcomes[0].get("noise", {})
    }
    return merged


def worst(values):
    values = [v for v in values if v is not None]
    return max(values) if values else None


def versions(venv):
    def first_line(argv):
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            return (result.stdout or result.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None

    found = {
        "nginx": first_line(["nginx", "-v"]),
        "pgbouncer": first_line(["pgbouncer", "--version"]),
        "postgres": first_line(["postgres", "--version"]),
        "python": first_line([str(venv / "bin" / "python"), "--version"]),
    }
    freeze = subprocess.run([str(venv / "bin" / "pip"), "freeze"], capture_output=True, text=True, timeout=60).stdout
    for line in freeze.splitlines():
        package = line.split("==")[0].lower()
        if package in {"django", "gunicorn", "uwsgi", "waitress", "psycopg", "whitenoise", "django-q2"}:
            found[package] = line.split("==")[-1]
    return found


def key_value(text):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer levels, shorter windows")
    parser.add_argument("--servers", default=",".join(st.SERVERS), help="comma-separated WSGI servers behind nginx")
    parser.add_argument(
        "--peers",
        default=",".join(st.PEERS),
        help=f"comma-separated peers to measure beside the stacks (default all: {','.join(st.PEERS)}; '' for none)",
    )
    parser.add_argument(
        "--levels",
        type=lambda text: [int(n) for n in text.split(",")],
        help="slow-client levels, e.g. 0,256 (overrides the profile's)",
    )
    parser.add_argument("--probe-seconds", type=float, help="fast-client probe window (overrides the profile's)")
    parser.add_argument(
        "--db-concurrency",
        type=lambda text: [int(n) for n in text.split(",")],
        help="clients per dyno of the throughput runs, e.g. 32,256 (overrides the profile's)",
    )
    parser.add_argument("--db-seconds", type=int, help="length of each throughput run (overrides the profile's)")
    parser.add_argument(
        "--repeats",
        type=int,
        help="rounds of the throughput phase and of the judged slow-client windows (full 5, quick 2)",
    )
    parser.add_argument(
        "--scale-dynos",
        type=lambda text: [int(n) for n in text.split(",")],
        help="web dyno counts of the scale-out (default: the prediction's last fitting count and the next)",
    )
    parser.add_argument("--no-router", action="store_true", help="clients straight to $PORT, no router.py")
    parser.add_argument("--skip", default="", help="comma-separated phases to skip: single, db, worker, workers, scale")
    parser.add_argument(
        "--env",
        type=key_value,
        action="append",
        default=[],
        help="NAME=VALUE config var for the nginx stacks (experiments), repeatable",
    )
    parser.add_argument(
        "--peer-env",
        type=key_value,
        action="append",
        default=[],
        help="NAME=VALUE config var for the peers, repeatable",
    )
    parser.add_argument("--patch", type=Path, help="a patch (-p1) applied to each stack's bake before the build")
    parser.add_argument("--no-tls", action="store_true", help="PostgreSQL without TLS")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json", help="results JSON")
    parser.add_argument("--no-report", action="store_true", help="write the JSON only")
    parser.add_argument(
        "--rerun-into",
        type=Path,
        help="put this run's worker phases (worker, workers; skip the others) into an earlier run's JSON in "
        "place of its own, and record the rerun in its meta",
    )
    parser.add_argument(
        "--workdir",
        default="/var/tmp",
        help="where the run's scratch directory goes (not /tmp: each dyno mounts its own /tmp)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (projects, dyno logs)")
    parser.add_argument("--disk", action="store_true", help="scratch directory on disk instead of a tmpfs")
    args = parser.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    args.peers = [s for s in args.peers.split(",") if s]
    unknown_peers = set(args.peers) - set(st.PEERS)
    if unknown_peers:
        parser.error(f"unknown peers {sorted(unknown_peers)}; choose from {list(st.PEERS)}")
    unknown = set(args.servers) - set(st.SERVERS)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; choose from {st.SERVERS}")
    args.skip = {s for s in args.skip.split(",") if s}
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats: at least 1 (5 for figures the report's targets may be judged on)")
    if args.scale_dynos and not all(1 <= n <= MAX_SCALE_DYNOS for n in args.scale_dynos):
        parser.error(f"--scale-dynos: counts from 1 to {MAX_SCALE_DYNOS}")
    if args.rerun_into and not {"single", "db", "scale"} <= args.skip:
        parser.error("--rerun-into takes the worker phases only: --skip single,db,scale")
    if os.geteuid() != 0:
        parser.error("run as root (sudo): each dyno gets its own mount, network and PID namespaces")
    packages = {"wrk": "wrk", "unshare": "util-linux", "nsenter": "util-linux", "openssl": "openssl", "patch": "patch"}
    missing = rs.missing_tools() + [
        package
        for tool, package in packages.items()
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":" + rs.SBIN)
    ]
    if missing:
        parser.error(f"missing tools: apt-get install {' '.join(sorted(set(missing)))}")

    if os.environ.get("HEROKU_DJANGO_BENCH_NS") != "1":
        # Run in a private mount namespace: the tmpfs mounted for the scratch directory is then seen by
        # this run and its dynos only, and goes away with them even if the run is killed.
        os.environ["HEROKU_DJANGO_BENCH_NS"] = "1"
        os.execvp(
            "unshare",
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                sys.executable,
                str(Path(__file__).resolve()),
                *argv,
            ],
        )
    # SIGTERM ends the run like Ctrl-C: through the finally blocks that stop every dyno.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    run = Run(args)
    try:
        results = run.execute()
    finally:
        run.cleanup()
    if args.rerun_into:
        results, args.out = rerun_into(args.rerun_into, results), args.rerun_into
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Compact: the raw results are committed beside latest.md, which report.py regenerates from them.
    args.out.write_text(json.dumps(results, separators=(",", ":")) + "\n")
    log(f"wrote {args.out}")
    if not args.no_report:
        for path in report.write(results, args.out):
            log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
