"""Build a bake with Heroku's real buildpacks and run the slug: `sudo .venv/bin/python scripts/real_buildpacks.py
--python DIR --pgbouncer DIR --nginx DIR [--package-manager pip|uv] [--wsgi-server gunicorn]`.

DIR is a checkout of github.com/heroku/heroku-buildpack-{python,pgbouncer,nginx}. Each buildpack's own
bin/compile runs, in order, as Heroku's build does, on a fresh bake with .python-version's Python; then the
release line, and the Procfile's web line with the slug's .profile.d scripts, and GET /health/ and / through
the buildpacks' nginx and PgBouncer. Exit 0 when both answer 200 and SIGTERM stops every process.

Not part of the test suite, which runs where GitHub, where the buildpacks live, may be out of reach; the
template's GitHub workflow runs it (its `buildpacks` job) on the buildpacks cloned there. What differs from
Heroku, and why:
- The stack image is Debian unstable (tests/sidroot.py's root, with curl, zstd, jq, ruby, procps and the
  libraries the heroku-24 pgbouncer binary links), not heroku-24's Ubuntu 24.04: the buildpacks' heroku-24
  binaries need glibc 2.38, and unstable carries the Python 3.14 this machine can install.
- The python buildpack downloads its CPython from Heroku's S3 and uv from releases.astral.sh, neither
  reachable here. A local HTTPS server stands in for both hosts (the root's /etc/hosts and a CA of this
  run's own, given to curl as CURL_CA_BUNDLE): the CPython archive is unstable's python3.14 laid out as
  Heroku's (bin/, lib/python3.14/ with ensurepip's pip wheel), under the name the buildpack asks for, and
  Debian's sysconfig patch for /usr/local is undone so that pip installs into lib/python3.14/site-packages,
  as into Heroku's CPython; uv is the buildpack's pinned release, from PyPI.
- ruby (erb) comes from the root, so the nginx buildpack does not download its own.
- PostgreSQL is this machine's PostgreSQL 15 without TLS (PGBOUNCER_SERVER_TLS_SSLMODE=prefer).
"""

import argparse
import functools
import http.server
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import zipfile
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TEMPLATE / "tests"))

import freshroot  # noqa: E402
import sidroot  # noqa: E402
from conftest import TEST_DIR  # noqa: E402

S3_HOST = "heroku-buildpack-python.s3.dualstack.us-east-1.amazonaws.com"
UV_HOST = "releases.astral.sh"
# What the heroku-24 build and run images have that the minimal root lacks.
STACK_PACKAGES = ["curl", "zstd", "jq", "ruby", "procps", "libc-ares2", "libevent-2.1-7t64"]
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def sh(root, command, timeout=1800):
    result = freshroot.run_in_root(root, command, timeout=timeout, check=False, tmpfs=["/tmp"])
    return result.returncode, result.stdout + result.stderr


def must(root, command, what, timeout=1800):
    code, output = sh(root, command, timeout)
    if code != 0:
        sys.exit(f"{what} failed (exit {code}):\n{output[-6000:]}")
    return output


def buildpack_pin(python_buildpack, pattern, path):
    match = re.search(pattern, (python_buildpack / path).read_text(), re.M)
    if not match:
        sys.exit(f"{python_buildpack / path}: no {pattern!r}; a buildpack release this script does not know")
    return match[1]


def python_archive(version, major):
    """The root's python{major} as Heroku's CPython archive (see the module's docstring)."""
    return f"""set -e
rm -rf /opt/py && mkdir -p /opt/py/bin /opt/py/lib /srv/s3
cp /usr/bin/python{major} /opt/py/bin/
ln -s python{major} /opt/py/bin/python3 && ln -s python{major} /opt/py/bin/python
cp -a /usr/lib/python{major} /opt/py/lib/ && rm -f /opt/py/lib/python{major}/EXTERNALLY-MANAGED
mkdir -p /opt/py/lib/python{major}/ensurepip/_bundled /opt/py/lib/python{major}/site-packages
cp /usr/share/python-wheels/pip-*.whl /opt/py/lib/python{major}/ensurepip/_bundled/
sed -i 's/^    if sys.base_prefix != sys.prefix or hasattr(sys, "real_prefix"):$/    if True:/' \\
    /opt/py/lib/python{major}/sysconfig/__init__.py
# site is frozen into Debian's binary and looks in dist-packages: let it find site-packages there.
ln -s site-packages /opt/py/lib/python{major}/dist-packages
find /opt/py -name __pycache__ -prune -exec rm -rf {{}} +
test "$(/opt/py/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" = \\
    /opt/py/lib/python{major}/site-packages
tar -C /opt/py -c . | zstd -q -f -o /srv/s3/python-{version}-ubuntu-24.04-amd64.tar.zst
"""


def uv_archive(served, version, scratch):
    """uv's release archive (uv-x86_64-unknown-linux-gnu/uv and uvx) from the PyPI wheel of that release."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            "manylinux_2_17_x86_64",
            "-d",
            str(scratch),
            f"uv=={version}",
        ],
        check=True,
    )
    wheel = next(scratch.glob(f"uv-{version}-*.whl"))
    directory = served / "github/uv/releases/download" / version
    directory.mkdir(parents=True)
    with (
        zipfile.ZipFile(wheel) as archive,
        tarfile.open(directory / "uv-x86_64-unknown-linux-gnu.tar.gz", "w:gz") as out,
    ):
        for name in ("uv", "uvx"):
            member = next(item for item in archive.namelist() if item.endswith(f".data/scripts/{name}"))
            target = scratch / name
            target.write_bytes(archive.read(member))
            target.chmod(0o755)
            out.add(target, arcname=f"uv-x86_64-unknown-linux-gnu/{name}")


def https_server(served, scratch):
    """An HTTPS server on 127.0.0.1:443 for both hosts, with a CA of its own; the CA bundle to trust it."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 443)) == 0:
            sys.exit("something already listens on 127.0.0.1:443, where the stand-in for Heroku's S3 must")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=stand-in CA",
            "-keyout",
            scratch / "ca.key",
            "-out",
            scratch / "ca.pem",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={S3_HOST}",
            "-keyout",
            scratch / "server.key",
            "-out",
            scratch / "server.csr",
        ],
        check=True,
        capture_output=True,
    )
    (scratch / "san.cnf").write_text(f"subjectAltName=DNS:{S3_HOST},DNS:{UV_HOST}\n")
    subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            scratch / "server.csr",
            "-CA",
            scratch / "ca.pem",
            "-CAkey",
            scratch / "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            scratch / "san.cnf",
            "-out",
            scratch / "server.pem",
        ],
        check=True,
        capture_output=True,
    )
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 443), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(scratch / "server.pem", scratch / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, scratch / "ca.pem"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        print(f"stand-in server: {format % args}", flush=True)


def postgres(scratch):
    """A throwaway PostgreSQL 15 on a free port: (URL for the app, stop function)."""
    data = scratch / "pg"
    data.mkdir()
    shutil.chown(data, "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *as_postgres,
            PG_BIN / "initdb",
            "-D",
            data / "data",
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [*as_postgres, PG_BIN / "pg_ctl", "-D", data / "data", "-l", data / "log", "-o", options, "-w", "start"],
        check=True,
        capture_output=True,
    )
    psql = [*as_postgres, "psql", "-h", data, "-p", str(port), "-U", "postgres", "-q"]
    subprocess.run(
        [*psql, "-c", "CREATE ROLE app LOGIN PASSWORD 'app-password'", "-c", "CREATE DATABASE app OWNER app"],
        check=True,
    )

    def stop():
        subprocess.run(
            [*as_postgres, PG_BIN / "pg_ctl", "-D", data / "data", "-m", "fast", "stop"], capture_output=True
        )

    return f"postgres://app:app-password@127.0.0.1:{port}/app", stop


# The dyno: HOME=/app, the slug's .profile.d scripts, then the Procfile's line with bash, as Heroku runs it.
RUN_SLUG = r"""
set -u
useradd -m -s /bin/bash dyno 2>/dev/null || true
mkdir -p /app && mount --bind /build/app /app && chown -R dyno /app
cat > /tmp/dyno-env <<'ENV'
export HOME=/app PORT=5055 DYNO=web.1 STACK=heroku-24 LANG=C.UTF-8
__CONFIG_VARS__
cd /app
for script in /app/.profile.d/*.sh; do . "$script"; done
ENV
chmod 644 /tmp/dyno-env
as_dyno() { runuser -u dyno -- env -i PATH=/usr/bin:/bin bash -c ". /tmp/dyno-env; $1"; }
echo "--- release: $(sed -n 's/^release: *//p' /app/Procfile)"
as_dyno "python --version && $(sed -n 's/^release: *//p' /app/Procfile)" 2>&1 | tail -3 || exit 1
echo "--- web: $(sed -n 's/^web: *//p' /app/Procfile)"
as_dyno "exec $(sed -n 's/^web: *//p' /app/Procfile)" > /tmp/web.log 2>&1 &
status=fail
for second in $(seq 1 60); do
  health=$(curl -s -o /tmp/health -w '%{http_code}' -H 'X-Forwarded-Proto: https' http://127.0.0.1:5055/health/)
  if [ "$health" = 200 ]; then status=ok; break; fi
  sleep 1
done
home=$(curl -s -o /tmp/home -w '%{http_code}' -H 'X-Forwarded-Proto: https' http://127.0.0.1:5055/)
echo "--- GET /health/: $health after $second s: $(cat /tmp/health 2>/dev/null)"
echo "--- GET /: $home"
echo "--- the dyno's processes:"
ps -u dyno -o pid,args | grep -E "nginx: master|pgbouncer|gunicorn|uwsgi|serve_waitress" | grep -v grep
pkill -TERM -u dyno
for second in $(seq 1 30); do pgrep -u dyno >/dev/null || break; sleep 1; done
left=$(pgrep -u dyno | wc -l)
echo "--- SIGTERM: $left processes left after $second s"
echo "--- web log"; grep -v '^perl: \|^	L\|are supported\|Falling back' /tmp/web.log | head -60
[ "$status" = ok ] && [ "$home" = 200 ] && [ "$left" = 0 ]
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("python", "pgbouncer", "nginx"):
        parser.add_argument(f"--{name}", type=Path, required=True, help=f"a checkout of heroku-buildpack-{name}")
    parser.add_argument("--package-manager", choices=["pip", "uv"], default="pip")
    parser.add_argument("--wsgi-server", choices=["gunicorn", "uwsgi", "waitress"], default="gunicorn")
    args = parser.parse_args()
    python_version = buildpack_pin(args.python, r"^LATEST_PYTHON_3_14=\"([\d.]+)\"", "lib/python_version.sh")
    uv_version = buildpack_pin(args.python, r"^uv==([\d.]+)", "requirements/uv.txt")

    scratch = Path(tempfile.mkdtemp(prefix="real-buildpacks-", dir=TEST_DIR))
    scratch.chmod(0o755)
    root = scratch / "root"
    print(f"root: a copy of {sidroot.python_root(TEST_DIR)} in {root}", flush=True)
    subprocess.run(["cp", "-a", sidroot.python_root(TEST_DIR), root], check=True)
    must(
        root,
        "apt-get -o Acquire::Check-Valid-Until=false update -qq && DEBIAN_FRONTEND=noninteractive "
        f"apt-get install -y -qq {' '.join(STACK_PACKAGES)} >/dev/null",
        "installing the stack's packages",
    )
    major = sidroot.VERSION
    must(root, python_archive(python_version, major), "laying out the Python archive")
    served = root / "srv/s3"
    uv_archive(served, uv_version, scratch)
    server, ca = https_server(served, scratch)
    with open(root / "etc/hosts", "a") as hosts:
        hosts.write(f"127.0.0.1\t{S3_HOST}\n127.0.0.1\t{UV_HOST}\n")
    bundle = (root / "etc/ssl/certs/ca-certificates.crt").read_text() + ca.read_text()
    (root / "etc/stand-in-ca-bundle.pem").write_text(bundle)

    bake = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "-o",
            scratch / "bake",
            TEMPLATE,
            f"package_manager={args.package_manager}",
            f"wsgi_server={args.wsgi_server}",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (baked,) = (scratch / "bake").iterdir()
    shutil.copytree(baked, root / "build/app", symlinks=True)
    for name in ("python", "pgbouncer", "nginx"):
        shutil.copytree(
            getattr(args, name), root / "buildpacks" / name, symlinks=True, ignore=shutil.ignore_patterns(".git")
        )
    first_line = bake.stdout.strip().splitlines()[0]
    print(f"bake: {args.wsgi_server}, {args.package_manager}; .python-version {major}; {first_line}")

    database_url, stop_postgres = postgres(scratch)
    app_json = json.loads((root / "build/app/app.json").read_text())
    config_vars = {name: spec["value"] for name, spec in app_json["env"].items() if "value" in spec}
    config_vars.update(
        DATABASE_URL=database_url,
        DJANGO_SECRET_KEY="a-slug-secret-of-more-than-fifty-characters-0123456789abcdef",
        PGBOUNCER_SERVER_TLS_SSLMODE="prefer",
    )
    exports = "\n".join(f"export {name}='{value}'" for name, value in config_vars.items())
    (root / "run-slug.sh").write_text(RUN_SLUG.replace("__CONFIG_VARS__", exports))
    try:
        for name in ("python", "pgbouncer", "nginx"):
            # The nginx buildpack reads its archive relative to the working directory.
            code, output = sh(
                root,
                f"cd /buildpacks/{name} && export STACK=heroku-24 HOME=/root CURL_CA_BUNDLE=/etc/stand-in-ca-bundle.pem"
                f" && mkdir -p /env /cache/{name} && bin/compile /build/app /cache/{name} /env",
            )
            print(f"=== {name} buildpack: bin/compile exit {code}\n{output.strip()}", flush=True)
            if code != 0:
                return code
        code, output = sh(root, "bash /run-slug.sh", timeout=300)
        print(f"=== the slug's release and web dyno: exit {code}\n{output.strip()}")
        return code
    finally:
        server.shutdown()
        stop_postgres()
        subprocess.run(["rm", "-rf", str(scratch)])


if __name__ == "__main__":
    sys.exit(main())
