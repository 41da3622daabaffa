"""What the buildpacks do on a dyno, done with this machine's packages (apt-get install nginx pgbouncer ruby).

Python buildpack     the dyno's environment (WEB_CONCURRENCY and friends, .venv/bin first on PATH), and
                     collectstatic when there is no build output yet
bin/start-nginx      renders config/nginx.conf.erb with `erb`, tails its logs, runs nginx on $PORT once
                     the app has touched /tmp/app-initialized
bin/start-pgbouncer  writes a PgBouncer config from the PGBOUNCER_* variables, listening on
                     127.0.0.1:6000, and points each variable named in PGBOUNCER_URLS at it
"""

import ipaddress
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import unquote

from dynolib import ROOT, Fail, say, venv_command

READY_FILE = Path("/tmp/app-initialized")  # both paths are fixed by the nginx buildpack
NGINX_SOCKET = Path("/tmp/nginx.socket")
PGBOUNCER_PORT = 6000
BOOT_TIMEOUT = 60  # Heroku stops a web dyno that has not bound $PORT by then (R10)
SBIN = ["/usr/local/sbin", "/usr/sbin", "/sbin"]  # Debian's nginx and pgbouncer; often not on a user's PATH
APT_PACKAGE = {"nginx": "nginx", "pgbouncer": "pgbouncer", "erb": "ruby"}
# pgbouncer.ini settings read from PGBOUNCER_<SETTING>, with the buildpack's defaults.
PGBOUNCER_DEFAULTS = {
    "auth_type": "scram-sha-256",
    "pool_mode": "transaction",
    "max_client_conn": "100",
    "default_pool_size": "1",
    "min_pool_size": "0",
    "reserve_pool_size": "1",
    "reserve_pool_timeout": "5.0",
    "server_lifetime": "3600",
    "server_idle_timeout": "600",
    "log_connections": "1",
    "log_disconnections": "1",
    "log_pooler_errors": "1",
    "stats_period": "60",
    "ignore_startup_parameters": "",
    "query_wait_timeout": "120",
}
# All the buildpack understands: every part present, nothing after the database name.
URL_FORM = re.compile(
    r"^postgres(?:ql)?://(?P<user>[^:@/]+):(?P<password>[^@/]+)@(?P<host>\[[^\]/]+\]|[^:/@\[]+)"
    r":(?P<port>\d+)/(?P<dbname>[^/?#]+)$"
)


def hide_password(text):
    return re.sub(r"(://[^:@/]*:)[^@/]*@", r"\1***@", text)


def procfile_types():
    """{type: command line} from the Procfile beside bin/."""
    procfile = ROOT / "Procfile"
    if not procfile.exists():
        raise Fail(f"no Procfile in {ROOT}")
    return dict(re.findall(r"^([A-Za-z0-9_-]+):[ \t]*(.+?)\s*$", procfile.read_text(), re.MULTILINE))


def procfile_command(process_type):
    entries = procfile_types()
    if process_type not in entries:
        raise Fail(f"the Procfile has no {process_type!r} process type; it has: {', '.join(entries) or 'none'}")
    return entries[process_type]


def slug_environment(config):
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


def dyno_environment(process_type, config):
    """`config` (your environment, .env, the add-ons' variables) plus what a dyno adds."""
    env = slug_environment(config)
    env["DYNO"] = f"{process_type}.1"
    env.setdefault("PORT", "5000")
    # What the Python buildpack's .profile.d scripts export at dyno start, for a 512 MB dyno.
    if "WEB_CONCURRENCY" not in env:
        env["WEB_CONCURRENCY"] = "2"
    env["DYNO_RAM"] = "512"
    env["FORWARDED_ALLOW_IPS"] = "*"
    env["GUNICORN_CMD_ARGS"] = env.get("GUNICORN_CMD_ARGS") or "--access-logfile -"
    return env


def build(config):
    """The Python buildpack's last step, collectstatic, when this checkout has not been built yet.

    On Heroku it runs at every build; here only while STATIC_ROOT's manifest is missing, so that a
    start stays quick: after changing static files, run `python manage.py collectstatic --noinput`."""
    if not (ROOT / "manage.py").exists() or (ROOT / "staticfiles" / "staticfiles.json").exists():
        return
    env = slug_environment(config)
    env.pop("DYNO", None)  # a build runs without it: settings import with no config var
    python = find_program("python", env) or find_program("python3", env)
    if not python:
        raise Fail(f"no python on PATH: create .venv ({venv_command()}), see README.md")
    say("no staticfiles/ yet: running collectstatic, as Heroku's Python buildpack does at build time")
    result = subprocess.run(
        [python, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    if result.returncode:
        raise Fail(f"the build step failed: {python} manage.py collectstatic --noinput exited {result.returncode}")


def split_words(command, env):
    """The words bash makes of the Procfile line (Heroku runs it with bash), expanded but not run."""
    script = f"set -- {command}\nprintf '%s\\0' \"$@\""
    result = subprocess.run(["bash", "-c", script], env=env, cwd=ROOT, capture_output=True)
    if result.returncode != 0:
        raise Fail(f"bash could not parse the Procfile line {command!r}: {result.stderr.decode().strip()}")
    return [word.decode() for word in result.stdout.split(b"\0")[:-1]]


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
        elif wrapper in ("bin/start-pgbouncer", "bin/start-pgbouncer-stunnel"):  # the latter is an alias now
            pgbouncer = True
        else:
            raise Fail(f"{wrapper} is not emulated; bin/dyno knows bin/start-nginx and bin/start-pgbouncer")
    if not words:
        raise Fail("the Procfile line has no command after its wrappers")
    return nginx, wait, pgbouncer, words


def find_program(name, env, sbin=False):
    return shutil.which(name, path=os.pathsep.join([env.get("PATH", "")] + (SBIN if sbin else [])))


def pgbouncer_version(program):
    output = subprocess.run([program, "--version"], capture_output=True, text=True).stdout if program else ""
    match = re.search(r"PgBouncer (\d+)\.(\d+)", output)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def conninfo_value(value):  # [databases] values: single-quoted, '' for a quote, when they need it
    return value if re.fullmatch(r"[^\s'\\]+", value) else "'" + value.replace("'", "''") + "'"


def auth_line(user, password):  # auth_file: "user" "password", with quotes doubled
    return " ".join('"' + value.replace('"', '""') + '"' for value in (user, password)) + "\n"


def url_problem(name, value):
    return (
        f"{name}={hide_password(value)} is not of the form postgres://user:password@host:port/dbname "
        "with every part present and no ?query, which is all the pgbouncer buildpack understands"
    )


def pgbouncer_config(env, rundir, version):
    """(pgbouncer.ini, users.txt, rewritten variables) as the buildpack's gen-pgbouncer-conf.sh makes them."""
    settings = {key: env.get(f"PGBOUNCER_{key.upper()}") or default for key, default in PGBOUNCER_DEFAULTS.items()}
    databases, users, rewritten, hosts = [], "", {}, []
    for number, name in enumerate((env.get("PGBOUNCER_URLS") or "DATABASE_URL").split(), start=1):
        if not env.get(name):
            raise Fail(f"{name} is not set; PgBouncer needs it, e.g. {name}=postgres://user:password@127.0.0.1:5432/db")
        match = URL_FORM.match(env[name])
        if not match:
            raise Fail(url_problem(name, env[name]))
        host = match["host"].strip("[]")
        hosts.append(host)
        users += auth_line(unquote(match["user"]), unquote(match["password"]))
        dbname = conninfo_value(unquote(match["dbname"]))
        databases.append(f"db{number}= host={conninfo_value(host)} dbname={dbname} port={match['port']}")
        url = f"postgres://{match['user']}:{match['password']}@127.0.0.1:{PGBOUNCER_PORT}/db{number}"
        rewritten[name] = rewritten[f"{name}_PGBOUNCER"] = url
    # The buildpack requires TLS to the server, which Heroku Postgres speaks. A PostgreSQL on this machine
    # usually has no certificate, so for loopback servers TLS is only preferred, unless set explicitly.
    sslmode = env.get("PGBOUNCER_SERVER_TLS_SSLMODE") or ("prefer" if all(map(is_loopback, hosts)) else "require")
    reset = env.get("PGBOUNCER_SERVER_RESET_QUERY") or ("DISCARD ALL;" if settings["pool_mode"] == "session" else "")
    settings.update(
        listen_addr="127.0.0.1",
        listen_port=PGBOUNCER_PORT,
        unix_socket_dir="/tmp",  # PgBouncer's default, spelled out: the admin console is reached there
        auth_file=rundir / "users.txt",
        server_tls_sslmode=sslmode,
        server_tls_protocols="secure",
        server_tls_ciphers="HIGH:!ADH:!AECDH:!LOW:!EXP:!MD5:!3DES:!SRP:!PSK:@STRENGTH",
        server_reset_query=reset,
    )
    prepared = env.get("PGBOUNCER_MAX_PREPARED_STATEMENTS") or "0"
    if version >= (1, 21):
        settings["max_prepared_statements"] = prepared
    elif prepared != "0":  # PgBouncer before 1.21 refuses to start on the unknown key
        say(f"PgBouncer {version[0]}.{version[1]} has no max_prepared_statements: ignoring {prepared}")
    ini = "[pgbouncer]\n" + "".join(f"{key} = {value}\n" for key, value in sorted(settings.items()))
    return ini + "\n[databases]\n" + "\n".join(databases) + "\n", users, rewritten


def port_busy(port, host=""):
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx and PgBouncer bind
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def pgbouncer_accepting():
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", PGBOUNCER_PORT)) == 0


def socket_live(path):
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(1)
        return probe.connect_ex(str(path)) == 0


def preflight(env, nginx, pgbouncer, app):
    """Say plainly everything that would make the dyno fail later, all at once."""
    problems = []
    for name in (["nginx", "erb"] if nginx else []) + (["pgbouncer"] if pgbouncer else []):
        if not find_program(name, env, sbin=True):
            problems.append(f"{name} is not installed: apt-get install {APT_PACKAGE[name]}")
    if "/" not in app[0] and not find_program(app[0], env):
        problems.append(f"{app[0]} is not on PATH: activate the virtualenv or create .venv ({venv_command()})")
    for name in (env.get("PGBOUNCER_URLS") or "DATABASE_URL").split() if pgbouncer else ():
        if env.get(name) and not URL_FORM.match(env[name]):  # unset: bin/dyno's PostgreSQL will set it
            problems.append(url_problem(name, env[name]))
    if nginx and port_busy(int(env["PORT"])):
        problems.append(f"port {env['PORT']} (PORT) is in use: stop what listens there or set PORT")
    if pgbouncer and port_busy(PGBOUNCER_PORT, "127.0.0.1"):
        problems.append(f"port {PGBOUNCER_PORT} is in use: is another PgBouncer (another bin/dyno) running?")
    if nginx and socket_live(NGINX_SOCKET):
        problems.append(f"an app already serves on {NGINX_SOCKET}: is another bin/dyno web running?")
    for stale in (READY_FILE, NGINX_SOCKET) if nginx and not problems else ():
        try:
            stale.unlink(missing_ok=True)  # nginx must wait for this run's app, not a previous one's
        except OSError as error:
            problems.append(f"cannot remove the stale {stale} ({error.strerror}): remove it as its owner")
    if problems:
        raise Fail("cannot start:\n  - " + "\n  - ".join(problems))


def render_nginx_conf(env, rundir):
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
