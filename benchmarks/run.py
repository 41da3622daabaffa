#!/usr/bin/env python3
"""Measure what the stack is for, against Heroku's default, in one run on this machine.

    sudo python3 benchmarks/run.py            # the full run (about 21 minutes on 2 cores)
    sudo python3 benchmarks/run.py --quick    # fewer levels, shorter windows (about 7 minutes)

Bakes the template once per WSGI server, builds each bake as Heroku would (collectstatic), runs the
release phase, and measures every configuration in the same run:

  gunicorn, uwsgi, waitress   the baked Procfile's web dyno: nginx -> PgBouncer -> server (bin/dyno web)
  control                     "Heroku's default": `web: gunicorn <project>.wsgi` on $PORT, sync workers,
                              straight to PostgreSQL with DJANGO_CONN_MAX_AGE=0, no nginx, no PgBouncer

All with WEB_CONCURRENCY=2 (a 512 MB dyno) and app.json's config vars, each dyno in namespaces of its own
(nsinit.py), PostgreSQL 15 with scram-sha-256 and TLS outside them. Phases: start-up, the nginx hop,
memory, slow clients (uploaders and readers) and, with two dynos per configuration, database throughput
and connections. Results: results/latest.json, then report.py writes results/latest.md and the plot.
Root is needed for the namespaces; the dynos themselves run as an ordinary user (PgBouncer and
PostgreSQL refuse root). Every process started here is stopped at the end, also on Ctrl-C or error.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import loadgen  # noqa: E402
import report  # noqa: E402
import stack as st  # noqa: E402

rs = st.rs
log = st.log

PROFILES = {
    "full": {
        "slow_levels": [0, 16, 64, 256],
        "probe_seconds": 20,  # 1000 probes at 50/s: 99.9% means at most one failure
        "hop_count": 400,
        "hop_seconds": 8,
        "db_concurrency": [32, 256],
        "db_seconds": 15,
        # More WSGI processes than PgBouncer's pool (as on a bigger dyno): gunicorn and the control only.
        "scaled_web_concurrency": 12,
    },
    "quick": {
        "slow_levels": [0, 256],
        "probe_seconds": 6,
        "hop_count": 150,
        "hop_seconds": 3,
        "db_concurrency": [128],
        "db_seconds": 6,
        "scaled_web_concurrency": None,
    },
}
PROBE_RATE = 50  # fast clients per second, each on a new connection
PROBE_TIMEOUT = 5  # a fast client gives up after this many seconds
HOP_CONCURRENCY = 8
TCP = f"tcp:127.0.0.1:{st.PORT}"
# One query on Django's own connection (benchmarks' view): the fast clients and the throughput runs.
# The template's /health/ is measured too, apart: it opens a connection of its own on every request.
DB_VIEW = "/bench/db/"
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

    # -- set-up

    def prepare(self):
        log(f"work directory {self.workdir}")
        self.venv = st.baked_venv(self.workdir)
        log(f"virtualenv {self.venv}")
        self.postgres = st.start_postgres(self.workdir, self.user, tls=not self.args.no_tls)
        log(f"PostgreSQL on 127.0.0.1:{self.postgres.port} (TLS {'off' if self.args.no_tls else 'on'})")
        for server in self.args.servers:
            self.configs.append({"name": server, "answers": {"wsgi_server": server}, "control": False})
        if not self.args.no_control:
            self.configs.append({"name": "control", "answers": {"wsgi_server": "gunicorn"}, "control": True})
        for config in self.configs:
            name = config["name"]
            log(f"{name}: bake and build")
            project = st.build(
                name,
                config["answers"],
                self.workdir,
                self.user,
                self.venv,
                control=config["control"],
                patch=None if config["control"] else self.args.patch,
            )
            config["project"] = project
            config["url"] = st.database_url(self.postgres, f"bench_{name}")
            extra = dict(self.args.control_env if config["control"] else self.args.env)
            if config["control"]:
                extra.setdefault("DJANGO_CONN_MAX_AGE", "0")  # Django's default: a connection per request
            config["vars"] = st.config_vars(project, **extra)
            config["env"] = self.env(config)
            st.release(f"{name}-release", project, config["env"], self.user, self.workdir, self.postgres)
            config["big_static"] = st.static_path(project)

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
            ready_file=not config["control"],
        )
        result = {"startup": [startup], "slow": {"upload": {}, "read": {}}}
        try:
            # Warm up: every worker has imported Django and opened its database connection.
            dyno.loadgen("throughput", "--target", TCP, "--path", DB_VIEW, "--concurrency", "4", "--seconds", "2")
            result["hop"] = self.hop(dyno, config)
            # Memory after a few ordinary requests: a worker the hop test just recycled (max_requests)
            # has imported Django again and opened its connection.
            dyno.loadgen("throughput", "--target", TCP, "--path", DB_VIEW, "--concurrency", "2", "--seconds", "1")
            time.sleep(0.5)
            result["memory_idle"] = dyno.memory()
            log(f"{name}: memory {result['memory_idle']['rss_mb']} MB RSS, {result['memory_idle']['pss_mb']} MB PSS")
            for kind, clients in self.slow_plan():
                outcome = self.slow(dyno, config, kind, clients)
                kinds = ["upload", "read"] if clients == 0 else [kind]
                for each in kinds:
                    result["slow"][each][str(clients)] = outcome
        finally:
            dyno.stop()
        return result

    def slow_plan(self):
        levels = [n for n in self.profile["slow_levels"] if n]
        plan = [("read", 0)] if 0 in self.profile["slow_levels"] else []
        return plan + [(kind, n) for kind in ("upload", "read") for n in levels]

    def hop(self, dyno, config):
        """The trivial view with and without nginx: p50 of sequential requests, then closed-loop throughput."""
        count, seconds = str(self.profile["hop_count"]), self.profile["hop_seconds"]
        targets = [TCP] if config["control"] else [TCP, SOCKET]
        args = ["latency", "--path", "/bench/ping/", "--count", count]
        for target in targets:
            args += ["--target", target]
        latency = dyno.loadgen(*args)
        rate = {}
        # Two alternating halves each, so that a noisy neighbour's burst does not land on one side only.
        for _half in range(2):
            for target in targets:
                outcome = dyno.loadgen(
                    "throughput",
                    "--target",
                    target,
                    "--path",
                    "/bench/ping/",
                    "--concurrency",
                    str(HOP_CONCURRENCY),
                    "--seconds",
                    str(seconds / 2),
                )
                merged = rate.setdefault(target, {"ok": 0, "seconds": 0.0, "requests": 0})
                for key in ("ok", "seconds", "requests"):
                    merged[key] += outcome[key]
        hop = {}
        for target in targets:
            side = "nginx" if target == TCP and not config["control"] else ("direct" if target == SOCKET else "tcp")
            hop[side] = {**latency[target], "ok_per_s": round(rate[target]["ok"] / rate[target]["seconds"], 1)}
        if "nginx" in hop:
            log(
                f"{config['name']}: hop p50 {hop['nginx']['p50_ms']} ms with nginx, "
                f"{hop['direct']['p50_ms']} ms without; "
                f"{hop['nginx']['ok_per_s']} vs {hop['direct']['ok_per_s']} req/s"
            )
        return hop

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
            TCP,
            "--kind",
            kind,
            "--clients",
            clients,
            "--read-path",
            config["big_static"],
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
            f"{config['name']}: {clients:>3} slow {kind}ers -> fast clients {probe['success'] * 100:.1f}% ok, "
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

    def two_dynos(self, config, web_concurrency=None):
        """Two web dynos of one app (one database); with web_concurrency, only the top client level."""
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
                    ready_file=not config["control"],
                )
                dynos.append(dyno)
                result["startup"].append(startup)
            for dyno in dynos:
                dyno.loadgen("throughput", "--target", TCP, "--path", DB_VIEW, "--concurrency", "4", "--seconds", "1")
            if config["control"] and not web_concurrency:
                result["relay_calibration"] = self.relay_calibration(dynos[0], config)
            levels = self.profile["db_concurrency"][-1:] if web_concurrency else self.profile["db_concurrency"]
            for concurrency in levels:
                result["levels"][str(concurrency)] = self.db_level(config, dynos, concurrency, DB_VIEW)
            if not web_concurrency:
                result["health"] = self.db_level(config, dynos, levels[0], "/health/")
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
        watcher = subprocess.Popen(
            [
                str(self.venv / "bin" / "python"),
                str(BENCH / "pgwatch.py"),
                "--socket-dir",
                str(self.postgres.sockets),
                "--port",
                str(self.postgres.port),
                "--database",
                f"bench_{config['name']}",
                "--seconds",
                str(seconds + 30),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=st.die_with_parent,
        )
        try:
            watcher.stderr.readline()  # "ready": its own connection is open and the first count taken
            url = f"http://127.0.0.1:{st.PORT}{path}"
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

    # -- the whole run

    def execute(self):
        started = time.time()
        self.prepare()
        results = {
            "meta": self.meta(),
            "configs": {},
        }
        for config in self.configs:
            if "single" not in self.args.skip:
                results["configs"].setdefault(config["name"], {}).update(self.single_dyno(config))
        for config in self.configs:
            if "db" not in self.args.skip:
                results["configs"].setdefault(config["name"], {})["db"] = self.two_dynos(config)
        scaled = self.profile.get("scaled_web_concurrency")
        for config in self.configs:
            if scaled and "db" not in self.args.skip and config["name"] in ("gunicorn", "control"):
                results["configs"][config["name"]]["db_scaled"] = self.two_dynos(config, web_concurrency=scaled)
        stacks = [c for c in self.configs if not c["control"]]
        if stacks and "worker" not in self.args.skip:
            results["worker_memory"] = self.worker_memory(stacks[0])
        results["meta"]["seconds"] = round(time.time() - started)
        return results

    def meta(self):
        return {
            "command": "sudo python3 benchmarks/run.py" + (" --quick" if self.args.quick else ""),
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
                "web_concurrency": 2,
            },
            "stack_env": self.args.env,
            "control_env": self.args.control_env,
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


def template_revision():
    """The template's commit, and whether its files (benchmarks/ aside) differed from it when baked."""

    def git(*args):
        result = subprocess.run(["git", *args], cwd=st.ROOT, capture_output=True, text=True, timeout=30)
        return result.stdout.strip() if result.returncode == 0 else None

    changed = git("status", "--porcelain", "--", ".", ":(exclude)benchmarks")
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_changes": bool(changed)}


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
    parser.add_argument("--no-control", action="store_true", help="skip the Heroku-default control")
    parser.add_argument(
        "--levels",
        type=lambda text: [int(n) for n in text.split(",")],
        help="slow-client levels, e.g. 0,256 (overrides the profile's)",
    )
    parser.add_argument("--probe-seconds", type=float, help="fast-client probe window (overrides the profile's)")
    parser.add_argument("--skip", default="", help="comma-separated phases to skip: single, db, worker")
    parser.add_argument(
        "--env",
        type=key_value,
        action="append",
        default=[],
        help="NAME=VALUE config var for the nginx stacks (experiments), repeatable",
    )
    parser.add_argument(
        "--control-env",
        type=key_value,
        action="append",
        default=[],
        help="NAME=VALUE config var for the control, repeatable",
    )
    parser.add_argument("--patch", type=Path, help="a patch (-p1) applied to each stack's bake before the build")
    parser.add_argument("--no-tls", action="store_true", help="PostgreSQL without TLS")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json", help="results JSON")
    parser.add_argument("--no-report", action="store_true", help="write the JSON only")
    parser.add_argument(
        "--workdir",
        default="/var/tmp",
        help="where the run's scratch directory goes (not /tmp: each dyno mounts its own /tmp)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (projects, dyno logs)")
    parser.add_argument("--disk", action="store_true", help="scratch directory on disk instead of a tmpfs")
    args = parser.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    unknown = set(args.servers) - set(st.SERVERS)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; choose from {st.SERVERS}")
    args.skip = {s for s in args.skip.split(",") if s}
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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    log(f"wrote {args.out}")
    if not args.no_report:
        for path in report.write(results, args.out):
            log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
