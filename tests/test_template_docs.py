"""The template's own README and CONTRIBUTING.md read as a newcomer needs them: short, every link resolves, no
word only this repository's history explains, dates in one section, and the errors they quote are the real
ones."""

import re
import subprocess
import sys

import pytest

from conftest import ROOT

README = ROOT / "README.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
DOCS = [README, CONTRIBUTING]
# Words that mean something only to someone who read this repository's issues or earlier benchmark runs.
INTERNAL_WORDS = [r"\bseed \d", r"former control", r"\bpeer \d", r"\bkernel\b", r"\bused to\b", r"\bBefore:"]
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
DATED = re.compile(rf"\bas of\b|\b(?:{MONTHS}) 20\d\d\b")


def sections(text):
    """{heading: body} for the ## sections."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_readme_fits_a_first_read():
    assert len(README.read_text().splitlines()) <= 200


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_relative_links_resolve(doc):
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert local, f"{doc.name} links no file of this repository: this test would check nothing"
    missing = [link for link in local if not (doc.parent / link).exists()]
    assert not missing, missing


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_no_words_only_the_repository_history_explains(doc):
    text = doc.read_text()
    found = [word for word in INTERNAL_WORDS if re.search(word, text, flags=re.I)]
    assert not found, f"{doc.name}: {found}"


def test_what_depends_on_a_date_lives_in_platform_status():
    parts = sections(README.read_text())
    status = [heading for heading in parts if heading.startswith("Platform status")]
    assert status and re.search(r"20\d\d", status[0]), "a dated 'Platform status (checked <month year>)' section"
    elsewhere = {heading: DATED.findall(body) for heading, body in parts.items() if heading not in status}
    assert not any(elsewhere.values()), elsewhere


def test_the_readme_compares_with_the_usual_starting_points():
    text = README.read_text()
    first_screen = "\n".join(text.splitlines()[:60])
    for name in ("heroku/python-getting-started", "cookiecutter-django"):
        assert name in first_screen


def bake_error(tmp_path, answer):
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), str(ROOT), answer],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert not any(tmp_path.iterdir()), "a refused bake leaves nothing behind"
    return " ".join((result.stdout + result.stderr).split())


def quoted_errors():
    """The error lines the README quotes, whitespace folded, without their backquotes."""
    text = " ".join(README.read_text().split())
    return re.findall(r"`((?:ERROR|ValueError): [^`]+)`", text)


@pytest.mark.parametrize(
    "answer, starts",
    [("project_slug=my-app", "ERROR: project_slug"), ("wsgi_server=Gunicorn", "ValueError: Gunicorn")],
)
def test_the_errors_the_readme_quotes_are_what_a_bake_prints(tmp_path, answer, starts):
    quoted = [error for error in quoted_errors() if error.startswith(starts)]
    assert len(quoted) == 1, quoted_errors()
    assert quoted[0] in bake_error(tmp_path, answer)


def test_contributing_test_commands_select_tests():
    """Each `pytest -m MARK tests` the guide shows collects tests (an unknown or empty mark would not)."""
    marks = re.findall(r"pytest -m (\w+) tests", CONTRIBUTING.read_text())
    assert set(marks) >= {"bake", "stack"}
    for mark in set(marks):
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-m", mark, "--collect-only", "-q", "tests"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-2000:]
        assert re.search(r"^(\d+)/\d+ tests collected", result.stdout, flags=re.M), result.stdout[-500:]
