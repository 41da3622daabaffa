"""Stacks in namespaces of their own (realstack.StackNamespace): two at once, beside what a user's own
`bin/dyno` holds on this machine (127.0.0.1:6000 and /tmp/nginx.socket in the host's network and /tmp).

Each stack's PgBouncer binds 127.0.0.1:6000 and its nginx and app meet on /tmp/nginx.socket, the buildpacks'
fixed places; here both stacks do so at the same time, while the host's own port 6000 and /tmp/nginx.socket
are taken, and every one of them still answers afterwards. Also: PostgreSQL's programs are found without
PATH help, and the dyno user can run the cached venv, which lives outside the checkout.
"""

import contextlib
import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

import realstack as rs
from conftest import ROOT, STACKS_DIR, open_dir

HTTPS = {"X-Forwarded-Proto": "https", "Host": "localhost"}


@contextlib.contextmanager
def host_holds_the_fixed_places():
    """Listen on the host's 127.0.0.1:6000 and /tmp/nginx.socket, as a user's bin/dyno would; yields a
    function that says whether the ones we hold still accept connections. Where something else already
    holds one (someone's stack on this machine), that is the same situation; it may end at any time, so
    only our own are checked."""
    with contextlib.ExitStack() as stack:
        checks = []
        tcp = stack.enter_context(socket.socket())
        try:
            tcp.bind(("127.0.0.1", 6000))
            tcp.listen()
            checks.append((socket.AF_INET, ("127.0.0.1", 6000)))
        except OSError:
            pass
        path = Path("/tmp/nginx.socket")
        if not path.exists():
            unix = stack.enter_context(socket.socket(socket.AF_UNIX))
            unix.bind(str(path))
            unix.listen()
            inode = path.stat().st_ino
            stack.callback(lambda: path.stat().st_ino == inode and path.unlink())
            checks.append((socket.AF_UNIX, str(path)))

        def ours_answer():
            with rs.host_network():
                for family, address in checks:
                    with socket.socket(family) as probe:
                        probe.settimeout(5)
                        if probe.connect_ex(address) != 0:
                            return False
            return True

        yield ours_answer


def boot(namespace, name, bake, venv, user, cleanup):
    """PostgreSQL and a web dyno in `namespace` (the thread is in it); returns (dyno, port)."""
    postgres = rs.Postgres(namespace.base / "postgres", user).start()
    cleanup.callback(postgres.stop)
    project = rs.prepare_project(bake, namespace.base / name, user, venv)
    port = rs.free_port()
    env = rs.base_env(
        user,
        venv,
        DJANGO_SECRET_KEY="isolation-" + "k" * 60,
        DATABASE_URL=postgres.create_database(name),
        PORT=port,
    )
    dyno = rs.Dyno(project, "web", env, user, namespace.base / f"{name}.log", postgres).__enter__()
    cleanup.callback(dyno.stop)
    dyno.wait_http(port)
    return dyno, port


def test_two_stacks_at_once_beside_the_hosts_port_6000_and_nginx_socket(bake_once, baked_venv, user):
    base = Path(tempfile.mkdtemp(prefix="test_isolation-", dir=open_dir(STACKS_DIR)))
    for name in ("a", "b"):
        (base / name).mkdir()
    user.chown(base)
    bake = bake_once()
    try:
        with host_holds_the_fixed_places() as host_answers, contextlib.ExitStack() as cleanup:
            assert host_answers()
            with rs.StackNamespace(base / "a") as a:
                first, first_port = boot(a, "first", bake, baked_venv, user, cleanup)
                with rs.StackNamespace(base / "b") as b:
                    second, second_port = boot(b, "second", bake, baked_venv, user, cleanup)
                    assert rs.http_request(second_port, "GET", "/health/", HTTPS)[0] == 200
                    with a.entered():
                        assert rs.http_request(first_port, "GET", "/health/", HTTPS)[0] == 200
                    for dyno, namespace in ((first, a), (second, b)):
                        # each stack's fixed places are its own: PgBouncer on 6000, nginx's socket in its /tmp
                        assert dyno.app_environ()["DATABASE_URL"].startswith("postgres://")
                        assert "@127.0.0.1:6000/" in dyno.app_environ()["DATABASE_URL"]
                        assert stat.S_ISSOCK((namespace.tmp / "nginx.socket").stat().st_mode)
                        assert (namespace.tmp / ".s.PGSQL.6000").exists()
                    assert host_answers(), "a stack took the host's 127.0.0.1:6000 or /tmp/nginx.socket"
            for dyno in (first, second):
                record = dyno.stop()
                assert not record["leftovers"], record
            assert host_answers()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_postgresql_programs_are_found_without_path_help(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert rs.missing_tools() == []
    bin_dir = rs.postgres_bin()
    assert bin_dir.startswith("/usr/lib/postgresql/") and os.access(f"{bin_dir}/initdb", os.X_OK)
    assert rs.tools_path().split(":")[0] == bin_dir


def test_the_dyno_user_can_run_the_cached_venv_whatever_the_checkout(baked_venv, user):
    assert not Path(baked_venv).resolve().is_relative_to(ROOT)
    result = rs.run_as(user, [f"{baked_venv}/bin/python", "-c", "import django; print(django.VERSION[0])"])
    assert result.stdout.strip().isdigit()


def test_the_dyno_users_commands_start_where_it_may_enter(workdir, user):
    """A checkout under /root or a home (mode 700) is closed to the dyno user: its commands started without
    a directory of their own start in the module's stack directory, not in ours (PostgreSQL's programs
    otherwise fail with "could not change directory")."""
    result = rs.run_as(user, ["sh", "-c", 'cd -- "$(pwd)" && pwd'])
    assert result.stdout.strip() == str(workdir)
