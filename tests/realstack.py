"""Helpers for the real-stack tests: an ordinary user, a throwaway PostgreSQL and bin/dyno runs, each test
module's stack in a network namespace and /tmp of its own.

PostgreSQL and PgBouncer refuse to run as root, so everything of the dyno runs as an ordinary user
(STACK_USER, default "dyno", created with useradd when missing). Every wait below is bounded in time, and
every process started here is stopped by its pid: the dyno's processes are found by their session
(bin/dyno is started as a session leader and its children stay in its session).

Isolation. bin/dyno binds what the buildpacks fix: PgBouncer on 127.0.0.1:6000, nginx's /tmp/nginx.socket
and /tmp/app-initialized, PgBouncer's admin socket in /tmp. So that two test runs, and a user's own
`bin/dyno`, can run on one machine at once, each test module gets a StackNamespace: a network namespace
with only a loopback (the test thread enters it, so its sockets, PostgreSQL and every command it starts
live there) and a directory that is /tmp for every command run as the stack's user (a private mount
namespace per command, with that directory bind-mounted on /tmp). Namespaces need root; the real-stack
tests say so when run without it.
"""

import ctypes
import fcntl
import glob
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

STACK_USER = os.environ.get("STACK_USER", "dyno")
TOOLS = {  # program: Debian package
    "initdb": "postgresql",
    "pg_ctl": "postgresql",
    "postgres": "postgresql",
    "psql": "postgresql-client",
    "nginx": "nginx",
    "pgbouncer": "pgbouncer",
    "erb": "ruby",
    "unshare": "util-linux",
    "setpriv": "util-linux",
    "mount": "mount",
}
SBIN = "/usr/local/sbin:/usr/sbin:/sbin"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


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
            [_tool("useradd"), "--create-home", "--user-group", "--shell", "/bin/bash", STACK_USER],
            capture_output=True,
            text=True,
        )
        try:  # another test run may have created it meanwhile
            entry = pwd.getpwnam(STACK_USER)
        except KeyError:
            raise StackError(f"useradd {STACK_USER} failed: {result.stderr.strip()}") from None
    return User(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def postgres_bin():
    """Where PostgreSQL's server programs are: Debian and Ubuntu keep initdb, pg_ctl and postgres in
    /usr/lib/postgresql/<major>/bin, off the PATH (only pg_wrapper's psql is in /usr/bin); the newest
    major wins. None when no server is installed."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        return None
    newest = max(found, key=lambda path: [int(part) for part in path.split("/")[4].split(".") if part.isdigit()])
    return os.path.dirname(newest)


def tools_path():
    """PATH for the tests' own commands: PostgreSQL's programs first, then the caller's PATH and sbin."""
    parts = [postgres_bin(), os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), SBIN]
    return ":".join(part for part in parts if part)


def missing_tools():
    path = tools_path()
    return sorted({package for tool, package in TOOLS.items() if not shutil.which(tool, path=path)})


def _tool(name):
    return shutil.which(name, path=tools_path()) or name


def _syscall(result):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def setns(fd):
    """Move the calling thread into the network namespace open at fd."""
    _syscall(_libc.setns(fd, CLONE_NEWNET))


def _loopback_up():
    """ip link set lo up, by ioctl (a new network namespace's loopback is down)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sh22x", b"lo", flags | iff_up))


_active = []  # StackNamespaces the test thread is in, innermost last


def current_namespace():
    return _active[-1] if _active else None


class StackNamespace:
    """One stack's own network (a fresh loopback) and /tmp (`tmp`, a directory below `base`).

    Entering it moves the calling thread into the network namespace; threads and processes it starts
    afterwards are born there, so PostgreSQL, the dynos and every request of the tests meet on that
    loopback and nowhere else. Commands run with run_as or Dyno see `tmp` as /tmp. Leaving returns the
    thread to the network it came from; the namespace disappears with its last process.
    """

    def __init__(self, base):
        self.base = Path(base)
        self.tmp = self.base / "tmp"
        self.fd = self.outer = None

    def __enter__(self):
        if os.geteuid() != 0:
            raise StackError(
                "the real-stack tests run each stack in its own network and mount namespaces, which needs root: "
                "sudo .venv/bin/python -m pytest tests"
            )
        self.tmp.mkdir(parents=True, exist_ok=True)
        os.chmod(self.tmp, 0o1777)  # like /tmp: every user may create, only the owner remove
        self.outer = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _syscall(_libc.unshare(CLONE_NEWNET))
            self.fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            _loopback_up()
        except BaseException:
            self._leave()
            raise
        _active.append(self)
        return self

    def __exit__(self, *exc_info):
        if self in _active:
            _active.remove(self)
        self._leave()

    def _leave(self):
        if self.outer is not None:
            setns(self.outer)
            os.close(self.outer)
            self.outer = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    @contextmanager
    def entered(self):
        """Step into this (already created) namespace for a while, e.g. to look at a second stack."""
        back = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        setns(self.fd)
        _active.append(self)
        try:
            yield self
        finally:
            _active.remove(self)
            setns(back)
            os.close(back)


@contextmanager
def host_network():
    """The network the tests started in, for a while (pip needs PyPI; a stack's namespace has no route)."""
    outermost = _active[0] if _active else None
    if outermost is None:
        yield
        return
    back = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    setns(outermost.outer)
    try:
        yield
    finally:
        setns(back)
        os.close(back)


def user_command(user, argv):
    """(argv, Popen keyword arguments) that run argv as `user` and, inside a StackNamespace, with the
    stack's directory as /tmp: unshare(1) gives the command a private mount namespace, mount(8) binds the
    directory on /tmp, setpriv(1) drops to the user. Every exec keeps the pid, so the pid Popen returns is
    the command's own (bin/dyno's session id, what SIGTERM goes to)."""
    argv = [str(arg) for arg in argv]
    namespace = current_namespace()
    if namespace is None or os.geteuid() != 0:
        return argv, user.popen_kwargs()
    script = 'mount --bind -- "$1" /tmp || exit 125; shift; exec "$@"'
    wrapper = [_tool("unshare"), "--mount", "--propagation", "private", "--"]
    wrapper += ["/bin/sh", "-c", script.replace("mount ", _tool("mount") + " ", 1), "sh", str(namespace.tmp)]
    wrapper += [_tool("setpriv"), f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups", "--"]
    return wrapper + argv, {"umask": 0o022}


def start_session_as(user, argv, *, cwd, env, log, ready_file, timeout=60):
    """Start argv as `user` in a session of its own, output to `log`; return once `ready_file` exists (what a
    WSGI server touches for the nginx buildpack), failing if the process exits first or takes `timeout` s."""
    ready_file.unlink(missing_ok=True)
    command, kwargs = user_command(user, argv)
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )
    deadline = time.monotonic() + timeout
    while not ready_file.exists():
        if process.poll() is not None:
            raise StackError(f"{argv[0]} exited {process.returncode}\n{log.read_text()}")
        if time.monotonic() > deadline:
            stop_session(process)
            raise StackError(f"{ready_file} not there within {timeout} s\n{log.read_text()}")
        time.sleep(0.2)
    return process


def stop_session(process, timeout=30):
    """SIGTERM to the process's whole session (it was started with start_new_session), SIGKILL if it lingers."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def get_over_unix_socket(path, target="/health/", timeout=10):
    """A raw HTTP/1.0 GET over a unix socket, the way nginx reaches the WSGI server; the whole response."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        client.connect(str(path))
        client.sendall(f"GET {target} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        response = b""
        while chunk := client.recv(65536):
            response += chunk
    return response.decode(errors="replace")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_as(user, argv, *, env=None, cwd=None, timeout=120, check=True):
    """Run argv as `user` (with the stack's /tmp inside a StackNamespace), output captured; on failure raise
    with both streams. With no env, the tests' environment plus PostgreSQL's programs on PATH."""
    command, kwargs = user_command(user, argv)
    if env is None:
        env = {**os.environ, "PATH": tools_path()}
    result = subprocess.run(
        command,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kwargs,
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
        # These stacks stand for a real dyno behind the router: production https settings, not bin/dyno's
        # plain-http default for a browser (tests/test_dyno_local.py covers that).
        "DJANGO_LOCAL_HTTP": "false",
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


def task_form(index, fields):
    """(headers, body) of the index page's task form as a browser behind Heroku's router posts it over https,
    with the CSRF cookie and token of `index`, GET /'s (status, headers, body); JSON back."""
    status, headers, body = index
    assert status == 200, body[:500]
    cookie = next(c.split(";")[0] for c in headers["set-cookie"] if c.startswith("csrftoken="))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)[1].decode()
    post_headers = {
        "X-Forwarded-Proto": "https",  # what Heroku's router adds
        "Host": "localhost",
        "Cookie": cookie,
        "Referer": "https://localhost/",
        "Origin": "https://localhost",
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    }
    return post_headers, urlencode({**fields, "csrfmiddlewaretoken": token}).encode()


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


class Dyno:
    """`bin/dyno <type>` running as `user` in `project`; always stopped (SIGTERM, then by pid) on exit.

    stop() records what a shutdown looked like: seconds from SIGTERM until bin/dyno exited, its exit status
    and every process of the dyno (see dyno_pids) still there afterwards; those are then killed by pid so
    that nothing outlives a test. Inside a StackNamespace the dyno has the namespace's network and /tmp
    (`tmp` is that directory as the tests see it).
    """

    def __init__(self, project, process_type, env, user, log_path, postgres=None):
        self.project, self.process_type, self.env, self.user = Path(project), process_type, env, user
        self.argv = [self.project / "bin" / "dyno", process_type]  # what runs; a subclass may run another command
        self.log_path, self.postgres = Path(log_path), postgres
        self.process, self.stopped = None, None
        namespace = current_namespace()
        self.tmp = namespace.tmp if namespace else Path("/tmp")

    def __enter__(self):
        command, kwargs = user_command(self.user, self.argv)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.project,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )
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
                value = predicate()  # it may have come true as the process ended (its exit, for one)
                if value:
                    return value
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

    def app_pid(self, timeout=5):
        """The app among bin/dyno's children. bin/dyno is a subreaper, so a killed process's children are
        briefly its children too while they die (an empty command line once exiting): wait them out."""
        others = ("tail ", "nginx", "pgbouncer", "postgres", "redis-server", "memcached")  # add-ons: bin/dyno's
        deadline = time.monotonic() + timeout
        while True:
            children = self.children()
            apps = [pid for pid, cmd in children.items() if cmd and not any(word in cmd for word in others)]
            if len(apps) == 1:
                return apps[0]
            if time.monotonic() > deadline:
                self.fail(f"expected one app process among bin/dyno's children, found {children}")
            time.sleep(0.1)

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
        return self._stop(timeout)

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


class OpenTransaction:
    """A psql session of `user` that runs `statements` in a transaction and holds it open until release(): the
    locks those statements took are held as long."""

    def __init__(self, connection, statements, user):
        self.process = subprocess.Popen(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *connection],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **user.popen_kwargs(),
        )
        self.process.stdin.write(f"BEGIN;\n{statements}\n\\echo holding\n")
        self.process.stdin.flush()
        lines = []  # a SELECT's rows come before the marker; an error, or psql's exit, instead of it
        while not lines or lines[-1] not in ("holding\n", ""):
            lines.append(self.process.stdout.readline())
        assert lines[-1] == "holding\n", lines

    def release(self):
        if self.process.poll() is None:
            self.process.stdin.write("ROLLBACK;\n")
            self.process.stdin.close()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class TableLock(OpenTransaction):
    """Holds an ACCESS EXCLUSIVE lock on `table` (as the superuser) until release(), so that queries on it wait.

    `stack` is any object with the stack's postgres, database and user."""

    def __init__(self, stack, table="example_exampleresult"):
        self.stack = stack
        pg = stack.postgres
        connection = ["-h", str(pg.sockets), "-p", str(pg.port), "-U", "postgres", "-d", stack.database]
        super().__init__(connection, f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;", stack.user)

    def waiters(self):
        """How many of the database's sessions wait for a lock."""
        rows = self.stack.postgres.sql(
            "SELECT count(*) FROM pg_stat_activity "
            f"WHERE datname = '{self.stack.database}' AND wait_event_type = 'Lock'"
        )
        return int(rows[0][0])
