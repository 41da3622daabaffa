"""What the nginx buildpack's bin/start-nginx does before nginx runs: config/nginx.conf.erb rendered with erb."""

import os
import re
import shutil
import subprocess
from pathlib import Path

from dynolib import ROOT, Fail, say

READY_FILE = Path("/tmp/app-initialized")  # both paths are fixed by the nginx buildpack
SOCKET = Path("/tmp/nginx.socket")
READY_POLL = 1  # seconds between start-nginx's checks for READY_FILE (`sleep 1` in the buildpack's loop)
BOOT_TIMEOUT = 60  # Heroku stops a web dyno that has not bound $PORT by then (R10)


def render(env, rundir):
    with open(rundir / "nginx.conf", "w") as conf:
        erb = ["erb", "config/nginx.conf.erb"]  # as the buildpack: the dyno's environment is ENV[...]
        result = subprocess.run(erb, cwd=ROOT, env=env, stdout=conf, stderr=subprocess.PIPE, text=True)
    if result.returncode:
        raise Fail(f"erb could not render config/nginx.conf.erb:\n{result.stderr}")
    # nginx buffers large bodies and responses in its temp paths. A dyno has one user; this machine may
    # have had another (nginx run as root leaves them to "nobody"), and nginx says nothing until it fails.
    for path in re.findall(r"^\s*\w+_temp_path\s+(/\S+?);", (rundir / "nginx.conf").read_text(), re.MULTILINE):
        if Path(path).exists() and not os.access(path, os.W_OK | os.X_OK):
            say(f"warning: {path} belongs to another user: large uploads and responses will fail; remove it")
    mime = ROOT / "config" / "mime.types"  # the buildpack installs one there unless the app has its own
    shutil.copy(mime if mime.exists() else "/etc/nginx/mime.types", rundir / "mime.types")
