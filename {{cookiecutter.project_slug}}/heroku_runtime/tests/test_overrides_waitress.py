"""config/serve_waitress.py stops waitress gracefully by driving its event loop itself, which reads
undocumented attributes of waitress's server: `_map`, `task_dispatcher`'s `active_count` and `queue`,
`active_channels` and each channel's `total_outbufs_len`. This fails in CI (and so in a dependabot pull
request), not on a dyno, when the installed waitress is not one that was checked.

When it fails after an upgrade: check serve()'s docstring against the new waitress, run
tests/test_restarts.py in the template, then add the version below."""

import importlib.metadata

import pytest

# The waitress releases serve_waitress.py's graceful stop was checked against.
CHECKED = {"3.0.2"}
OVERRIDE = "config/serve_waitress.py (serve(), in_flight(), unsent(): waitress's undocumented internals)"


def test_waitress_is_a_version_the_override_was_checked_with():
    installed = importlib.metadata.version("waitress")
    assert installed in CHECKED, (
        f"{OVERRIDE} was written for waitress {', '.join(sorted(CHECKED))}, not {installed}: check it against "
        "this version (see this file's docstring) before adding the version to CHECKED"
    )


@pytest.fixture
def server(tmp_path):
    from waitress import create_server

    server = create_server(lambda environ, start_response: [], unix_socket=str(tmp_path / "socket"), threads=1)
    yield server
    server.close()


def test_the_internals_the_graceful_stop_reads_are_there(server):
    from waitress import channel, wasyncore

    assert isinstance(server._map, dict), f"{OVERRIDE}: server._map is gone"
    assert isinstance(server.active_channels, dict), f"{OVERRIDE}: server.active_channels is gone"
    tasks = server.task_dispatcher
    assert isinstance(tasks.active_count, int) and len(tasks.queue) == 0, f"{OVERRIDE}: task_dispatcher changed"
    assert isinstance(channel.HTTPChannel.total_outbufs_len, int), f"{OVERRIDE}: total_outbufs_len is gone"
    for setting in ("asyncore_use_poll", "asyncore_loop_timeout"):
        assert hasattr(server.adj, setting), f"{OVERRIDE}: waitress's {setting} setting is gone"
    wasyncore.loop(timeout=0, count=1, map=server._map, use_poll=server.adj.asyncore_use_poll)
