"""A uv bake on the real stack: bin/dyno runs the release phase and the web dyno from the .venv that
`uv sync --locked --no-default-groups` made (what Heroku installs), finding it on its own.

Its own module, because the real-stack fixtures put a module in a network namespace of its own, and the
other uv tests need PyPI.
"""

import json
import os
import shutil
from pathlib import Path

from uv import find_uv_bin

import realstack as rs
from conftest import SYSTEM_PYTHON, run

UV = find_uv_bin()


def test_uv_bake_boots_on_the_real_stack(bake_once, user, workdir, postgres):
    """bin/dyno release and web with nothing but the .venv `uv sync` made: bin/dyno finds it on its own."""
    project = rs.prepare_project(bake_once(package_manager="uv"), workdir / "uv", user, venv=None, build=False)
    shutil.rmtree(project / ".venv", ignore_errors=True)  # another test's `uv sync` in the shared bake
    # uv runs as us (root here, and installed where the dyno user may not read); that user then owns what it
    # made. On Debian's Python, which the dyno user can run; never a Python download.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("UV_", "VIRTUAL_ENV"))}
    env.update(UV_PYTHON=SYSTEM_PYTHON, UV_PYTHON_DOWNLOADS="never", UV_NO_MANAGED_PYTHON="1", UV_LINK_MODE="copy")
    with rs.host_network():  # packages from PyPI, or uv's cache
        run([UV, "sync", "--locked", "--no-default-groups"], cwd=project, env=env, timeout=900)
    user.chown(project)
    venv = project / ".venv"
    # No venv on PATH: only bin/dyno's own rule (.venv/bin first, as the slug's Python on a dyno) finds it.
    env = rs.base_env(user, "/nonexistent")
    rs.run_as(user, [venv / "bin/python", "manage.py", "collectstatic", "--noinput"], env=env, cwd=project)
    app_json = json.loads((project / "app.json").read_text())
    config_vars = {key: spec["value"] for key, spec in app_json["env"].items() if "value" in spec}
    port = rs.free_port()
    env = rs.base_env(
        user,
        "/nonexistent",
        DJANGO_SECRET_KEY="uv-stack-" + "k" * 60,
        DATABASE_URL=postgres.create_database("app_uv"),
        PORT=port,
        CI="true",
        **config_vars,
    )
    with rs.Dyno(project, "release", env, user, workdir / "uv-release.log", postgres) as release:
        release.wait_for(lambda: release.process.poll() is not None, "the release phase to finish", timeout=180)
        assert release.process.returncode == 0, release.output[-4000:]
    with rs.Dyno(project, "web", env, user, workdir / "uv-web.log", postgres) as web:
        web.wait_http(port)
        status, _headers, body = rs.http_request(port, "GET", "/", {"X-Forwarded-Proto": "https", "Host": "localhost"})
        assert status == 200, body[:500]
        app = web.app_pid()
        cmdline = Path(f"/proc/{app}/cmdline").read_bytes().split(b"\0")
        # The server is the one uv installed: its script in .venv/bin, run by .venv's Python.
        assert any(str(venv / "bin") in part.decode() for part in cmdline), cmdline
        # The same file as Debian's Python, compared by inode: the path /proc shows depends on the reader's
        # root (a chroot's prefix shows in it when these tests run in one).
        executable = os.stat(f"/proc/{app}/exe")
        assert os.path.samestat(executable, os.stat(SYSTEM_PYTHON)), os.readlink(f"/proc/{app}/exe")
        assert web.app_environ()["VIRTUAL_ENV"] == str(venv)
