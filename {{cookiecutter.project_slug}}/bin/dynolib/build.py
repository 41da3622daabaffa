"""The Python buildpack's last build step, collectstatic, when this checkout has not been built yet.

On Heroku it runs at every build; here only while STATIC_ROOT's manifest is missing, so that a start
stays quick: after changing static files, run `python manage.py collectstatic --noinput`."""

import subprocess

from dynolib import ROOT, Fail, environment, say, venv_command


def collectstatic(config):
    if not (ROOT / "manage.py").exists() or (ROOT / "staticfiles" / "staticfiles.json").exists():
        return
    env = environment.slug(config)
    env.pop("DYNO", None)  # a build runs without it: settings import with no config var
    python = environment.find_program("python", env) or environment.find_program("python3", env)
    if not python:
        raise Fail(f"no python on PATH: create .venv ({venv_command()}), see README.md")
    say("no staticfiles/ yet: running collectstatic, as Heroku's Python buildpack does at build time")
    result = subprocess.run(
        [python, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    if result.returncode:
        raise Fail(f"the build step failed: {python} manage.py collectstatic --noinput exited {result.returncode}")
