"""`manage.py lint_migrations`: refuse a migration that would break the code still running while it applies.

On Heroku the release phase migrates while the previous release's dynos keep serving (with preboot, old
and new code serve side by side for minutes), so a migration must work with the code before it as well
as after it: https://devcenter.heroku.com/articles/release-phase. This reads each migration of the
project's own apps (not of installed packages) as Django will apply it, operation by operation, and
names each one that the old code or the app's traffic cannot live through, with the safe way to write it.
No database is needed: it reads the migration files, as `makemigrations --check` does.

A migration that is the second half of a two-deploy change (the column is dropped after a release whose
code no longer uses it) says so in one line, which this command then accepts:

    class Migration(migrations.Migration):
        second_deploy = "the code stopped using ExampleResult.digest in the release before"

What it does not see: RunSQL and RunPython (it cannot read what they do), operations of packages'
migrations, and the size of a table (an index built under lock on a small table is harmless: say so with
second_deploy, or build it concurrently anyway).
"""

from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.core.management.base import BaseCommand, CommandError
from django.db import migrations
from django.db.migrations.loader import MigrationLoader
from django.db.models import NOT_PROVIDED

EXCEPTION_LINE = 'second_deploy = "<why the running code no longer needs what this changes>"'

TWO_DEPLOYS = (
    "deploy first the code that no longer uses it, with the model change in "
    "SeparateDatabaseAndState(state_operations=[...]) so that the database keeps it (nullable or with a "
    "db_default, so that the new code's INSERTs can leave it out); then, in a later release, the drop, in a "
    "migration marked second_deploy (it needs what it drops back in the migrations' state first: "
    "SeparateDatabaseAndState(state_operations=[AddField(...)]) before the RemoveField)"
)


def project_apps():
    """The apps whose code lives in this project, not in an installed package."""
    base = Path(settings.BASE_DIR).resolve()
    found = set()
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.is_relative_to(base) and "site-packages" not in path.parts:
            found.add(config.label)
    return found


def database_operations(operations):
    """The operations that reach the database: SeparateDatabaseAndState's state-only half is left out."""
    for operation in operations:
        if isinstance(operation, migrations.SeparateDatabaseAndState):
            yield from database_operations(operation.database_operations)
        else:
            yield operation


def problems(migration, state_before):
    """[(operation's description, why it breaks the running app, the safe way)] for one migration."""
    found, created = [], set()
    for operation in database_operations(migration.operations):
        if isinstance(operation, migrations.CreateModel):
            created.add(operation.name_lower)
            continue
        model = getattr(operation, "model_name_lower", None) or getattr(operation, "name_lower", None)
        if model in created:
            continue  # a table this migration creates: no running code uses it and it is empty
        found.extend(problems_of(operation, migration.app_label, model, state_before))
    return found


def problems_of(operation, app_label, model, state_before):
    name = f"{type(operation).__name__} {operation.describe()}"
    if isinstance(operation, migrations.RemoveField):
        yield name, "drops a column the running code still selects and inserts", TWO_DEPLOYS
    elif isinstance(operation, migrations.DeleteModel):
        yield name, "drops a table the running code still queries", TWO_DEPLOYS
    elif isinstance(operation, (migrations.RenameField, migrations.RenameModel, migrations.AlterModelTable)):
        yield (
            name,
            "renames what the running code still queries by its old name",
            "add the new one, write both and copy the data, switch the reads, then drop the old one in a "
            "later release (marked second_deploy)",
        )
    elif isinstance(operation, migrations.AddField):
        field = operation.field
        if not field.many_to_many and not field.generated:  # columns only
            if not field.null and field.db_default is NOT_PROVIDED:
                yield (
                    name,
                    "adds a NOT NULL column without a database default: the running code's INSERTs leave it "
                    "empty and fail",
                    "give the field db_default=... (or null=True first, then NOT NULL in a later release)",
                )
            if field.unique or (field.db_index and not field.is_relation):
                yield name, "builds an index while holding a lock that blocks writes to the table", CONCURRENTLY
    elif isinstance(operation, migrations.AlterField):
        before = state_before.models.get((app_label, model))
        old = before.fields.get(operation.name) if before else None
        new = operation.field
        if old is not None:
            if old.null and not new.null:
                yield (
                    name,
                    "sets NOT NULL: PostgreSQL scans the table under a lock that blocks every query on it, and "
                    "the running code may still write NULL",
                    "add CHECK (column IS NOT NULL) NOT VALID, VALIDATE it in a later migration, then SET NOT "
                    "NULL (PostgreSQL then skips the scan); RunSQL with state_operations=[AlterField(...)]",
                )
            if old.get_internal_type() != new.get_internal_type():
                yield (
                    name,
                    "changes the column's type: PostgreSQL rewrites the table under a lock that blocks every "
                    "query on it",
                    "add a column of the new type, write both and copy, switch the reads, drop the old one later",
                )
            if (new.unique and not old.unique) or (new.db_index and not old.db_index and not new.is_relation):
                yield name, "builds an index while holding a lock that blocks writes to the table", CONCURRENTLY
    elif isinstance(operation, migrations.AddIndex) and not isinstance(operation, AddIndexConcurrently):
        yield name, "builds an index while holding a lock that blocks writes to the table", CONCURRENTLY
    elif isinstance(operation, migrations.AddConstraint):
        yield (
            name,
            "checks every row while holding a lock that blocks every query on the table",
            "add it NOT VALID with RunSQL (state_operations=[AddConstraint(...)]) and VALIDATE CONSTRAINT in a "
            "later migration; a unique constraint: CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... "
            "USING INDEX",
        )


CONCURRENTLY = (
    "AddIndexConcurrently (django.contrib.postgres.operations) in a migration with atomic = False, or for a "
    "small table, second_deploy saying so"
)


class Command(BaseCommand):
    help = (
        "Fail on a migration the code still running during a deploy cannot live through (a dropped or renamed "
        "column, a NOT NULL column without db_default, an index or constraint built under lock), with the safe way."
    )

    def add_arguments(self, parser):
        parser.add_argument("app_label", nargs="*", help="Only these apps (default: every app of this project).")

    def handle(self, *args, **options):
        loader = MigrationLoader(None, ignore_no_migrations=True)
        for label in options["app_label"]:
            try:
                apps.get_app_config(label)
            except LookupError as error:
                raise CommandError(str(error)) from None
        labels = set(options["app_label"]) or project_apps()
        checked, refused = 0, []
        for key in sorted(key for key in loader.disk_migrations if key[0] in labels):
            migration = loader.disk_migrations[key]
            checked += 1
            found = problems(migration, loader.project_state(key, at_end=False))
            if not found:
                continue
            if str(getattr(migration, "second_deploy", "")).strip():
                self.stdout.write(f"{key[0]}.{key[1]}: accepted as a second deploy: {migration.second_deploy}")
                continue
            path = Path(migration.__module__.replace(".", "/") + ".py")
            for operation, why, safe in found:
                refused.append(f"{path} ({key[0]}.{key[1]}): {operation}: {why}.\n    Safe: {safe}.")
        if refused:
            raise CommandError(
                f"{len(refused)} operation(s) the running release cannot live through:\n"
                + "\n".join(refused)
                + f"\nThe second half of a two-deploy change says so in its Migration class: {EXCEPTION_LINE}"
            )
        self.stdout.write(f"{checked} migration(s) of {', '.join(sorted(labels))}: safe to apply while the app runs.")
