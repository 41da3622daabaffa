"""A clean Debian root (12 by default, or 13) with only what a cloud image has, for running the README's
commands in it.

debootstrap builds it from the Debian mirror this machine's apt uses (minbase plus python3, sudo, git, curl
and ca-certificates: no pip, no venv module, no pyenv, no server). The root is cached as a tarball in the
test directory (keyed by what goes in it), so only the first run on a machine pays for debootstrap.

What the root takes from this machine is its network set-up alone, as a cloud image has its own: DNS
(/etc/resolv.conf), the Debian apt sources (for the root's own release) and the CA certificates (a machine
behind a TLS-inspecting egress proxy trusts that proxy's CA; uv is told to read them, as pip does).
Commands run chrooted inside `unshare --mount --pid --fork`: /proc, /dev, /dev/shm and /run are mounted in
a private mount namespace, and everything started in the root ends with it. It shares this machine's
network, which apt and PyPI need.
"""

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUITE = "bookworm"
# The Debian releases the README names, by the number a user knows them by.
SUITES = {"12": "bookworm", "13": "trixie"}
CLOUD_PACKAGES = ["python3", "sudo", "git", "curl", "ca-certificates"]
CLOUD_USER = "admin"  # Debian's cloud images name their default user so; cloud-init gives it sudo
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"
README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands():
    """{"1": command 1, "2": command 2, "test": the test command} from the README's first screen."""
    block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S).group(1)
    commands, number = {}, None
    for line in block.splitlines():
        marker = re.match(r"# (\d)\. ", line)
        if marker:
            number = marker.group(1)
        elif line.strip() and number:
            commands[number] = line.strip()
            number = None
    test = re.search(r"the test command\s+is\s+`([^`]+)`", README.read_text())
    commands["test"] = test.group(1) if test else None
    return commands


def debian_mirror():
    """The Debian archive URI from this machine's apt sources (deb822 or one-line), else deb.debian.org."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file() or not path.name.endswith((".list", ".sources")):
            continue
        for line in path.read_text().splitlines():
            words = line.split()
            for word in words:
                if word.startswith(("http://", "https://")) and word.rstrip("/").endswith("/debian"):
                    return word.rstrip("/")
    return "http://deb.debian.org/debian"


def tool(name):
    found = shutil.which(name, path=SBIN_PATH)
    if not found:
        raise AssertionError(f"{name} is missing: apt-get install {'debootstrap' if name == 'debootstrap' else name}")
    return found


def tarball_path(cache_dir, suite=SUITE, packages=CLOUD_PACKAGES):
    """Where base_tarball keeps the root: named by what goes into it."""
    key = hashlib.sha256(f"{suite} {debian_mirror()} {' '.join(packages)}".encode()).hexdigest()[:12]
    return Path(cache_dir) / f"debian-{suite}-{key}.tar"


def base_tarball(cache_dir, suite=SUITE, packages=CLOUD_PACKAGES):
    """The cached root tarball of debootstrap's minbase `suite` with `packages`, built when missing (a lock
    keeps concurrent runs apart)."""
    mirror = debian_mirror()
    tarball = tarball_path(cache_dir, suite, packages)
    with open(f"{tarball}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not tarball.exists():
            build = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=cache_dir))
            try:
                result = subprocess.run(
                    [tool("debootstrap"), "--variant=minbase", f"--include={','.join(packages)}"]
                    + [suite, str(build / "root"), mirror],
                    capture_output=True,
                    text=True,
                    timeout=1800,
                )
                assert result.returncode == 0, f"debootstrap failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
                partial = f"{tarball}.part"
                subprocess.run(["tar", "-C", str(build / "root"), "-cf", partial, "."], check=True)
                os.replace(partial, tarball)
            finally:
                shutil.rmtree(build, ignore_errors=True)
    return tarball


def share_network(root):
    """This machine's DNS and CA certificates in `root` (the CA bundle needs the ca-certificates package
    there), its hostname and an /etc/hosts as an installed Debian has."""
    root = Path(root)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf", follow_symlinks=True)
    local_cas = root / "usr/local/share/ca-certificates"
    local_cas.mkdir(parents=True, exist_ok=True)
    for path in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(path, local_cas / path.name)
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")
    # pip (Debian's) reads the system store; uv reads its own bundled roots unless told to use the system's
    # (https://docs.astral.sh/uv/reference/settings/#native-tls). A user's machine reaches PyPI without
    # this; here it lets uv trust what pip trusts, so the tests measure the project and not the machine.
    (root / "etc/uv").mkdir(parents=True, exist_ok=True)
    (root / "etc/uv/uv.toml").write_text("native-tls = true\n")
    (root / "etc/hostname").write_text("fresh\n")
    # debootstrap's minbase writes no /etc/hosts; an installed Debian has this one (localhost included, which
    # chromedriver's clients and others resolve). The UTS name is this machine's, and sudo looks it up.
    (root / "etc/hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\tfresh {socket.gethostname()}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
    )


def host_codename():
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    return None


def make_root(tarball, root, suite=SUITE):
    """Unpack the cached root at `root` and give it this machine's network set-up (its Debian sources turned
    to `suite`'s) and a cloud user."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-C", str(root), "-xf", str(tarball)], check=True)
    share_network(root)
    debian_sources = [
        path
        for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.sources")]
        if path.is_file() and "debian.org" in path.read_text()
    ]
    if debian_sources:
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
        for path in debian_sources:
            target = root / "etc/apt" / path.relative_to("/etc/apt")
            target.parent.mkdir(parents=True, exist_ok=True)
            text = path.read_text()
            codename = host_codename()
            if codename and codename != suite:  # bookworm-updates -> trixie-updates, and so on
                text = re.sub(rf"\b{codename}\b", suite, text)
            target.write_text(text)
    for path in Path("/etc/apt/apt.conf.d").glob("*"):  # e.g. a snapshot mirror's Check-Valid-Until
        if path.is_file() and "Acquire::Check-Valid-Until" in path.read_text(errors="replace"):
            shutil.copy(path, root / "etc/apt/apt.conf.d" / path.name)
    run_in_root(root, f"useradd --create-home --shell /bin/bash {CLOUD_USER}", timeout=120)
    sudoers = root / "etc/sudoers.d/90-cloud-init-users"
    sudoers.write_text(f"{CLOUD_USER} ALL=(ALL) NOPASSWD:ALL\n")
    sudoers.chmod(0o440)
    return root


def root_command(root, command, user="root", tmpfs=(), binds=()):
    """argv that runs the shell `command` as `user` in a login shell (a clean environment, as after ssh)
    chrooted at `root`, in private mount and PID namespaces: when unshare(1) ends, so does all of it.
    `tmpfs`: directories of the root that get an empty private tmpfs; `binds`: this machine's directories,
    mounted at the same paths in the root (after the tmpfs ones, so they may lie under them)."""
    extra = "".join(
        f'mkdir -p "$r"{shlex.quote(path)}; mount -t tmpfs -o mode=1777 tmp "$r"{shlex.quote(path)}; '
        for path in map(str, tmpfs)
    )
    extra += "".join(
        f'mkdir -p "$r"{shlex.quote(path)}; mount --bind {shlex.quote(path)} "$r"{shlex.quote(path)}; '
        for path in map(str, binds)
    )
    mounts = (
        'set -e; r="$1"; shift; '
        'mount --bind "$r" "$r"; '  # the root a mount point, as on a machine (unshare(1) in it needs that)
        'mount --rbind /dev "$r/dev"; mount -t tmpfs -o mode=1777 shm "$r/dev/shm"; '
        'mount -t proc proc "$r/proc"; mount -t tmpfs -o mode=755 run "$r/run"; '
        'mount -t sysfs sysfs "$r/sys" || true; '
        + extra
        # Not exec: this shell stays the namespace's PID 1 and, as init does, reaps the orphans its wait
        # meets (runuser would leave them zombies, which kill(pid, 0) still finds).
        + 'chroot "$r" "$@"; exit $?'
    )
    namespaces = ["--mount", "--pid", "--fork", "--kill-child", "--propagation", "private"]
    return [tool("unshare"), *namespaces, "--"] + [
        "/bin/sh",
        "-c",
        mounts,
        "sh",
        str(root),
        "/usr/sbin/runuser",
        "-l",
        user,
        "-c",
        command,
    ]


def copy_checkout(source, destination):
    """The checkout's files as git sees them (tracked and new, not ignored: no .venv, no caches); without
    git (a copied tree, a tarball), every file but .git, .venv and caches."""
    listed = subprocess.run(  # safe.directory: a user's clone, and we are root
        ["git", "-c", f"safe.directory={source}", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        capture_output=True,
    )
    if listed.returncode != 0:
        skip = shutil.ignore_patterns(".git", ".venv", ".cache", "__pycache__", ".*_cache")
        shutil.copytree(source, destination, ignore=skip, dirs_exist_ok=True)
        return
    for name in filter(None, (entry.decode() for entry in listed.stdout.split(b"\0"))):
        if (Path(source) / name).is_file():
            (Path(destination) / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(source) / name, Path(destination) / name)


def run_in_root(root, command, user="root", timeout=1800, check=True, tmpfs=(), binds=()):
    result = subprocess.run(
        root_command(root, command, user, tmpfs, binds),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={"PATH": SBIN_PATH, "LANG": "C.UTF-8"},
    )
    if check:
        assert result.returncode == 0, (
            f"{command!r} in the fresh root exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-5000:]}\n--- stderr\n{result.stderr[-5000:]}"
        )
    return result
