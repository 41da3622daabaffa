"""config/gunicorn.conf.py's post_request sets `worker.alive = False` to replace a worker past its memory limit:
a gunicorn attribute, not a documented setting. What it relies on is checked here, in CI (and so in a
dependabot pull request) rather than on a dyno, against whatever gunicorn is installed: a release with the same
internals passes, one where they moved fails with the override named and what to check."""

import importlib.metadata
import inspect

import pytest

OVERRIDE = "config/gunicorn.conf.py (post_request sets worker.alive = False past GUNICORN_MAX_WORKER_RSS_MB)"
TO_CHECK = (
    "check that a sync worker still finishes its request and exits when `alive` turns False "
    "(gunicorn/workers/sync.py), and adapt post_request"
)


def source(owner, name):
    member = getattr(owner, name, None) if owner is not None else None
    return inspect.getsource(member) if inspect.isfunction(member) else ""


def moved_internals():
    """What of gunicorn the memory limit relies on and does not find: [] when everything is there."""
    from gunicorn.workers import base, sync

    problems = []
    version = importlib.metadata.version("gunicorn")

    def need(found, what):
        if not found:
            problems.append(f"{OVERRIDE} relies on {what}, which gunicorn {version} lacks: {TO_CHECK}")

    worker = getattr(sync, "SyncWorker", None)
    need(worker is not None and issubclass(worker, base.Worker), "gunicorn.workers.sync.SyncWorker")
    need("self.alive = True" in source(base.Worker, "__init__"), "Worker.alive, set in Worker.__init__")
    # Both accept loops go round only while the worker is alive, and post_request runs inside them.
    for loop in ("run_for_one", "run_for_multiple"):
        need("while self.alive:" in source(worker, loop), f"SyncWorker.{loop}() going round while self.alive")
    need("post_request(" in source(worker, "handle_request"), "SyncWorker.handle_request() calling post_request")
    return problems


def test_the_internals_the_override_relies_on_are_there():
    problems = moved_internals()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda sync, mp: mp.delattr(sync.SyncWorker, "run_for_one"), "SyncWorker.run_for_one()"),
        (lambda sync, mp: mp.setattr(sync.SyncWorker, "handle_request", lambda *a: None), "calling post_request"),
        (lambda sync, mp: mp.delattr(sync, "SyncWorker"), "gunicorn.workers.sync.SyncWorker"),
    ],
    ids=["loop-gone", "hook-not-called", "worker-class-gone"],
)
def test_a_moved_internal_fails_naming_the_override(monkeypatch, change, named):
    """A gunicorn whose internals moved, simulated: the check names the override and what to check."""
    from gunicorn.workers import sync

    change(sync, monkeypatch)
    problems = moved_internals()
    assert problems and all(problem.startswith(OVERRIDE) and TO_CHECK in problem for problem in problems)
    assert any(named in problem for problem in problems), problems
