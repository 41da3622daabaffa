"""README command 2 in full in a clean Debian root: `sudo .venv/bin/python scripts/fresh_root.py --debian 12`
(or 13; `-- ARGS` are passed on to `.ci/run`, as command 2 takes them).

The root is a cloud image's (tests/freshroot.py: debootstrap's minbase with python3, sudo, git, curl and
ca-certificates; no pip, no venv module, no pyenv). This checkout's files as git sees them are copied to
/root/heroku-django in it, and `sudo bash .ci/run` runs there as the README says, installing everything
and running the whole suite. Its output is shown as it comes and kept in the test directory
(`fresh-root-debian-N.log`); the exit status is command 2's. Everything started in the root ends with it;
the root is removed afterwards (`--keep` keeps it, and prints where).

Not part of the suite, which it runs: the suite's own tests/test_fresh_machine.py runs a quick subset.
"""

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TEMPLATE / "tests"))

import freshroot  # noqa: E402
from conftest import TEST_DIR, open_dir  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debian", choices=sorted(freshroot.SUITES), default="12")
    parser.add_argument("--keep", action="store_true", help="keep the root afterwards")
    parser.add_argument("ci_args", nargs="*", help="arguments for .ci/run (default: the whole suite)")
    args = parser.parse_args()
    suite = freshroot.SUITES[args.debian]
    command = freshroot.readme_commands()["2"]

    started = time.monotonic()
    tarball = freshroot.base_tarball(open_dir(TEST_DIR), suite)
    base = Path(tempfile.mkdtemp(prefix=f"fresh-root-debian-{args.debian}-", dir=open_dir(TEST_DIR)))
    log_path = TEST_DIR / f"fresh-root-debian-{args.debian}.log"
    try:
        root = freshroot.make_root(tarball, base / "root", suite)
        freshroot.copy_checkout(TEMPLATE, root / "root/heroku-django")
        line = f"cd /root/heroku-django && {command} {shlex.join(args.ci_args)}".strip()
        print(f"Debian {args.debian} ({suite}) root ready in {time.monotonic() - started:.0f} s; running: {line}")
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                freshroot.root_command(root, line),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={"PATH": freshroot.SBIN_PATH, "LANG": "C.UTF-8"},
            )
            for output in process.stdout:
                sys.stdout.write(output)
                log.write(output)
            status = process.wait()
        minutes = (time.monotonic() - started) / 60
        print(f"\nREADME command 2 on a clean Debian {args.debian} root: exit {status} after {minutes:.0f} min")
        print(f"its output: {log_path}")
        return status
    finally:
        if args.keep:
            print(f"kept: {base / 'root'}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
