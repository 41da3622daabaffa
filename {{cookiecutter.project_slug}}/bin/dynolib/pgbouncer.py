"""What the pgbouncer buildpack's bin/start-pgbouncer does: a PgBouncer config from the PGBOUNCER_* variables
with the buildpack's defaults, and each variable named in PGBOUNCER_URLS pointed at that PgBouncer.

On Heroku each dyno has its own network, so every dyno's PgBouncer listens on 127.0.0.1:6000. Here the dynos
share one: the first process type of the Procfile that uses PgBouncer (web) gets 6000, as on Heroku (the
app's PgBouncer page reads that one), the next 6001, and so on, so that `bin/dyno web` and `bin/dyno worker`
run side by side, each with its own PgBouncer, as separate dynos do. The unix socket (the admin console)
follows the port: /tmp/.s.PGSQL.<port>.
"""

import ipaddress
import re
import socket
import subprocess
from urllib.parse import unquote

from dynolib import Fail, hide_password, procfile, say

HEROKU_PORT = 6000
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


def version(program):
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


def config(env, rundir, installed, listen_port):
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
        url = f"postgres://{match['user']}:{match['password']}@127.0.0.1:{listen_port}/db{number}"
        rewritten[name] = rewritten[f"{name}_PGBOUNCER"] = url
    # The buildpack requires TLS to the server, which Heroku Postgres speaks. A PostgreSQL on this machine
    # usually has no certificate, so for loopback servers TLS is only preferred, unless set explicitly.
    sslmode = env.get("PGBOUNCER_SERVER_TLS_SSLMODE") or ("prefer" if all(map(is_loopback, hosts)) else "require")
    reset = env.get("PGBOUNCER_SERVER_RESET_QUERY") or ("DISCARD ALL;" if settings["pool_mode"] == "session" else "")
    settings.update(
        listen_addr="127.0.0.1",
        listen_port=listen_port,
        unix_socket_dir="/tmp",  # PgBouncer's default, spelled out: the admin console is reached there
        auth_file=rundir / "users.txt",
        server_tls_sslmode=sslmode,
        server_tls_protocols="secure",
        server_tls_ciphers="HIGH:!ADH:!AECDH:!LOW:!EXP:!MD5:!3DES:!SRP:!PSK:@STRENGTH",
        server_reset_query=reset,
    )
    prepared = env.get("PGBOUNCER_MAX_PREPARED_STATEMENTS") or "0"
    if installed >= (1, 21):
        settings["max_prepared_statements"] = prepared
    elif prepared != "0":  # PgBouncer before 1.21 refuses to start on the unknown key
        say(f"PgBouncer {installed[0]}.{installed[1]} has no max_prepared_statements: ignoring {prepared}")
    ini = "[pgbouncer]\n" + "".join(f"{key} = {value}\n" for key, value in sorted(settings.items()))
    return ini + "\n[databases]\n" + "\n".join(databases) + "\n", users, rewritten


def port(process_type):
    """This process type's PgBouncer port: 6000 for the first type that uses PgBouncer, then 6001..."""
    wrapped = [name for name, line in procfile.types().items() if "bin/start-pgbouncer" in line]
    return HEROKU_PORT + (wrapped.index(process_type) if process_type in wrapped else 0)


def accepting(port):
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
