"""Local stand-ins for the app's add-ons, started for what the app uses and your environment does not set.

  app.json add-on     started here             sets                 Debian package
  heroku-postgresql   PostgreSQL (always)      DATABASE_URL         postgresql
  heroku-redis        Redis                    REDIS_URL            redis-server
  memcachier          memcached                MEMCACHIER_SERVERS   memcached

A variable already set (your environment or .env) always wins: nothing is started for it. Each keeps its
files in .dyno/<name>/, listens on 127.0.0.1 only, on a port that is free when it starts, and needs a
password as Heroku's do (PostgreSQL: SCRAM; Redis: requirepass), generated once and kept there (mode
600). memcached has no password: Debian's has no SASL, and with no MEMCACHIER_USERNAME django-bmemcached
does not authenticate. Data is kept between runs (Redis saves on stop) until `bin/dyno reset`.

Every bin/dyno of the project (`heroku local`'s web and worker, a `bin/dyno run` beside a `bin/dyno web`)
uses the add-ons that run, and holds .dyno/addons.lock shared while it does. They stop once, after the last
dyno: the bin/dyno that stops last (the only one that then gets the lock exclusively) stops every one of
them, whoever started them; one left running by a bin/dyno that was killed is used, then stopped, the same
way.
"""

import fcntl
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from dynolib import ROOT, STATE, Fail, say
from dynolib.supervisor import KILL_AFTER

START_TIMEOUT = 60
PLACEHOLDER = "generated"  # --dry-run: the password the first start generates
IN_USE = STATE / "addons.lock"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def secret_file(path):
    """A generated password kept in `path` (mode 600), made on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))  # letters, digits, - and _: nothing to escape in a URL
    return path.read_text().strip()


def exchange(port, request, expect):
    """Send `request` to 127.0.0.1:port; whether the answer starts with `expect`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(request)
            answer = b""
            while len(answer) < 256 and expect not in answer:
                chunk = connection.recv(256)
                if not chunk:
                    break
                answer += chunk
            return expect in answer
    except OSError:
        return False


def tail(path, lines=15):
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Addon:
    name = plan = variable = package = program = ""

    def __init__(self):
        self.dir = STATE / self.name
        self.log = self.dir / f"{self.name}.log"

    def find(self, program):
        return shutil.which(program) or shutil.which(program, path="/usr/local/sbin:/usr/sbin:/sbin")

    def missing(self):
        if not self.find(self.program):
            return f"{self.program} is not installed, for {self.variable}: apt-get install {self.package}"
        return None

    def placeholder(self):
        """For --dry-run: the variable as it will look; port 0 stands for the port chosen at start."""
        return self.running() or self.variables(0, PLACEHOLDER)

    def running(self):
        """The variables of an instance another bin/dyno of this project runs, or None."""
        port_file = self.dir / "port"
        if port_file.exists() and self.answers(int(port_file.read_text())):
            return self.variables(int(port_file.read_text()))
        return None

    def pid(self):
        """The pid of the instance this project runs, whichever bin/dyno started it, or None once it has
        exited. .dyno/NAME/pid holds its pid and start time (/proc/PID/stat's field 22), which no later
        process with that pid has; /proc/PID/exe would not do, as it reads differently from another mount
        namespace."""
        try:
            pid, started = (self.dir / "pid").read_text().split()
            state, *fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            return None
        return int(pid) if fields[18] == started and state != "Z" else None

    def stop_started_elsewhere(self):
        """Stop the instance another bin/dyno started, as that one would have: its signal, SIGKILL 30 s later."""
        pid = self.pid()
        if not pid:
            return
        say(f"stopping {self.name} (pid {pid}, started by another bin/dyno of this project)")
        os.kill(pid, self.stop_signal)
        deadline = time.monotonic() + KILL_AFTER
        while self.pid() == pid and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.pid() == pid:
            say(f"sending SIGKILL to {self.name}")
            os.kill(pid, signal.SIGKILL)

    def start(self, supervisor):
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        port = free_port()
        argv = self.argv(port)
        with open(self.log, "ab") as log:
            process = supervisor.start(
                self.name,
                argv,
                stop_signal=self.stop_signal,
                addon=True,
                cwd=self.dir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers(port):
            if process.poll() is not None or time.monotonic() > deadline or supervisor.signals:
                raise Fail(f"{self.name} did not start; the end of {self.log.relative_to(ROOT)}:\n{tail(self.log)}")
            time.sleep(0.2)
        (self.dir / "port").write_text(str(port))
        started = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        (self.dir / "pid").write_text(f"{process.pid} {started}")
        say(f"{self.name} ready on 127.0.0.1:{port} (log: {self.log.relative_to(ROOT)})")
        return self.variables(port)


class Postgres(Addon):
    """PostgreSQL from Debian's packages: a cluster in .dyno/postgresql/data, TCP on 127.0.0.1 only (no
    unix socket), SCRAM passwords. The app gets the role `app`, no superuser, owner of database `app`,
    as Heroku Postgres gives a role that is not a superuser; `postgres` is the superuser."""

    name, plan, variable, package, program = "postgresql", "heroku-postgresql", "DATABASE_URL", "postgresql", "initdb"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, write a checkpoint

    def find(self, program):
        # Debian keeps the server programs in /usr/lib/postgresql/VERSION/bin, not on PATH.
        bindirs = glob.glob("/usr/lib/postgresql/*/bin")
        for bindir in sorted(bindirs, key=lambda path: int("0" + "".join(filter(str.isdigit, path))), reverse=True):
            if os.access(os.path.join(bindir, program), os.X_OK):
                return os.path.join(bindir, program)
        return super().find(program)

    def missing(self):
        if not all(map(self.find, ("initdb", "postgres", "pg_isready", "psql"))):
            return f"PostgreSQL's server is not installed, for {self.variable}: apt-get install {self.package}"
        return None

    def variables(self, port, password=None):
        password = password or secret_file(self.dir / "password")
        return {self.variable: f"postgres://app:{password}@127.0.0.1:{port}/app"}

    def answers(self, port):
        ready = subprocess.run([self.find("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "2"])
        return ready.returncode == 0

    def running(self):
        pid_file = self.dir / "data" / "postmaster.pid"  # line 4: the port it listens on
        try:
            port = int(pid_file.read_text().splitlines()[3])
        except (OSError, IndexError, ValueError):
            return None
        return self.variables(port) if self.answers(port) else None

    def argv(self, port):
        settings = {"listen_addresses": "127.0.0.1", "port": port, "unix_socket_directories": ""}
        return [self.find("postgres"), "-D", str(self.dir / "data")] + [
            word for key, value in settings.items() for word in ("-c", f"{key}={value}")
        ]

    def start(self, supervisor):
        created = self.dir / "created"
        if not created.exists():  # first start, or a first start that did not finish
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.rmtree(self.dir / "data", ignore_errors=True)
            secret_file(self.dir / "superuser-password")
            initdb = [
                self.find("initdb"),
                "-D",
                str(self.dir / "data"),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={self.dir / 'superuser-password'}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
            say(f"creating a PostgreSQL cluster in {(self.dir / 'data').relative_to(ROOT)}")
            result = subprocess.run(initdb, capture_output=True, text=True)
            if result.returncode:
                raise Fail(f"initdb failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        variables = super().start(supervisor)
        if not created.exists():
            port = int((self.dir / "port").read_text())
            password = secret_file(self.dir / "password")
            sql = f"CREATE ROLE app LOGIN PASSWORD '{password}';\nCREATE DATABASE app OWNER app;\n"
            psql = [
                self.find("psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-f",
                "-",
            ]
            env = dict(os.environ, PGPASSWORD=secret_file(self.dir / "superuser-password"))
            result = subprocess.run(psql, input=sql, env=env, capture_output=True, text=True)
            if result.returncode:
                raise Fail(f"creating the role and database failed: {result.stderr.strip()}")
            created.touch()
            say("created the role app and its database app (password in .dyno/postgresql/password)")
        return variables


class Redis(Addon):
    """redis-server from Debian's packages, configured in .dyno/redis/redis.conf (it holds the password)."""

    name, plan, variable, package, program = "redis", "heroku-redis", "REDIS_URL", "redis-server", "redis-server"
    stop_signal = signal.SIGTERM  # saves the data set to dump.rdb, then exits

    def variables(self, port, password=None):
        password = password or secret_file(self.dir / "password")
        return {self.variable: f"redis://:{password}@127.0.0.1:{port}/0"}

    def answers(self, port):
        password = secret_file(self.dir / "password")
        return exchange(port, f"AUTH {password}\r\nPING\r\n".encode(), b"+PONG")

    def argv(self, port):
        conf = self.dir / "redis.conf"
        conf.touch(mode=0o600)
        settings = {
            "bind": "127.0.0.1",
            "port": port,
            "protected-mode": "yes",
            "requirepass": secret_file(self.dir / "password"),
            "dir": json.dumps(str(self.dir)),
            "dbfilename": "dump.rdb",
            "save": "60 1",
            "appendonly": "no",
            "daemonize": "no",
            "logfile": '""',
        }
        conf.write_text("".join(f"{key} {value}\n" for key, value in settings.items()))
        return [self.find(self.program), str(conf)]


class Memcached(Addon):
    name, plan, variable, package, program = "memcached", "memcachier", "MEMCACHIER_SERVERS", "memcached", "memcached"
    stop_signal = signal.SIGTERM

    def variables(self, port, password=None):
        return {self.variable: f"127.0.0.1:{port}"}

    def answers(self, port):
        return exchange(port, b"version\r\n", b"VERSION ")

    def argv(self, port):
        return [self.find(self.program), "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64"]


ADDONS = [Postgres(), Redis(), Memcached()]


def app_plans():
    """The add-on services app.json names ("heroku-redis" for "heroku-redis:mini")."""
    path = ROOT / "app.json"
    addons = json.loads(path.read_text()).get("addons", []) if path.exists() else []
    return {(entry["plan"] if isinstance(entry, dict) else entry).split(":")[0] for entry in addons}


def wanted(env):
    """The add-ons to run here: PostgreSQL always, the others when app.json names them; none whose
    variable is already set."""
    plans = app_plans() | {"heroku-postgresql"}
    chosen = []
    for addon in ADDONS:
        if addon.plan not in plans:
            continue
        if env.get(addon.variable):
            say(f"{addon.variable} is set: no local {addon.name}")
        else:
            chosen.append(addon)
    return chosen


def start(env, supervisor, dry=False):
    """Start (or use) the add-ons the app needs here; returns the variables they set."""
    addons = wanted(env)
    problems = [problem for problem in (addon.missing() for addon in addons) if problem]
    if problems:
        raise Fail("cannot start the add-ons:\n  - " + "\n  - ".join(problems))
    shared = False if dry else use()
    added = {}
    for addon in addons:
        if dry:
            added.update(addon.placeholder())
            continue
        variables = addon.running()
        if variables and shared:
            say(f"{addon.name}: using the one another bin/dyno of this project runs")
        elif variables:
            say(
                f"{addon.name}: using the one left running by a bin/dyno of this project that was stopped before "
                f"it could stop it (pid {addon.pid()}); it stops after this one"
            )
        else:
            variables = addon.start(supervisor)
        added.update(variables)
    return added


IN_USE_FILE = []  # this bin/dyno's open .dyno/addons.lock


def use():
    """Hold .dyno/addons.lock shared while this bin/dyno uses the add-ons (until it exits); whether another
    bin/dyno holds it too. One that is stopping them holds it exclusively: this waits until they are stopped."""
    lock = open(IN_USE, "a")
    IN_USE_FILE.append(lock)
    fcntl.flock(lock, fcntl.LOCK_SH)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fcntl.flock(lock, fcntl.LOCK_SH)  # a conversion that fails may drop the shared lock (flock(2))
        return True
    fcntl.flock(lock, fcntl.LOCK_SH)
    return False


def stop(supervisor):
    """After this bin/dyno's dyno has stopped: if no other bin/dyno of the project uses the add-ons, stop
    every one that runs (the supervisor stops those it started, next); if one does, leave them to it."""
    if not IN_USE_FILE:
        return
    try:
        fcntl.flock(IN_USE_FILE[0], fcntl.LOCK_EX | fcntl.LOCK_NB)  # held until exit: starters wait
    except BlockingIOError:
        for name in [name for name, _signal, addon in supervisor.apart if addon]:
            say(f"{name} keeps running for another bin/dyno of this project: the last one to stop stops it")
            supervisor.leave_running(name)
        return
    started_here = {name for name, _signal, addon in supervisor.apart if addon}
    for addon in ADDONS:
        if addon.name not in started_here:
            addon.stop_started_elsewhere()


def needs_release(added):
    """Whether the app runs on bin/dyno's database and no release phase has succeeded on it yet."""
    return "DATABASE_URL" in added and not (STATE / "postgresql" / "released").exists()


def released():
    (STATE / "postgresql" / "released").touch()


def reset():
    """bin/dyno reset: delete .dyno/ (the database, Redis's data, generated secrets), if no bin/dyno runs."""
    if STATE.exists():
        lock = open(IN_USE, "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Fail("a bin/dyno of this project is running: stop it first") from None
        for addon in ADDONS:  # left running by a bin/dyno that was killed
            addon.stop_started_elsewhere()
    shutil.rmtree(STATE, ignore_errors=True)
    say(f"deleted {STATE}: the next start creates a new database and runs the release phase")
