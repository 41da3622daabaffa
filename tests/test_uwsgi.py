"""config/uwsgi.ini on a real uWSGI, started the way the Procfile does (`uwsgi --ini config/uwsgi.ini`) but
outside a dyno: WEB_CONCURRENCY unset or empty gives uWSGI's default of one worker, which answers requests
(empty must not become `processes = 0`, uWSGI's "no-workers" mode, where every request hangs); a value given
is used.

Runs as the ordinary user in this module's network namespace and /tmp (conftest.workdir), so the fixed
/tmp/nginx.socket and /tmp/app-initialized are this test's own.
"""

import time

import pytest

import realstack as rs

CASES = [
    pytest.param(None, 1, id="unset"),
    pytest.param("", 1, id="empty"),
    pytest.param("3", 3, id="three"),
]


@pytest.fixture(scope="module")
def project(bake_once, baked_venv, user, workdir):
    return rs.prepare_project(bake_once(wsgi_server="uwsgi"), workdir / "uwsgi", user, baked_venv, build=False)


@pytest.mark.parametrize(("value", "workers"), CASES)
def test_web_concurrency_fallback_on_a_real_uwsgi(project, user, workdir, baked_venv, value, workers):
    tmp = workdir / "tmp"
    env = rs.base_env(user, baked_venv)
    assert "WEB_CONCURRENCY" not in env
    if value is not None:
        env["WEB_CONCURRENCY"] = value
    log = workdir / f"uwsgi-{value!r}.log"
    # The first worker accepting touches /tmp/app-initialized (what the nginx buildpack waits for).
    process = rs.start_session_as(
        user,
        [f"{baked_venv}/bin/uwsgi", "--ini", "config/uwsgi.ini"],
        cwd=project,
        env=env,
        log=log,
        ready_file=tmp / "app-initialized",
    )
    try:
        response = rs.get_over_unix_socket(tmp / "nginx.socket")
        assert response.startswith("HTTP/1.") and " 200 " in response.splitlines()[0], response[:500]
        assert '"status": "ok"' in response
        # The master (the pid Popen returned: every exec in user_command keeps it) and its workers.
        deadline = time.monotonic() + 10
        while True:
            children = [pid for pid, (ppid, *_rest) in rs.process_table().items() if ppid == process.pid]
            if len(children) >= workers or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(children) == workers, log.read_text()
        assert log.read_text().count("spawned uWSGI worker") == workers
    finally:
        rs.stop_session(process)
