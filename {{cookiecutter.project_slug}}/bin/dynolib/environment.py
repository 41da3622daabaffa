"""The environment a dyno's processes get, as the Python buildpack sets it up, and finding programs in it."""

import os
import shutil

from dynolib import ROOT

SBIN = ["/usr/local/sbin", "/usr/sbin", "/sbin"]  # Debian's nginx and pgbouncer; often not on a user's PATH


def find_program(name, env, sbin=False):
    return shutil.which(name, path=os.pathsep.join([env.get("PATH", "")] + (SBIN if sbin else [])))


def slug(config):
    """`config` with the slug's Python first on PATH (.venv/bin when it exists), as on a dyno and in a build."""
    env = dict(config)
    env.pop("CI", None)  # no dyno has it, and the settings read it as "not production"
    for name, value in (("PYTHONUNBUFFERED", "true"), ("PYTHONHASHSEED", "random"), ("PYTHONPATH", str(ROOT))):
        env.setdefault(name, value)
    env.setdefault("LANG", "C.UTF-8")
    venv = ROOT / ".venv"
    if (venv / "bin").is_dir() and "VIRTUAL_ENV" not in env:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def dyno(process_type, config):
    """`config` (your environment, .env, the add-ons' variables) plus what a dyno adds."""
    env = slug(config)
    env["DYNO"] = f"{process_type}.1"
    env.setdefault("PORT", "5000")
    # What the Python buildpack's .profile.d scripts export at dyno start, for a 512 MB dyno.
    if "WEB_CONCURRENCY" not in env:
        env["WEB_CONCURRENCY"] = "2"
    env["DYNO_RAM"] = "512"
    env["FORWARDED_ALLOW_IPS"] = "*"
    env["GUNICORN_CMD_ARGS"] = env.get("GUNICORN_CMD_ARGS") or "--access-logfile -"
    return env
