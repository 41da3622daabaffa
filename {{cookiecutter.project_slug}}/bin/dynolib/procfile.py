"""The Procfile: its process types, the words bash makes of a line, and the buildpacks' wrappers on it."""

import json
import re
import subprocess

from dynolib import ROOT, Fail

WRAPPERS = ("bin/start-nginx", "bin/start-pgbouncer", "bin/start-pgbouncer-stunnel")  # the last: an alias


def types():
    """{type: command line} from the Procfile beside bin/."""
    procfile = ROOT / "Procfile"
    if not procfile.exists():
        raise Fail(f"no Procfile in {ROOT}")
    return dict(re.findall(r"^([A-Za-z0-9_-]+):[ \t]*(.+?)\s*$", procfile.read_text(), re.MULTILINE))


def command(process_type):
    entries = types()
    if process_type not in entries:
        raise Fail(f"the Procfile has no {process_type!r} process type; it has: {', '.join(entries) or 'none'}")
    return entries[process_type]


def formation():
    """The process types Heroku runs for this app: app.json's formation, in Procfile order."""
    path = ROOT / "app.json"
    wanted = json.loads(path.read_text()).get("formation", {}) if path.exists() else {"web": {}}
    return [name for name in types() if name in wanted and wanted[name].get("quantity", 1)]


def split_words(line, env):
    """The words bash makes of the Procfile line (Heroku runs it with bash), expanded but not run."""
    script = f"set -- {line}\nprintf '%s\\0' \"$@\""
    result = subprocess.run(["bash", "-c", script], env=env, cwd=ROOT, capture_output=True)
    if result.returncode != 0:
        raise Fail(f"bash could not parse the Procfile line {line!r}: {result.stderr.decode().strip()}")
    return [word.decode() for word in result.stdout.split(b"\0")[:-1]]


def type_of(words, env):
    """The process type whose Procfile line is `words` (how a stand-in started by `heroku local` knows it)."""
    for name, line in types().items():
        if split_words(line, env) == words:
            return name
    raise Fail(
        f"no Procfile line is {' '.join(words)!r}: bin/start-nginx and bin/start-pgbouncer stand in for the "
        "buildpacks' scripts only for the Procfile's own lines (heroku local, or bin/dyno TYPE)"
    )


def strip_wrappers(words):
    """(nginx?, wait for /tmp/app-initialized?, pgbouncer?, app argv) from the Procfile line's words."""
    nginx = pgbouncer = False
    wait = True
    while words and words[0].startswith("bin/start-"):
        wrapper, words = words[0], words[1:]
        if wrapper == "bin/start-nginx":
            nginx = True
            if words[:1] == ["-f"]:  # the buildpack's "start nginx without waiting for the app"
                wait, words = False, words[1:]
            words = " ".join(words).split()  # start-nginx runs $COMMAND unquoted: re-split, quotes lost
        elif wrapper in WRAPPERS:
            pgbouncer = True
        else:
            raise Fail(f"{wrapper} is not emulated; bin/dyno knows bin/start-nginx and bin/start-pgbouncer")
    if not words:
        raise Fail("the Procfile line has no command after its wrappers")
    return nginx, wait, pgbouncer, words
