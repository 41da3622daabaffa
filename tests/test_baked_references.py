"""Everything a bake names is in that bake: the paths, Markdown links and anchors, and "README.md, 'Section'"
references its files make, for every set of answers; and its code comments speak to the project's owner, not
in the words of this template's benchmark runs."""

import io
import re
import tokenize

import pytest

from conftest import MATRIX, OPTION_BAKES, answers_id

ANSWER_SETS = [*MATRIX, *OPTION_BAKES, {"package_manager": "uv"}]
TEXT_SUFFIXES = {".py", ".md", ".erb", ".ini", ".toml", ".yml", ".yaml", ".json", ".html", ".txt", ".cfg", ".example"}
COMMENTED_SUFFIXES = {".py", ".erb", ".ini", ".toml", ".yml", ".yaml"}

# A path a baked file may name although the bake does not hold it; each is named on purpose.
NOT_IN_THE_BAKE = [
    r"\.dyno/",  # bin/dyno's run-time directory (pgbouncer.ini, users.txt, logs), made when the dynos start
    r"\.venv/",  # the project's virtual environment, made by the README's install step
    r"staticfiles/",  # collectstatic's output at build time
    r"\.env$",  # the owner's local config vars, copied from .env.example
    r"(/tmp|/app|/etc|/usr|/var|/dev|/proc)/",  # absolute paths on a dyno or the machine
    # Library sources a comment points to when it overrides or relies on them (installed in site-packages):
    r"(django|django_q|gunicorn|waitress|uwsgi|whitenoise|storages|redis|psycopg)/",
    r"RUNNER_TEMP/",  # the CI runner's temporary directory ($RUNNER_TEMP), in the workflow
]
# A path-looking word: directories and a file with a known extension, e.g. config/nginx.conf.erb.
PATH = re.compile(
    r"(?<![\w/.$:{-])(\.?[A-Za-z_][\w.-]*(?:/[\w.-]+)+\.(?:py|md|erb|html|toml|txt|json|yml|yaml|css|lock|ini))\b"
)
URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+|\bwww\.\S+")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
# "README.md, 'Reliability'", README.md ("Environment variables"), docs/nginx.md, "Buffering".
SECTION_REF = re.compile(r"([\w./-]+\.md)[`]?(?:,\s*|\s+\()[\"'“‘]([^\"'”’]+)[\"'”’]")
# The template's own vocabulary: its benchmark, its peers and its repository. A baked comment says why and links
# Heroku's or the library's documentation; measured figures live in docs/ with the command that produced them.
INTERNAL_WORDS = [
    r"\bbenchmark",  # benchmarks/, its runs and its views (/bench/db/)
    r"\bpeer \d",  # the benchmark's names for the other starting points ("peer 1")
    r"getting-started's",  # heroku/python-getting-started as the benchmark's yardstick (a link to it is fine)
    r"\bour (?:runs?|measurements?|tests?)\b",
    r"\bthe template's (?:README|tests?|repository|benchmarks?|runs?)\b",  # not in a bake
    r"\btemplate repository\b",
    r"--quick\b",  # benchmarks/run.py's option
    r"\bmeasured\b",  # a figure belongs in docs/ with the command that produced it, not in a comment
    r"\bwas not faster\b",
]


def baked_files(project):
    for path in sorted(project.rglob("*")):
        if ".git" in path.parts or "__pycache__" in path.parts or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES or path.name == "Procfile" or path.parent.name == "bin":
            yield path


def slugify(heading):
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def headings(markdown):
    return [line.lstrip("#").strip() for line in markdown.splitlines() if re.match(r"#{1,6} ", line)]


def exists(project, source, name):
    """A named path is in the bake relative to its root, to the naming file, or as a Django template name."""
    candidates = [project / name, source.parent / name]
    candidates += [templates / name for templates in project.glob("*/templates")]
    return any(candidate.exists() for candidate in candidates)


def allowed(name):
    return any(re.match(pattern, name) or re.search("(^|/)" + pattern, name) for pattern in NOT_IN_THE_BAKE)


def dangling_references(project):
    problems = []
    for path in baked_files(project):
        text = path.read_text()
        where = path.relative_to(project)
        without_urls = URL.sub(" ", text)
        for name in sorted(set(PATH.findall(without_urls))):
            if not allowed(name) and not exists(project, path, name):
                problems.append(f"{where}: names {name}, which this bake does not have")
        if path.suffix == ".md":
            for target in MD_LINK.findall(text):
                if re.match(r"[a-z]+:", target):
                    continue
                file, _, anchor = target.partition("#")
                linked = (path.parent / file) if file else path
                if not linked.exists():
                    problems.append(f"{where}: links {target}, which this bake does not have")
                elif anchor and linked.suffix == ".md":
                    if anchor not in {slugify(heading) for heading in headings(linked.read_text())}:
                        problems.append(f"{where}: links {target}, a section {linked.name} does not have")
        for file, section in SECTION_REF.findall(text):
            candidates = [project / file, path.parent / file]
            found = next((candidate for candidate in candidates if candidate.exists()), None)
            if found is None:
                problems.append(f"{where}: refers to {file}, which this bake does not have")
            elif not any(heading.lower().startswith(section.lower()) for heading in headings(found.read_text())):
                problems.append(f'{where}: refers to {file}, "{section}", a section it does not have')
    return problems


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answers_id)
def test_every_path_link_and_section_a_bake_names_is_in_it(bake_once, answers):
    project = bake_once(**answers)
    problems = dangling_references(project)
    assert not problems, "\n".join(problems)


def comments(path):
    """The comments of a baked code file (and a Python file's docstrings), with their line numbers."""
    text = path.read_text()
    if path.suffix == ".py" or path.parent.name == "bin" and text.startswith("#!/usr/bin/env python"):
        previous = tokenize.NEWLINE
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                yield token.start[0], token.string
            elif token.type == tokenize.STRING and previous in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                yield token.start[0], token.string
            if token.type not in (tokenize.NL, tokenize.COMMENT):
                previous = token.type
        return
    marker = ";" if path.suffix == ".ini" else "#"
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith(marker) or stripped.startswith("#"):
            yield number, stripped
        elif " #" in line and path.suffix != ".erb":  # a trailing comment (an .erb line's # can be nginx's)
            yield number, line[line.index(" #") :]


def commented_files(project):
    for path in baked_files(project):
        if path.suffix in COMMENTED_SUFFIXES or (path.parent.name == "bin" and not path.suffix):
            yield path


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answers_id)
def test_baked_comments_use_no_word_of_the_templates_benchmark(bake_once, answers):
    project = bake_once(**answers)
    problems, checked = [], 0
    for path in commented_files(project):
        for number, comment in comments(path):
            checked += 1
            for word in INTERNAL_WORDS:
                if re.search(word, comment, re.I):
                    problems.append(f"{path.relative_to(project)}:{number}: {word!r} in {comment.strip()[:100]!r}")
    assert checked > 100, f"only {checked} comments found: this test would check nothing"
    assert not problems, "\n".join(problems)


def test_the_checks_find_what_they_look_for(tmp_path):
    """Each pattern catches the mention it exists for, in a tiny fake bake."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/a.md").write_text("# A\n\n## Present\n")
    (tmp_path / "settings.py").write_text(
        "# see core/checks.py and docs/a.md, 'Missing'; docs/a.md, \"Present\" is fine; .dyno/web.1/x.ini too\n"
        "# https://example.com/gone/file.py is a URL\n"
    )
    (tmp_path / "README.md").write_text("[ok](docs/a.md#present) [bad](docs/a.md#absent) [gone](docs/b.md)\n")
    problems = dangling_references(tmp_path)
    assert problems == [
        "README.md: names docs/b.md, which this bake does not have",
        "README.md: links docs/a.md#absent, a section a.md does not have",
        "README.md: links docs/b.md, which this bake does not have",
        "settings.py: names core/checks.py, which this bake does not have",
        'settings.py: refers to docs/a.md, "Missing", a section it does not have',
    ], problems
    assert [number for number, _ in comments(tmp_path / "settings.py")] == [1, 2]
