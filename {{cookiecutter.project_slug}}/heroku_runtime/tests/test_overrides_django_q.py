"""heroku_runtime's qcluster command overrides django-q2's internals. What it relies on is checked here, in CI
(and so in a dependabot pull request) rather than on a dyno, against whatever django-q2 is installed: a
release with the same internals passes, one where they moved fails with the override named and what to check.
test_qcluster.py checks what the override is for (the cluster stops on Heroku's SIGTERM) by running it."""

import importlib.metadata
import inspect

import pytest
from django.core.management import get_commands

OVERRIDE = "heroku_runtime/management/commands/qcluster.py (WatchedSentinel replaces django_q.cluster.Sentinel)"
TO_CHECK = (
    "check the command's docstring against django_q/cluster.py, adapt the command, then run "
    "heroku_runtime/tests/test_qcluster.py"
)


def source(owner, name):
    """The source of owner.name, or "" when it is gone."""
    member = getattr(owner, name, None) if owner is not None else None
    return inspect.getsource(member) if inspect.isfunction(member) else ""


def parameters(owner, name):
    member = getattr(owner, name, None) if owner is not None else None
    return list(inspect.signature(member).parameters) if inspect.isfunction(member) else None


def moved_internals():
    """What of django-q2 the override relies on and does not find: [] when everything is there."""
    from django_q import cluster
    from django_q.management.commands import qcluster

    problems = []
    version = importlib.metadata.version("django-q2")

    def need(found, what):
        if not found:
            problems.append(f"{OVERRIDE} relies on {what}, which django-q2 {version} lacks: {TO_CHECK}")

    sentinel, cluster_class = getattr(cluster, "Sentinel", None), getattr(cluster, "Cluster", None)
    need(inspect.isclass(sentinel), "the class django_q.cluster.Sentinel")
    need(callable(getattr(qcluster, "Command", None)), "django_q's qcluster Command, which it extends")
    start = source(cluster_class, "start")
    # Cluster.start() forks the module-level name, which is what the override reassigns.
    need("target=Sentinel" in start, "Cluster.start() forking the module-level name Sentinel")
    need("self.stop_event" in start and "self.sentinel" in start, "Cluster.start() setting stop_event and sentinel")
    need((parameters(sentinel, "__init__") or [])[1:2] == ["stop_event"], "Sentinel(stop_event, ...)")
    need(parameters(sentinel, "reincarnate") == ["self", "process"], "Sentinel.reincarnate(self, process)")
    init = source(sentinel, "__init__")
    for attribute in ("pool", "event_out", "monitor", "pusher"):
        need(f"self.{attribute} =" in init, f"Sentinel.{attribute}, set in Sentinel.__init__")
    guard = source(sentinel, "guard")
    need("self.stop_event.wait(" in guard, "Sentinel.guard() waiting on the stop event between its cycles")
    need("timer.value" in guard, "each worker's timer.value, Q_TIMEOUT's countdown that Sentinel.guard() keeps")
    return problems


def test_the_internals_the_override_relies_on_are_there():
    problems = moved_internals()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda cluster, mp: mp.delattr(cluster.Sentinel, "reincarnate"), "Sentinel.reincarnate(self, process)"),
        (lambda cluster, mp: mp.setattr(cluster.Sentinel, "__init__", lambda self, event: None), "Sentinel(stop_event"),
        (lambda cluster, mp: mp.setattr(cluster.Cluster, "start", lambda self: 0), "forking the module-level name"),
        (lambda cluster, mp: mp.delattr(cluster, "Sentinel"), "the class django_q.cluster.Sentinel"),
    ],
    ids=["reincarnate-gone", "init-signature", "start-rewritten", "sentinel-gone"],
)
def test_a_moved_internal_fails_naming_the_override(monkeypatch, change, named):
    """A django-q2 whose internals moved, simulated: the check names the override and what to check."""
    from django_q import cluster

    change(cluster, monkeypatch)
    problems = moved_internals()
    assert problems and all(problem.startswith(OVERRIDE) and TO_CHECK in problem for problem in problems)
    assert any(named in problem for problem in problems), problems


def test_manage_py_qcluster_is_the_runtime_layers():
    assert get_commands()["qcluster"] == "heroku_runtime", (
        "`manage.py qcluster` is no longer heroku_runtime's: keep heroku_runtime before django_q in "
        "settings.INSTALLED_APPS (Django takes a command from the first app that has it)"
    )
