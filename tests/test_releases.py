"""Releases that cannot take the app down, on the real stack: the release phase's lock waits bounded
(`manage.py migrate_release`, RELEASE_LOCK_TIMEOUT) and the migrations `manage.py lint_migrations` refuses.

For a pip and a uv bake: `bin/dyno release`, then `bin/dyno web` (nginx, PgBouncer, gunicorn) as an ordinary
user against a throwaway PostgreSQL, with app.json's config vars; the example's page ("/") reads the
example_exampleresult table on every request, and a client asks for it back to back while a migration of
that table runs in a new release phase:

- a transaction holds a lock on the table (ACCESS SHARE, as any open transaction that read it does), so
  the migration's ALTER TABLE waits, and every query of the page queues behind the ALTER. Unbounded
  (RELEASE_LOCK_TIMEOUT=0), the page's requests fail at the statement timeout for as long as the lock is
  held; bounded, they wait at most the bound and all answer 200, and the release phase either gets the
  lock on a later try or fails saying what waited on what and how to retry;
- the old code serving while a migration drops a column it reads (one lint_migrations refuses): its
  requests fail from then on; the two-deploy version lint_migrations accepts fails none.

DATABASE_STATEMENT_TIMEOUT is 3s here (25s on a dyno) and RELEASE_LOCK_TIMEOUT 1s (5s by default), so that
the test waits seconds. The figures go to the run's "figures" summary.
"""

import json
import os
import shutil
import threading
import time
from collections import Counter

import pytest
from uv import find_uv_bin

import realstack as rs
from conftest import SYSTEM_PYTHON, figure, run

UV = find_uv_bin()
HTTPS = {"X-Forwarded-Proto": "https", "Host": "localhost"}
STATEMENT_TIMEOUT = 3
LOCK_TIMEOUT = 1
TABLE = "example_exampleresult"

ADD_COLUMN = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("example", "{previous}")]
    operations = [migrations.AddField("exampleresult", "{column}", models.TextField(null=True))]
"""
# Drops a column: while the running code reads it, a migration lint_migrations refuses.
DROP_FIELD = """from django.db import migrations, models


class Migration(migrations.Migration):
{extra}    dependencies = [("example", "{previous}")]
    operations = [{operations}migrations.RemoveField("exampleresult", "{field}")]
"""
# The first half of the two-deploy version: the code stops using the column, which stays, now nullable.
FORGET_DIGEST = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("example", "{previous}")]
    operations = [
        migrations.AlterField("exampleresult", "digest", models.CharField(max_length=64, null=True)),
        migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField("exampleresult", "digest")]),
    ]
"""
# The second half: the field, gone from the models since the first, put back in the migrations' state alone
# so that RemoveField can drop its column; marked as what it is, which lint_migrations then accepts.
SECOND_DEPLOY = '    second_deploy = "the release before stopped using ExampleResult.digest"\n'
STATE_ONLY_FIELD = (
    "migrations.SeparateDatabaseAndState(state_operations=[migrations.AddField("
    '"exampleresult", "digest", models.CharField(max_length=64, null=True))]), '
)


class Client(threading.Thread):
    """Asks for the page back to back until stopped: [(status, seconds)]."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.results, self.stopping = port, [], threading.Event()

    def run(self):
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                status = rs.http_request(self.port, "GET", "/", HTTPS, timeout=45)[0]
            except OSError as error:
                status = type(error).__name__
            self.results.append((status, time.monotonic() - started))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        self.join(60)

    def figures(self):
        failed = Counter(status for status, _ in self.results if status != 200)
        slowest = max((seconds for _, seconds in self.results), default=0.0)
        return {
            "requests": len(self.results),
            "failed": sum(failed.values()),
            "slowest_s": slowest,
            "failures": dict(failed),
        }


def release_under_traffic(stack, what, after=1):
    """The release phase while a client requests the table's page: a second of traffic before it, `after`
    seconds after it. Returns (exit status, output, the client's figures, the client), the figures recorded."""
    with Client(stack.port) as client:
        time.sleep(1)
        status, output = stack.release()
        time.sleep(after)
    figures = client.figures()
    figure(what, release_exit=status, **figures)
    return status, output, figures, client


def reader(stack):
    """An open transaction of the app's role (a `heroku run` shell, a long report) that has read the table: it
    holds ACCESS SHARE on it until it ends."""
    return rs.OpenTransaction([stack.env["DATABASE_URL"]], f"SELECT count(*) > -1 AS read FROM {TABLE};", stack.user)


class Stack:
    """The running release (`web`, from its own copy of the project: the old slug) and the next slug, where
    the release phase runs and new migrations are written: on Heroku they are separate dynos, and here
    stopping a bin/dyno stops every process of the user in its project directory."""

    def __init__(self, project, env, user, postgres, workdir, database, python):
        self.next, self.env, self.user, self.postgres = project, env, user, postgres
        self.workdir, self.database, self.python = workdir, database, python
        self.port, self.web, self.releases, self.slugs, self.migrations = int(env["PORT"]), None, 0, 0, 1

    def release(self, wait=True, **environ):
        """`bin/dyno release` (the Procfile's release line) in the next slug; with wait, until it exits:
        (exit status, output)."""
        self.releases += 1
        env = {**self.env, **{key: str(value) for key, value in environ.items()}}
        log = self.workdir / f"release-{self.releases}.log"
        dyno = rs.Dyno(self.next, "release", env, self.user, log, self.postgres).__enter__()
        if not wait:
            return dyno
        return self.finish(dyno)

    def finish(self, dyno, timeout=180):
        try:
            dyno.wait_for(lambda: dyno.process.poll() is not None, "the release phase to finish", timeout=timeout)
        finally:
            dyno.__exit__(None, None, None)
        return dyno.process.returncode, dyno.output

    def deploy_web(self):
        """Start the web dyno on a copy of the next slug, as it is now (the old one, if any, stopped first)."""
        self.stop_web()
        self.slugs += 1
        slug = self.workdir / f"slug-{self.slugs}" / self.next.name
        shutil.copytree(self.next, slug, symlinks=True, ignore=shutil.ignore_patterns(".dyno"))
        # A uv bake's .venv: its scripts' #! lines name the slug they were installed in; this slug's own, so
        # that no process of the web dyno names the next slug (stopping the release dyno would stop it).
        for script in (slug / ".venv/bin").glob("*"):
            if script.is_file() and not script.is_symlink():
                data = script.read_bytes()
                script.write_bytes(data.replace(str(self.next).encode() + b"/", str(slug).encode() + b"/"))
        self.user.chown(slug.parent)
        self.web = rs.Dyno(slug, "web", self.env, self.user, self.workdir / f"web-{self.slugs}.log", self.postgres)
        self.web.__enter__()
        self.web.wait_http(self.port)

    def stop_web(self):
        if self.web is not None:
            self.web.stop()
            self.web = None

    def add_migration(self, text, **fields):
        self.migrations += 1
        previous = sorted(path.stem for path in (self.next / "example/migrations").glob("0*.py"))[-1]
        name = f"{self.migrations:04d}_release_case"
        path = self.next / "example/migrations" / f"{name}.py"
        path.write_text(text.format(previous=previous, **fields))
        self.user.chown(path)
        return name

    def edit(self, name, *replacements):
        path = self.next / name
        text = path.read_text()
        for old, new in replacements:
            assert old in text, (name, old)
            text = text.replace(old, new)
        path.write_text(text)

    def manage(self, *args, check=True, **environ):
        """manage.py in the next slug, straight against PostgreSQL (as `heroku run` does)."""
        env = {**self.env, **{key: str(value) for key, value in environ.items()}}
        return rs.run_as(self.user, [self.python, "manage.py", *args], env=env, cwd=self.next, check=check)

    def alter_waiting(self):
        """Whether a migration's ALTER TABLE waits for its lock now."""
        rows = self.postgres.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE%'",
            self.database,
        )
        return int(rows[0][0]) > 0

    def columns(self):
        rows = self.postgres.sql(
            f"SELECT column_name FROM information_schema.columns WHERE table_name = '{TABLE}'", self.database
        )
        return {row[0] for row in rows}


def uv_synced(project):
    """What Heroku installs for a uv bake: `uv sync --locked --no-default-groups` into .venv (as test_uv_stack)."""
    shutil.rmtree(project / ".venv", ignore_errors=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("UV_", "VIRTUAL_ENV"))}
    env.update(UV_PYTHON=SYSTEM_PYTHON, UV_PYTHON_DOWNLOADS="never", UV_NO_MANAGED_PYTHON="1", UV_LINK_MODE="copy")
    with rs.host_network():  # packages from PyPI, or uv's cache
        run([UV, "sync", "--locked", "--no-default-groups"], cwd=project, env=env, timeout=900)
    return project / ".venv"


@pytest.fixture(params=["pip", "uv"])
def stack(request, bake_once, baked_venv, user, workdir, postgres):
    """A fresh project and database per test: released once, its web dyno serving."""
    manager = request.param
    name = f"releases_{manager}_{request.node.originalname.removeprefix('test_')[:20]}"
    base = workdir / name
    if manager == "pip":
        project = rs.prepare_project(bake_once(), base, user, baked_venv)
        venv = baked_venv
    else:
        project = rs.prepare_project(bake_once(package_manager="uv"), base, user, None, build=False)
        venv = uv_synced(project)
        user.chown(base)
        env = rs.base_env(user, "/nonexistent")
        rs.run_as(user, [venv / "bin/python", "manage.py", "collectstatic", "--noinput"], env=env, cwd=project)
    app_json = json.loads((project / "app.json").read_text())
    config_vars = {key: spec["value"] for key, spec in app_json["env"].items() if "value" in spec}
    env = rs.base_env(
        user,
        venv,
        DJANGO_SECRET_KEY="releases-" + "k" * 60,
        DATABASE_URL=postgres.create_database(name),
        PORT=rs.free_port(),
        DATABASE_STATEMENT_TIMEOUT=f"{STATEMENT_TIMEOUT}s",
        RELEASE_LOCK_TIMEOUT=f"{LOCK_TIMEOUT}s",
        **config_vars,
    )
    s = Stack(project, env, user, postgres, base, name, str(venv / "bin/python"))
    status, output = s.release()
    assert status == 0, output[-4000:]
    s.deploy_web()
    for key in ("a", "b", "c"):  # rows for the page to list
        s.manage("shell", "-c", f"from example.models import ExampleResult as R; R.objects.create(key={key!r})")
    assert rs.http_request(s.port, "GET", "/", HTTPS)[0] == 200
    yield s
    s.stop_web()


def test_a_lock_wait_in_the_release_phase_is_bounded_and_the_page_keeps_answering(stack):
    # Unbounded: the ALTER waits as long as the reader's transaction lasts, and the page's queries behind it.
    stack.add_migration(ADD_COLUMN, column="note")
    holder = reader(stack)
    try:
        with Client(stack.port) as client:
            release = stack.release(wait=False, RELEASE_LOCK_TIMEOUT="0")
            release.wait_for(stack.alter_waiting, "the migration to wait for its lock")
            time.sleep(3 * STATEMENT_TIMEOUT)  # as long as the reader's transaction lasts
            holder.release()
            status, output = stack.finish(release)
            time.sleep(1)
    finally:
        holder.release()
    unbounded = client.figures()
    what = f"unbounded lock wait (RELEASE_LOCK_TIMEOUT=0, the ALTER waiting {3 * STATEMENT_TIMEOUT} s)"
    figure(what, release_exit=status, **unbounded)
    assert status == 0, output[-3000:]
    assert unbounded["failed"] >= 2 and unbounded["failures"].get(500) == unbounded["failed"], client.results
    assert unbounded["slowest_s"] >= STATEMENT_TIMEOUT, client.results

    # Bounded, the lock held for good: each try gives up after the bound; the release fails saying so.
    migration = stack.add_migration(ADD_COLUMN, column="note2")
    holder = reader(stack)
    try:
        with Client(stack.port) as client:
            started = time.monotonic()
            result = stack.manage("migrate_release", "--noinput", "--lock-retries=1", "--lock-pause=1", check=False)
            elapsed = time.monotonic() - started
            time.sleep(1)
    finally:
        holder.release()
    held = client.figures()
    figure("bounded, lock held for good (2 tries)", release_exit=result.returncode, release_s=elapsed, **held)
    assert result.returncode == 1, result.stdout + result.stderr
    message = result.stderr
    assert "Traceback" not in message, message
    assert f"CommandError: Migration example.{migration} waited {LOCK_TIMEOUT}s for a lock and gave up" in message
    assert f'ALTER TABLE "{TABLE}" ADD COLUMN "note2"' in message, message
    assert f"held on {TABLE}: AccessShareLock by pid " in message and "idle in transaction" in message, message
    assert "Gave up after 2 tries" in message and "heroku releases:retry" in message, message
    assert "note2" not in stack.columns()
    assert held["failed"] == 0, client.results
    assert held["slowest_s"] < LOCK_TIMEOUT + 1.5, client.results  # the bound, plus the page's own time

    # Bounded, the lock held for a moment: the Procfile's release line waits it out on a later try.
    holder = reader(stack)
    try:
        with Client(stack.port) as client:
            release = stack.release(wait=False)
            release.wait_for(lambda: "gave up on a lock; trying again" in release.output, "a first try to give up")
            holder.release()
            status, output = stack.finish(release)
            time.sleep(1)
    finally:
        holder.release()
    moment = client.figures()
    figure("bounded, lock held for a moment (Procfile release line)", release_exit=status, **moment)
    assert status == 0 and "Try 1 of 4 gave up on a lock" in output, output[-3000:]
    assert "note2" in stack.columns()
    assert moment["failed"] == 0 and moment["slowest_s"] < LOCK_TIMEOUT + 1.5, client.results


def test_the_old_code_fails_on_a_refused_migration_and_not_on_the_two_deploy_version(stack):
    # The two-deploy version of dropping ExampleResult.digest, which lint_migrations accepts: first the code
    # stops using the column, which stays (nullable), while the old code serves ...
    stack.add_migration(FORGET_DIGEST)
    stack.edit("example/models.py", ("    digest = models.CharField(max_length=64)\n", ""), ("{self.digest[:12]}", "-"))
    stack.edit("example/admin.py", ('"digest", ', ""))
    assert "safe to apply while the app runs" in stack.manage("lint_migrations").stdout
    status, output, first_half, client = release_under_traffic(stack, "old code while the first half applies")
    assert status == 0, output[-3000:]
    assert first_half["failed"] == 0, client.results

    # ... then that code is deployed, and the next release drops the column.
    stack.deploy_web()
    second = stack.add_migration(DROP_FIELD, field="digest", extra=SECOND_DEPLOY, operations=STATE_ONLY_FIELD)
    lint = stack.manage("lint_migrations")
    assert f"example.{second}: accepted as a second deploy" in lint.stdout, lint.stdout
    status, output, second_half, client = release_under_traffic(
        stack, "code of the first half while the second half drops the column"
    )
    assert status == 0, output[-3000:]
    assert "digest" not in stack.columns()
    assert second_half["failed"] == 0, client.results

    # The version lint_migrations refuses: dropping ExampleResult.runs while the code that reads it serves.
    refused = stack.add_migration(DROP_FIELD, field="runs", extra="", operations="")
    lint = stack.manage("lint_migrations", check=False)
    assert lint.returncode == 1 and f"example.{refused}): RemoveField" in lint.stderr, lint.stdout + lint.stderr
    status, output, dropped, client = release_under_traffic(
        stack, "old code while a refused migration drops its column", after=2
    )
    assert status == 0, output[-3000:]
    assert "runs" not in stack.columns()
    assert dropped["failed"] >= 5 and all(result[0] == 500 for result in client.results[-5:]), client.results
