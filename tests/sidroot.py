"""The baked .python-version (3.14, what Heroku installs), for the tests that need the production Python.

Debian 12 has no 3.14 and nothing here may download one (python.org and GitHub are unreachable), but Debian's
unstable archive, reachable as the Debian registry is, carries python3.14. Its binaries need unstable's glibc,
so they live in a root of their own: debootstrap's minbase of sid with python3.14 and what pip needs to
compile uWSGI (built by tests/freshroot.py, as the clean Debian 12 root is), unpacked once and kept as a
directory. The unstable binaries, not CPython built from Debian's source package: the source tarball is not
served here, and a build would take many minutes of a shared CPU where debootstrap takes one to three.

Commands run chrooted in it as root (freshroot.run_in_root: private mount and PID namespaces, this machine's
network) with a private /tmp, the test's own directories bound at the same paths (so a bake, a venv and the
paths in their error messages are the same inside and out), and pip's and uv's caches kept between runs.

stack_root is a second root for the real stack on that Python: a copy of this one with what bin/dyno needs
(its docstring: nginx, pgbouncer, ruby for erb, postgresql) installed by apt-get from unstable, and the user
`dyno` that bin/dyno, started as root, drops to. A root of its own, so the first one stays as small and
quick to build as the tests that use it need.
"""

import fcntl
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import freshroot

# What the bake's .python-version names, so the root follows it (unstable carries the newest versions).
VERSION = (Path(__file__).resolve().parent.parent / "{{cookiecutter.project_slug}}/.python-version").read_text().strip()
PYTHON = f"/usr/bin/python{VERSION}"
SUITE = "sid"
# venv for `python -m venv` (Debian splits ensurepip out); -dev, gcc, libc6-dev and libcrypt-dev (uWSGI
# links -lcrypt) for uWSGI, which pip and uv compile from its sdist (it has no wheels), as Heroku's build
# does with its build image's headers; ca-certificates for pip and uv over TLS.
PACKAGES = [
    f"python{VERSION}",
    f"python{VERSION}-venv",
    f"python{VERSION}-dev",
    "gcc",
    "libc6-dev",
    "libcrypt-dev",
    "ca-certificates",
]
CACHE = "/root/.cache"  # pip's and uv's, inside the root


def python_root(cache_dir):
    """The root, cached as a directory (`<tarball name>.d`), built when missing; a lock keeps concurrent runs
    apart. Its tarball is removed once unpacked: the directory is what the tests use."""
    root = freshroot.tarball_path(cache_dir, SUITE, PACKAGES).with_suffix(".d")
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / PYTHON.lstrip("/")).exists():
            tarball = freshroot.base_tarball(cache_dir, SUITE, PACKAGES)
            partial = Path(tempfile.mkdtemp(prefix="unpack-", dir=cache_dir))
            try:
                subprocess.run(["tar", "-C", str(partial), "-xf", str(tarball)], check=True)
                freshroot.share_network(partial)
                (partial / CACHE.lstrip("/")).mkdir(parents=True, exist_ok=True)
                shutil.rmtree(root, ignore_errors=True)
                os.replace(partial, root)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
            tarball.unlink()
    return root


def run(root, command, binds=(), cwd=None, env=None, timeout=1800, check=True):
    """The shell `command` as root in the 3.14 root, in `cwd`, with `env` on top of a login shell's, `binds`
    (this machine's directories) at their own paths, and a private /tmp (the servers' fixed sockets live there)."""
    if cwd:
        command = f"cd {shlex.quote(str(cwd))} && {command}"
    # uv trusts its own CA list unless told otherwise; the root's bundle is this machine's (share_network),
    # which trusts any TLS-inspecting proxy this machine has to go through.
    env = {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", **(env or {})}
    assignments = " ".join(shlex.quote(f"{key}={value}") for key, value in env.items())
    command = f"export {assignments}; {command}"
    return freshroot.run_in_root(root, command, timeout=timeout, check=check, tmpfs=["/tmp"], binds=binds)


# bin/dyno's programs, as its docstring lists them (apt-get install nginx pgbouncer ruby postgresql).
STACK_PACKAGES = ["nginx", "pgbouncer", "ruby", "postgresql"]
STACK_USER = "dyno"  # the user bin/dyno drops to when started as root (bin/dynolib/account.py)


def stack_root(cache_dir):
    """python_root plus STACK_PACKAGES and STACK_USER, cached as a directory beside it, built when missing.

    The packages are installed in the chroot's private PID namespace with a policy-rc.d that refuses every
    service start (as Debian's container images do), so no package's maintainer script starts nginx or
    PostgreSQL here; whatever started anyway ends with the namespace."""
    python = python_root(cache_dir)
    key = hashlib.sha256(" ".join(STACK_PACKAGES + [STACK_USER]).encode()).hexdigest()[:12]
    root = python.with_name(f"{python.name.removesuffix('.d')}-stack-{key}.d")
    ready = root / "etc/stack-root-ready"
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            partial = Path(tempfile.mkdtemp(prefix="stack-", dir=cache_dir))
            try:
                subprocess.run(["cp", "-a", f"{python}/.", str(partial)], check=True)
                policy = partial / "usr/sbin/policy-rc.d"
                policy.write_text("#!/bin/sh\n# no service starts while packages install (invoke-rc.d(8))\nexit 101\n")
                policy.chmod(0o755)
                # This machine's apt settings for an archive snapshot older than its Release files allow
                # (Check-Valid-Until), as freshroot.make_root copies them.
                for path in Path("/etc/apt/apt.conf.d").glob("*"):
                    if path.is_file() and "Acquire::Check-Valid-Until" in path.read_text(errors="replace"):
                        shutil.copy(path, partial / "etc/apt/apt.conf.d" / path.name)
                install = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
                freshroot.run_in_root(
                    partial, f"apt-get update -q && {install} {' '.join(STACK_PACKAGES)}", timeout=1800
                )
                freshroot.run_in_root(
                    partial, f"useradd --create-home --user-group --shell /bin/bash {STACK_USER}", timeout=120
                )
                (partial / ready.relative_to(root)).write_text(" ".join(STACK_PACKAGES) + "\n")
                shutil.rmtree(root, ignore_errors=True)
                os.replace(partial, root)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    return root
