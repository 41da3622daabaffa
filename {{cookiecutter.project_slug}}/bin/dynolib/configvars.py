"""The config vars a local dyno gets: your environment, then .env, then app.json's values and secrets.

Heroku gives a dyno its app's config vars; `heroku local` reads them from .env instead, and so does
bin/dyno, with the same rule: a variable already in your environment wins over the file. What app.json
would generate for a Deploy Button app (`"generator": "secret"`) is generated once and kept in
.dyno/config/, so sessions and signed cookies survive restarts. A variable app.json requires and nothing
sets (the S3 option's bucket) stops the start with its description. A variable set to an empty value is
set: it is passed on as it is (the settings then refuse an empty DJANGO_SECRET_KEY, as on a dyno).
"""

import json
import re
import secrets

from dynolib import ROOT, STATE, Fail, say

DOTENV = ROOT / ".env"
LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*$")


def read_dotenv(path=DOTENV):
    """{name: value} from a .env file: NAME=value lines, # comments, values optionally in quotes
    ("..." understands \\n, '...' is taken as written), as `heroku local` reads it."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LINE.match(line)
        if not match:
            raise Fail(f"{path.name}, line {number}: expected NAME=value, found {line.strip()!r}")
        name, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace("\\n", "\n").replace('\\"', '"')
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        values[name] = value
    return values


def app_json_env():
    path = ROOT / "app.json"
    return json.loads(path.read_text()).get("env", {}) if path.exists() else {}


def generated(name):
    """A secret kept in .dyno/config/NAME, made on first use like app.json's "generator": "secret"."""
    path = STATE / "config" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
        say(f"{name}: generated, as app.json asks, and kept in .dyno/config/{name}")
    return path.read_text().strip()


def read(environ, dry=False):
    """The environment the dyno starts from; the add-ons' variables are added later."""
    env = dict(environ)
    if DOTENV.exists():
        values = read_dotenv()
        ignored = sorted(name for name in values if name in env)
        env.update({name: value for name, value in values.items() if name not in env})
        note = f" ({', '.join(ignored)} set in your environment, which wins)" if ignored else ""
        say(f"read {len(values)} variables from .env{note}")
    missing = []
    for name, spec in app_json_env().items():
        if name in env:  # set, even to nothing: yours, as a config var set empty on Heroku would be
            continue
        if spec.get("generator") == "secret":
            env[name] = "(generated at start)" if dry else generated(name)
        elif "value" in spec:  # what a Deploy Button app has, and the README's CLI deploy sets
            env[name] = spec["value"]
        elif "value" not in spec and spec.get("required", True):
            missing.append(f"{name} ({spec.get('description', 'no description')})")
    if missing:
        raise Fail("app.json requires, and nothing sets: " + "; ".join(missing) + ". Set them in .env")
    # No router here to terminate TLS: the browser talks plain http to nginx on 127.0.0.1, so the
    # settings keep the https redirect, Secure cookies and HSTS off (see settings.py, DJANGO_LOCAL_HTTP).
    env.setdefault("DJANGO_LOCAL_HTTP", "true")
    return env
