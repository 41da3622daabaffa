"""`manage.py migrate_release`: Django's migrate for the release phase, with its lock waits bounded.

An ALTER TABLE first waits for its lock behind every open transaction on the table, and while it waits,
every later query on that table queues behind it: the web dynos' requests stall until their statement
timeout. A lock_timeout on the migration's own session makes the migration give up instead, after
RELEASE_LOCK_TIMEOUT ("5s"; "0": wait as long as it takes), and the app keeps answering.
https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-LOCK-TIMEOUT

A lock held for a moment should not fail the deploy, so a migration that gave up on a lock (SQLSTATE 55P03,
lock_not_available) is tried again, a few times with a pause between; each migration runs in its own
transaction, so the ones already applied stay applied. If the last try gives up too, the command fails
with a message naming the migration, the statement that waited and who held the lock: a failed release
phase stops the deploy and the previous release keeps serving.
https://devcenter.heroku.com/articles/release-phase

The SET is made only on a connection straight to PostgreSQL (the release phase's): through a PgBouncer in
transaction mode it would stay on a server connection that other clients then use.
"""

import os
import re
import time

from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import connections
from django.db.backends.signals import connection_created

from heroku_runtime.pgbouncer import through_pgbouncer

DEFAULT_LOCK_TIMEOUT = "5s"
LOCK_NOT_AVAILABLE = "55P03"
QUOTED_NAME = re.compile(r'"([^"]+)"')


def lock_timeout_setting():
    value = os.environ.get("RELEASE_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT).strip()
    if not re.fullmatch(r"(\d+(ms|s|min)?)?", value):
        raise CommandError(
            f"RELEASE_LOCK_TIMEOUT={value!r}: give a duration such as 5s, 500ms or 1min (0 or empty: no bound)."
        )
    return "" if value in ("", "0") else value


def gave_up_on_a_lock(error):
    """Whether PostgreSQL's lock_not_available is this error or one it was raised from."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if getattr(error, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return True
        error = error.__cause__ or error.__context__
    return False


class Command(MigrateCommand):
    help = (
        "Apply migrations as the release phase does: each session's lock waits bounded by RELEASE_LOCK_TIMEOUT, "
        "a migration that gave up on a lock tried again."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--lock-retries", type=int, default=3, help="Tries after the first when a migration gives up on a lock."
        )
        parser.add_argument("--lock-pause", type=float, default=10.0, help="Seconds between tries.")

    def handle(self, *args, **options):
        self.lock_timeout = lock_timeout_setting()
        self.database = options["database"]
        self.current_migration = None
        self.last_statement = None
        connection = connections[self.database]
        connection_created.connect(self.bound_lock_waits)
        try:
            if connection.connection is not None:
                self.bound_lock_waits(sender=None, connection=connection)
            tries = options["lock_retries"] + 1
            for attempt in range(1, tries + 1):
                try:
                    with connection.execute_wrapper(self.remember_statement):
                        return super().handle(*args, **options)
                except Exception as error:
                    if not self.lock_timeout or not gave_up_on_a_lock(error):
                        raise
                    report = self.lock_report(connection)
                    if attempt == tries:
                        raise CommandError(self.failure_message(report, tries)) from None
                    self.stderr.write(
                        f"{report}\nTry {attempt} of {tries} gave up on a lock; trying again in "
                        f"{options['lock_pause']:g}s."
                    )
                    time.sleep(options["lock_pause"])
        finally:
            connection_created.disconnect(self.bound_lock_waits)

    def bound_lock_waits(self, sender, connection, **kwargs):
        if connection.alias != self.database or connection.vendor != "postgresql" or through_pgbouncer(connection):
            return
        with connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{self.lock_timeout or 0}'")  # checked against a pattern above

    def remember_statement(self, execute, sql, params, many, context):
        self.last_statement = sql
        return execute(sql, params, many, context)

    def migration_progress_callback(self, action, migration=None, fake=False):
        if action in ("apply_start", "unapply_start"):
            self.current_migration = migration
        super().migration_progress_callback(action, migration, fake)

    def lock_report(self, connection):
        """The migration, the statement that gave up, and the sessions holding a lock on its tables."""
        statement = " ".join((self.last_statement or "?").split())
        lines = [
            f"Migration {self.current_migration or '?'} waited {self.lock_timeout} for a lock and gave up "
            f"(lock_timeout): {statement[:300]}"
        ]
        names = sorted(set(QUOTED_NAME.findall(self.last_statement or "")))
        if connection.vendor != "postgresql":
            return "\n".join(lines)
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    SELECT DISTINCT l.relation::regclass::text, l.mode, a.pid, a.state,
                           date_trunc('second', now() - a.xact_start)::text, left(a.query, 120)
                    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                    WHERE l.granted AND a.pid <> pg_backend_pid()
                      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND l.relation IN (SELECT to_regclass(quote_ident(n)) FROM unnest(%s::text[]) AS n)
                    ORDER BY 3
                    """,
                    [names],
                )
                holders = cursor.fetchall()
        except Exception as error:  # the report must not hide the lock failure itself
            connection.close()
            lines.append(f"(who held the lock could not be read: {error})")
            holders = []
        for relation, mode, pid, state, age, query in holders:
            detail = f"{state}, transaction open {age}" if state else "a session of another role"
            lines.append(f"  held on {relation}: {mode} by pid {pid} ({detail}): {query}")
        if not holders and names:
            lines.append("  (its holder has gone since)")
        return "\n".join(lines)

    def failure_message(self, report, tries):
        return (
            f"{report}\nGave up after {tries} tries: the previous release keeps serving. Find what holds the lock "
            "(`heroku pg:locks`, `heroku pg:ps`; end it with `heroku pg:kill PID`), then run this release phase "
            "again: `heroku releases:retry`."
        )
