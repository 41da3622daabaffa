"""config/serve_waitress.py stops waitress gracefully by driving its event loop itself, which reads
undocumented attributes of waitress's server: `_map`, `task_dispatcher`'s `active_count` and `queue`,
`active_channels` and each channel's `total_outbufs_len`. What it relies on is checked here, in CI (and so in a
dependabot pull request) rather than on a dyno, against whatever waitress is installed: a release with the same
internals passes, one where they moved fails with the override named and what to check."""

import importlib.metadata

import pytest

OVERRIDE = "config/serve_waitress.py (serve(), in_flight(), unsent(): waitress's undocumented internals)"
TO_CHECK = "check serve()'s docstring against the installed waitress (waitress/server.py, task.py) and adapt serve()"


@pytest.fixture
def server(tmp_path):
    from waitress import create_server

    server = create_server(lambda environ, start_response: [], unix_socket=str(tmp_path / "socket"), threads=1)
    yield server
    server.close()


def moved_internals(server):
    """What of waitress the graceful stop relies on and does not find: [] when everything is there."""
    from waitress import channel, wasyncore

    problems = []
    version = importlib.metadata.version("waitress")

    def need(found, what):
        if not found:
            problems.append(f"{OVERRIDE} relies on {what}, which waitress {version} lacks: {TO_CHECK}")

    need(isinstance(getattr(server, "_map", None), dict), "the server's socket map, server._map")
    need(isinstance(getattr(server, "active_channels", None), dict), "server.active_channels")
    tasks = getattr(server, "task_dispatcher", None)
    need(isinstance(getattr(tasks, "active_count", None), int), "server.task_dispatcher.active_count")
    need(hasattr(getattr(tasks, "queue", None), "__len__"), "server.task_dispatcher.queue")
    need(isinstance(getattr(channel.HTTPChannel, "total_outbufs_len", None), int), "HTTPChannel.total_outbufs_len")
    for setting in ("asyncore_use_poll", "asyncore_loop_timeout"):
        need(hasattr(server.adj, setting), f"waitress's {setting} setting")
    need(callable(getattr(wasyncore, "loop", None)), "waitress.wasyncore.loop()")
    need(callable(getattr(getattr(wasyncore, "dispatcher", None), "close", None)), "wasyncore.dispatcher.close()")
    if not problems:  # one turn of the loop, as serve() runs it
        wasyncore.loop(timeout=0, count=1, map=server._map, use_poll=server.adj.asyncore_use_poll)
    return problems


def test_the_internals_the_override_relies_on_are_there(server):
    problems = moved_internals(server)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda server, channel, mp: mp.setattr(server, "_map", None), "server._map"),
        (lambda server, channel, mp: mp.setattr(server.task_dispatcher, "active_count", None), "active_count"),
        (lambda server, channel, mp: mp.delattr(channel.HTTPChannel, "total_outbufs_len"), "total_outbufs_len"),
    ],
    ids=["map-gone", "active-count-gone", "outbufs-gone"],
)
def test_a_moved_internal_fails_naming_the_override(server, monkeypatch, change, named):
    """A waitress whose internals moved, simulated: the check names the override and what to check."""
    from waitress import channel

    change(server, channel, monkeypatch)
    problems = moved_internals(server)
    monkeypatch.undo()  # before the fixture closes the server, which needs what was changed
    assert problems and all(problem.startswith(OVERRIDE) and TO_CHECK in problem for problem in problems)
    assert any(named in problem for problem in problems), problems
