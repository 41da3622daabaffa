#!/usr/bin/env python3
"""Write templates/uv-locks/: the uv.lock of every dependency set a uv bake can have.

usage: python3 scripts/uv_lock.py [--upgrade]

A uv bake's uv.lock must be exactly what `uv lock` writes for its pyproject.toml, but a bake runs offline
(no network, no subprocess in the hooks). So the locks are made here, once per dependency set, by uv itself,
and checked in; the bake's uv.lock template includes the one for its answers. Run this after changing a pin
in the template's pyproject.toml (and requirements*.txt, which tests/test_uv.py holds to the same pins).

How: every valid combination of answers (the pre-generation hook's validators decide) is rendered the way
cookiecutter renders it; the uv.lock template names its lock file, pyproject.toml gives the dependencies.
Each distinct set is locked in a scratch directory with `uv lock` (network: PyPI), starting from the lock
already checked in, so that versions only move when a pin does (or with --upgrade). The root package's name
is then replaced by the template expression, so that every bake gets its own. Lock files no combination
uses any more are removed.

Needs uv (`pip install uv`) in the Python that runs this and cookiecutter; Python 3.11 or newer.
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config
from cookiecutter.utils import create_env_with_context
from jinja2 import FunctionLoader

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "{{cookiecutter.project_slug}}"
LOCKS = ROOT / "templates" / "uv-locks"
UV_LOCK_TEMPLATE = PROJECT / '{% if cookiecutter.package_manager == "uv" %}uv.lock{% endif %}'
# The root package's name while locking, and what replaces it in the stored lock: the pyproject.toml's
# `name`, which is the slug in the normalised form uv writes.
ROOT_NAME = "lock-root"
ROOT_NAME_LINE = f'name = "{ROOT_NAME}"\n'
TEMPLATE_NAME_LINE = 'name = "{{ cookiecutter.project_slug | slugify }}"\n'


def contexts():
    """The cookiecutter context of every combination of choices, with package_manager=uv."""
    defaults = json.loads((ROOT / "cookiecutter.json").read_text())
    choices = {key: defaults[key] if isinstance(defaults[key], list) else [True, False] for key in choice_keys()}
    choices["package_manager"] = ["uv"]
    for values in itertools.product(*choices.values()):
        answers = dict(zip(choices, values, strict=True), project_name=ROOT_NAME.replace("-", " ").title())
        context = generate_context(str(ROOT / "cookiecutter.json"), extra_context=answers)
        context["cookiecutter"] = prompt_for_config(context, no_input=True)
        yield context


def render(path, context, loader=None):
    """The file rendered as cookiecutter renders it (same environment, same whitespace options)."""
    env = create_env_with_context(context)
    env.loader = loader
    return env.from_string(path.read_text()).render(**context)


def valid(context):
    """Whether the pre-generation hook accepts these answers (its own validators, rendered as a bake does)."""
    hook = {}
    exec(render(ROOT / "hooks" / "pre_gen_project.py", context), hook)  # noqa: S102 - our own hook, our own answers
    try:
        for validate in hook["VALIDATORS"]:
            validate(hook["ANSWERS"])
    except ValueError:
        return False
    return True


def choice_keys():
    defaults = json.loads((ROOT / "cookiecutter.json").read_text())
    return [key for key, value in defaults.items() if isinstance(value, list | bool) and not key.startswith("_")]


def valid_answers():
    """The answers of every valid uv bake: {key: value} for each choice in cookiecutter.json."""
    return [{key: context["cookiecutter"][key] for key in choice_keys()} for context in contexts() if valid(context)]


def lock_name(context):
    """The file the uv.lock template includes for this context: each include renders as its own name."""
    loader = FunctionLoader(lambda name: name)
    return render(UV_LOCK_TEMPLATE, context, loader).strip()


def dependency_sets():
    """{lock file name under templates/: pyproject.toml text} for every valid bake."""
    sets = {}
    for context in contexts():
        if not valid(context):
            continue
        pyproject = render(PROJECT / "pyproject.toml", context)
        name = lock_name(context)
        if sets.setdefault(name, pyproject) != pyproject:
            raise SystemExit(f"{name} stands for two pyproject.toml files: the uv.lock template's key misses an answer")
    return sets


def uv():
    try:
        from uv import find_uv_bin
    except ImportError:
        raise SystemExit(f"uv is not installed for {sys.executable}: {sys.executable} -m pip install uv") from None
    return find_uv_bin()


def lock(pyproject, stored, upgrade):
    """uv.lock for one pyproject.toml, starting from the stored lock; returned in its stored (template) form."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / "pyproject.toml").write_text(pyproject)
        if stored.exists():
            (scratch / "uv.lock").write_text(stored.read_text().replace(TEMPLATE_NAME_LINE, ROOT_NAME_LINE))
        # Any Python in requires-python will do (the lock is universal), so the one running this, not one
        # named by .python-version, which may not be installed here; never one uv would download.
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        command = [uv(), "lock", "--quiet", "--python", sys.executable, *(["--upgrade"] if upgrade else [])]
        subprocess.run(command, cwd=scratch, env=env, check=True)
        text = (scratch / "uv.lock").read_text()
    if text.count(ROOT_NAME_LINE) != 1:
        raise SystemExit(f"expected the root package {ROOT_NAME!r} once in the lock")
    return text.replace(ROOT_NAME_LINE, TEMPLATE_NAME_LINE)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upgrade", action="store_true", help="let unpinned (transitive) packages move too")
    args = parser.parse_args()
    sets = dependency_sets()
    LOCKS.mkdir(parents=True, exist_ok=True)
    for name, pyproject in sorted(sets.items()):
        stored = ROOT / "templates" / name
        text = lock(pyproject, stored, args.upgrade)
        changed = not stored.exists() or stored.read_text() != text
        stored.write_text(text)
        print(f"{'updated' if changed else 'unchanged'}: {stored.relative_to(ROOT)}")
    for stale in sorted(set(LOCKS.glob("*.lock")) - {ROOT / "templates" / name for name in sets}):
        stale.unlink()
        print(f"removed: {stale.relative_to(ROOT)} (no bake uses it)")


if __name__ == "__main__":
    main()
