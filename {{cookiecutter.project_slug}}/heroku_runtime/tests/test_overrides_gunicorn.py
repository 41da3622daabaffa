"""config/gunicorn.conf.py's post_request sets `worker.alive = False` to replace a worker past its memory limit:
a gunicorn attribute, not a documented setting. This fails in CI (and so in a dependabot pull request),
not on a dyno, when the installed gunicorn is not one that was checked.

When it fails after an upgrade: check that a sync worker still finishes its request and exits when
`alive` turns False (gunicorn/workers/sync.py), run tests/test_worker_recycling.py in the template, then
add the version below."""

import importlib.metadata
import inspect

# The gunicorn releases gunicorn.conf.py's memory limit was checked against.
CHECKED = {"27.0.1"}
OVERRIDE = "config/gunicorn.conf.py (post_request sets worker.alive = False past GUNICORN_MAX_WORKER_RSS_MB)"


def test_gunicorn_is_a_version_the_override_was_checked_with():
    installed = importlib.metadata.version("gunicorn")
    assert installed in CHECKED, (
        f"{OVERRIDE} was written for gunicorn {', '.join(sorted(CHECKED))}, not {installed}: check it against "
        "this version (see this file's docstring) before adding the version to CHECKED"
    )


def test_the_sync_worker_still_stops_when_alive_turns_false():
    from gunicorn.workers import base, sync

    assert "self.alive = True" in inspect.getsource(base.Worker.__init__), f"{OVERRIDE}: Worker.alive is gone"
    # Both accept loops go round only while the worker is alive, and post_request runs inside them.
    for loop in (sync.SyncWorker.run_for_one, sync.SyncWorker.run_for_multiple):
        assert "while self.alive:" in inspect.getsource(loop), f"{OVERRIDE}: {loop.__qualname__} no longer checks alive"
    assert "post_request(" in inspect.getsource(sync.SyncWorker.handle_request), f"{OVERRIDE}: no post_request hook"
