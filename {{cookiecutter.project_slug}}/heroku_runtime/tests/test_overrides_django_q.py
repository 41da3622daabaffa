"""heroku_runtime's qcluster command overrides django-q2's internals: it must fail here, in CI (and so in a
dependabot pull request), not on a dyno, when the installed django-q2 is not the one it was written for.

When this fails after an upgrade: read heroku_runtime/management/commands/qcluster.py's docstring, check
each point against the new django_q/cluster.py, run heroku_runtime/tests/test_qcluster.py, then add the
version below."""

import importlib.metadata
import inspect

from django.core.management import get_commands

# The django-q2 releases qcluster.py was checked against.
CHECKED = {"1.11.1"}
OVERRIDE = "heroku_runtime/management/commands/qcluster.py (WatchedSentinel replaces django_q.cluster.Sentinel)"


def test_django_q_is_a_version_the_override_was_checked_with():
    installed = importlib.metadata.version("django-q2")
    assert installed in CHECKED, (
        f"{OVERRIDE} was written for django-q2 {', '.join(sorted(CHECKED))}, not {installed}: check it against "
        "this version (see this file's docstring) before adding the version to CHECKED"
    )


def test_the_sentinel_internals_the_override_uses_are_there():
    from django_q import cluster

    start = inspect.getsource(cluster.Cluster.start)
    # Cluster.start() forks the module-level name, which is what the override reassigns.
    assert "target=Sentinel" in start and "self.stop_event" in start, f"{OVERRIDE}: Cluster.start changed"
    assert list(inspect.signature(cluster.Sentinel.__init__).parameters)[1] == "stop_event", (
        f"{OVERRIDE}: Sentinel's first argument is no longer the stop event"
    )
    sentinel = inspect.getsource(cluster.Sentinel)
    for used in ("def reincarnate(self, process)", "self.event_out", "self.pool", "self.monitor", "self.pusher",
                 "process.timer.value", "stop_event.wait("):  # fmt: skip
        assert used in sentinel, f"{OVERRIDE} relies on {used!r} in django_q.cluster.Sentinel, which is gone"


def test_manage_py_qcluster_is_the_runtime_layers():
    assert get_commands()["qcluster"] == "heroku_runtime", (
        "`manage.py qcluster` is no longer heroku_runtime's: keep heroku_runtime before django_q in "
        "settings.INSTALLED_APPS (Django takes a command from the first app that has it)"
    )
