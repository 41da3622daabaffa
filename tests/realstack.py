"""Helpers for the real-stack tests: an ordinary user, a throwaway PostgreSQL 15 and bin/dyno runs.

PostgreSQL and PgBouncer refuse to run as root, and CI runs as root, so everything of the dyno runs as an
ordinary user (STACK_USER, default "dyno", created with useradd when missing). As an ordinary user the
tests run it all as themselves. Every wait below is bounded in time, and every process started here is
stopped by its pid: the dyno's processes are found by their session (bin/dyno is started as a session
leader and its children stay in its session).
"""

import fcntl
import http.client
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

STACK_USER = os.environ.get("STACK_USER", "dyno")
# bin/dyno's fixed paths (/tmp/nginx.socket, port 6000) allow one stack at a time on a machine.
LOCK_FILE = "/tmp/heroku-django-stack.lock"
TOOLS = {  # program: Debian package
    "initdb": "postgresql-15",
    "pg_ctl": "postgresql-15",
    "postgres": "postgresql-15",
    "psql": "postgresql-client-15",
    "nginx": "nginx",
    "pgbouncer": "pgbouncer",
    "erb": "ruby",
}
SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


class StackError(AssertionError):
    """A prerequisite or a step of the stack failed; the message says which and shows the output."""


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str

    def popen_kwargs(self):
        """subprocess arguments that run a command as this user (nothing when we are that user)."""
        if os.geteuid() == self.uid:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "umask": 0o022}

    def chown(self, path):
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(path)], check=True)


def ordinary_user():
    """The user the stack runs as: STACK_USER (created if missing) when root, else ourselves."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return User(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)
    try:
        entry = pwd.getpwnam(STACK_USER)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", STACK_USER],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(f"useradd {STACK_USER} failed: {result.stderr.strip()}") from None
        entry = pwd.getpwnam(STACK_USER)
    return User(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def missing_tools():
    path = os.environ.get("PATH", "") + ":" + SBIN
    missing = sorted({package for tool, package in TOOLS.items() if not shutil.which(tool, path=path)})
    return missing


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_as(user, argv, *, env=None, cwd=None, timeout=120, check=True):
    """Run argv as `user`, output captured; on failure raise with both streams."""
    result = subprocess.run(
        [str(arg) for arg in argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **user.popen_kwargs(),
    )
    if check and result.returncode != 0:
        raise StackError(
            f"{argv} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def base_env(user, venv, **extra):
    """A small, explicit environment: the venv's bin first, no sbin (bin/dyno must find nginx itself)."""
    env = {
        "PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": user.home,
        "USER": user.name,
        "LANG": "C.UTF-8",
    }
    env.update({key: str(value) for key, value in extra.items()})
    return env


class Postgres:
    """A throwaway PostgreSQL cluster owned by `user`, on 127.0.0.1 with scram-sha-256 passwords."""

    APP_USER, APP_PASSWORD = "app", "app-Pass_word-1"

    def __init__(self, base, user):
        self.base, self.user = Path(base), user
        self.data, self.sockets = self.base / "data", self.base / "sock"
        self.port = None

    def start(self):
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        (self.base / "pwfile").write_text("postgres-superuser-password\n")
        self.user.chown(self.base)
        run_as(
            self.user,
            [
                "initdb",
                "-D",
                self.data,
                "-U",
                "postgres",
                "--pwfile",
                self.base / "pwfile",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )
        self.port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.sockets} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c password_encryption=scram-sha-256"
        )
        run_as(
            self.user,
            ["pg_ctl", "-D", self.data, "-l", self.base / "postgres.log", "-w", "-t", "60", "-o", options, "start"],
        )
        self.sql(f"CREATE ROLE {self.APP_USER} LOGIN PASSWORD '{self.APP_PASSWORD}'")
        return self

    def sql(self, query, database="postgres"):
        """Run one statement as the superuser over the unix socket; returns rows as lists of strings."""
        result = run_as(
            self.user,
            [
                "psql",
                "-X",
                "-h",
                self.sockets,
                "-p",
                self.port,
                "-U",
                "postgres",
                "-d",
                database,
                "-At",
                "-F",
                "\t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                query,
            ],
            timeout=60,
        )
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def create_database(self, name):
        """A database owned by the app role; returns its URL in Heroku's form."""
        self.sql(f"CREATE DATABASE {name} OWNER {self.APP_USER}")
        return f"postgres://{self.APP_USER}:{self.APP_PASSWORD}@127.0.0.1:{self.port}/{name}"

    def stop(self):
        if not (self.data / "postmaster.pid").exists():
            return
        result = run_as(self.user, ["pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"], check=False)
        if result.returncode != 0 and (self.data / "postmaster.pid").exists():
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)


def process_table():
    """{pid: (ppid, session id, uid, command line)} from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            uid = (entry / "status").stat().st_uid
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if fields[0] != "Z":  # after the command: state, ppid, process group, session
            table[int(entry.name)] = (int(fields[1]), int(fields[3]), uid, cmdline)
    return table


def http_request(port, method, path, headers=None, body=None, timeout=15):
    """(status, {lowercase header: [values]}, body) from 127.0.0.1:port."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        received = {}
        for name, value in response.getheaders():
            received.setdefault(name.lower(), []).append(value)
        return response.status, received, response.read()
    finally:
        connection.close()


def stack_resources_free():
    """True when nothing listens on 127.0.0.1:6000 or serves on /tmp/nginx.socket."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", 6000))
        except OSError:
            return False
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(1)
        return probe.connect_ex("/tmp/nginx.socket") != 0


def stack_lock(timeout=600):
    """An open, exclusively locked LOCK_FILE, once the fixed paths are free too (someone else's stack on
    this machine may hold them without taking the lock); close it to release."""
    lock = open(LOCK_FILE, "a")
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if stack_resources_free():
                    return lock
                fcntl.flock(lock, fcntl.LOCK_UN)
            except BlockingIOError:
                pass
            if time.monotonic() > deadline:
                raise StackError(f"port 6000 or /tmp/nginx.socket stayed busy for {timeout} s: another stack runs")
            time.sleep(0.5)
    except BaseException:
        lock.close()
        raise


class Dyno:
    """`bin/dyno <type>` running as `user` in `project`; always stopped (SIGTERM, then by pid) on exit.

    stop() records what a shutdown looked like: seconds from SIGTERM until bin/dyno exited, its exit status
    and every process of the dyno (see dyno_pids) still there afterwards; those are then killed by pid so
    that nothing outlives a test. The stack lock is held from start to stop.
    """

    def __init__(self, project, process_type, env, user, log_path, postgres=None):
        self.project, self.process_type, self.env, self.user = Path(project), process_type, env, user
        self.log_path, self.postgres = Path(log_path), postgres
        self.process, self.lock, self.stopped = None, None, None

    def __enter__(self):
        self.lock = stack_lock()  # held for the dyno's whole life
        log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(
                [str(self.project / "bin" / "dyno"), self.process_type],
                cwd=self.project,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self.user.popen_kwargs(),
            )
        except BaseException:
            self.lock.close()
            raise
        finally:
            log.close()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def output(self):
        return self.log_path.read_text(errors="replace")

    def fail(self, message):
        raise StackError(f"{message}\n--- bin/dyno {self.process_type} output (last 6000 chars)\n{self.output[-6000:]}")

    def wait_for(self, predicate, what, timeout=60, interval=0.2):
        """Poll predicate() until it returns something true; fail if bin/dyno exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.process.poll() is not None:
                self.fail(
                    f"bin/dyno {self.process_type} exited with {self.process.returncode} while waiting for {what}"
                )
            time.sleep(interval)
        self.fail(f"timed out after {timeout} s waiting for {what}")

    def wait_http(self, port, path="/health/", timeout=60):
        def answers():
            try:
                return http_request(port, "GET", path, {"X-Forwarded-Proto": "https"}, timeout=5)[0] == 200
            except OSError:
                return False

        return self.wait_for(answers, f"GET {path} to answer 200 on port {port}", timeout)

    def dyno_pids(self):
        """Pids of this dyno: bin/dyno's session, plus any process of the user running in or from the
        project directory (one that left the session). Other people's processes of the same user are
        never counted, nor PostgreSQL's."""
        project = str(self.project)
        pids = set()
        for pid, (_ppid, session, uid, cmdline) in process_table().items():
            if self.process and session == self.process.pid:
                pids.add(pid)
            elif uid == self.user.uid and pid != os.getpid():
                try:
                    cwd = os.readlink(f"/proc/{pid}/cwd")
                except OSError:
                    cwd = ""
                if cwd == project or cwd.startswith(project + "/") or project + "/" in cmdline:
                    pids.add(pid)
        return pids

    def children(self):
        """{pid: command line} of bin/dyno's direct children."""
        return {pid: cmd for pid, (ppid, _s, _u, cmd) in process_table().items() if ppid == self.process.pid}

    def app_pid(self):
        others = ("tail ", "nginx", "pgbouncer")
        apps = [pid for pid, cmd in self.children().items() if not any(word in cmd for word in others)]
        if len(apps) != 1:
            self.fail(f"expected one app process among bin/dyno's children, found {self.children()}")
        return apps[0]

    def app_environ(self):
        """The environment bin/dyno gave the app, read from /proc (we are root or the same user)."""
        raw = Path(f"/proc/{self.app_pid()}/environ").read_bytes()
        return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)

    def run_in_dyno(self, argv, timeout=120, check=True):
        """Run a command beside the app, with the app's own environment (DATABASE_URL via PgBouncer)."""
        return run_as(self.user, argv, env=self.app_environ(), cwd=self.project, timeout=timeout, check=check)

    def stop(self, timeout=45):
        """SIGTERM bin/dyno (as Heroku would the dyno) once; returns the record described above."""
        if self.stopped is not None or self.process is None:
            return self.stopped
        try:
            return self._stop(timeout)
        finally:
            self.lock.close()  # the next stack may start

    def _stop(self, timeout):
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 3  # let the kernel finish tearing processes down
        leftovers = self.dyno_pids()
        while leftovers and time.monotonic() < deadline:
            time.sleep(0.1)
            leftovers = self.dyno_pids()
        table = process_table()
        self.stopped = {
            "elapsed": elapsed,
            "returncode": self.process.poll(),
            "leftovers": {pid: table.get(pid, (0, 0, 0, "?"))[3] for pid in leftovers},
        }
        for pid in [self.process.pid, *leftovers]:  # nothing outlives the test, whatever happened
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass
        return self.stopped


def prepare_project(baked, workdir, user, venv, build=True):
    """Copy a bake where `user` owns it and run Heroku's build step: collectstatic with no config vars."""
    project = Path(workdir) / Path(baked).name
    shutil.copytree(baked, project, symlinks=True)
    user.chown(workdir)
    if build:
        env = base_env(user, venv)
        run_as(user, [f"{venv}/bin/python", "manage.py", "collectstatic", "--noinput"], env=env, cwd=project)
    return project
