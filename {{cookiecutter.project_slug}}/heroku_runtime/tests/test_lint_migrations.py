"""`manage.py lint_migrations`: this project's own migrations pass, and what it refuses or accepts, on
migrations built here (the workflow runs it on migration files)."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import migrations, models
from django.db.migrations.state import ProjectState

from heroku_runtime.management.commands.lint_migrations import problems


def migration(*operations):
    built = migrations.Migration("0002_case", "example")
    built.operations = list(operations)
    return built


def test_this_projects_migrations_are_safe_to_apply_while_the_app_runs():
    output = io.StringIO()
    call_command("lint_migrations", stdout=output)
    assert "safe to apply while the app runs" in output.getvalue()


@pytest.mark.parametrize(
    "operation",
    [
        migrations.RemoveField("exampleresult", "digest"),
        migrations.RenameField("exampleresult", "runs", "count"),
        migrations.AddField("exampleresult", "flag", models.BooleanField(default=False)),
        migrations.AddIndex("exampleresult", models.Index(fields=["runs"], name="runs_idx")),
    ],
    ids=lambda operation: type(operation).__name__,
)
def test_an_operation_the_running_code_cannot_live_through_is_named_with_the_safe_way(operation):
    ((described, why, safe),) = problems(migration(operation), ProjectState())
    assert described.startswith(type(operation).__name__) and why and safe


@pytest.mark.parametrize(
    "operation",
    [
        migrations.AddField("exampleresult", "flag", models.BooleanField(db_default=False)),
        migrations.AddField("exampleresult", "note", models.TextField(null=True)),
        migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField("exampleresult", "digest")]),
    ],
    ids=["db_default", "nullable", "state_only"],
)
def test_the_safe_ways_pass(operation):
    assert problems(migration(operation), ProjectState()) == []


def test_an_app_with_no_such_label_is_refused_plainly():
    with pytest.raises(CommandError):
        call_command("lint_migrations", "no_such_app", stdout=io.StringIO())
