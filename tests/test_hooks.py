"""Bad and awkward answers: each one is refused before anything is written, or baked into files that still work.

Refused by the pre-generation hook: FailedHookException, a message on stderr that names the answer, says what is
allowed and gives an example ("e.g."), and no project directory left behind. Refused by cookiecutter itself,
before the hook runs: its own exception and no project directory. Baked: app.json parses and passes both
schemas, every .py file parses, the Procfile has one "name: command" line per process, and the answers come
back unchanged in app.json and .cookiecutter.json.

Cookiecutter renders answers given as extra_context (or `cookiecutter . key=value --no-input`, or a user
config's default_context) as Jinja before any hook sees them, in an unsandboxed environment: that is
cookiecutter's behaviour, shown by the tests below; answers typed at the prompt or replayed are not rendered.
Past that point, the hooks and templates treat answers as data.
"""

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import jsonschema
import pytest
from cookiecutter.exceptions import FailedHookException, OutputDirExistsException, UndefinedVariableInTemplate
from cookiecutter.generate import generate_context
from cookiecutter.main import cookiecutter
from cookiecutter.prompt import prompt_for_config
from cookiecutter.utils import create_env_with_context
from jinja2 import TemplateSyntaxError
from markupsafe import escape

from conftest import ROOT, SCHEMA_FILES

SCHEMAS = [json.loads(path.read_text()) for path in SCHEMA_FILES]
# The answers a bake with no extra context gets, with the `_` keys the hooks are rendered with: _jinja2_env_vars
# from cookiecutter.json, and _repo_dir, which cookiecutter adds.
DEFAULTS = {
    **prompt_for_config(generate_context(context_file=str(ROOT / "cookiecutter.json")), no_input=True),
    "_repo_dir": str(ROOT),
}


class Refused(NamedTuple):
    """The pre-generation hook stops the bake; its ERROR line names `key` and contains `example`."""

    key: str
    example: str


class RefusedByCookiecutter(NamedTuple):
    """Cookiecutter raises `exception`, with `text` (or one of a tuple of wordings) in its message, before our
    hook runs."""

    exception: type
    text: str | tuple


class Baked(NamedTuple):
    """The bake succeeds. `recorded`: answers as cookiecutter stores them, where they differ from those given;
    `name`: app.json's name when it is not project_name."""

    recorded: dict = {}
    name: str | None = None


# Whether cookiecutter.json makes the slug with cookiecutter's slugify filter (ASCII, never empty) instead of
# lower() and replace(): a few names then bake instead of being refused.
SLUGIFIED = "slugify" in json.loads((ROOT / "cookiecutter.json").read_text())["project_slug"]


def case(case_id, answers, outcome):
    return pytest.param(answers, outcome, id=case_id)


CASES = [
    # project_slug: the Python package, so an importable name that shadows nothing.
    case("slug-hyphen", {"project_slug": "my-app"}, Refused("project_slug", "e.g. my_app")),
    case("slug-space", {"project_slug": "my app"}, Refused("project_slug", "e.g. my_app")),
    case("slug-leading-digit", {"project_slug": "2shop"}, Refused("project_slug", "e.g. app_2shop")),
    case("slug-uppercase", {"project_slug": "MyApp"}, Refused("project_slug", "e.g. myapp")),
    case("slug-leading-underscore", {"project_slug": "_app"}, Refused("project_slug", "e.g. app")),
    case("slug-keyword-class", {"project_slug": "class"}, Refused("project_slug", "e.g. class_site")),
    case("slug-keyword-async", {"project_slug": "async"}, Refused("project_slug", "e.g. async_site")),
    case("slug-shadows-django", {"project_slug": "django"}, Refused("project_slug", "e.g. django_site")),
    case("slug-shadows-test", {"project_slug": "test"}, Refused("project_slug", "e.g. test_site")),
    case("slug-shadows-tests", {"project_slug": "tests"}, Refused("project_slug", "e.g. tests_site")),
    case("slug-shadows-stdlib-json", {"project_slug": "json"}, Refused("project_slug", "e.g. json_site")),
    case("slug-shadows-stdlib-email", {"project_slug": "email"}, Refused("project_slug", "e.g. email_site")),
    case("slug-shadows-example-app", {"project_slug": "example"}, Refused("project_slug", "e.g. example_site")),
    case(
        "slug-shadows-runtime-app",
        {"project_slug": "heroku_runtime"},
        Refused("project_slug", "e.g. heroku_runtime_site"),
    ),
    case("slug-shadows-conftest", {"project_slug": "conftest"}, Refused("project_slug", "e.g. conftest_site")),
    case("slug-parent-directory", {"project_slug": "../escape"}, Refused("project_slug", "e.g. escape")),
    case("slug-31-characters", {"project_slug": "a" * 31}, Refused("project_slug", "e.g. " + "a" * 30)),
    case("slug-soft-keyword-match", {"project_slug": "match"}, Baked()),
    case("slug-with-digits", {"project_slug": "shop2"}, Baked()),
    # project_name: the slug is made from it unless given.
    case(
        "name-punctuation",
        {"project_name": "My App!"},
        Baked(recorded={"project_slug": "my_app"}) if SLUGIFIED else Refused("project_slug", 'project_name "My App!"'),
    ),
    case(
        "name-non-ascii",
        {"project_name": "Ünïcode Café"},
        Baked(recorded={"project_slug": "unicode_cafe"}, name="unicode_cafe")
        if SLUGIFIED
        else Refused("project_slug", "e.g. unicode_cafe"),
    ),
    case(
        "name-non-ascii-with-slug",
        {"project_name": "Ünïcode Café", "project_slug": "unicode_cafe"},
        Baked(name="unicode_cafe"),
    ),
    case("name-non-ascii-inside", {"project_name": "Café Ünïcode", "project_slug": "cafe"}, Baked()),
    case("name-emoji", {"project_name": "🍪 Cookie Shop", "project_slug": "cookie_shop"}, Baked(name="cookie_shop")),
    case("name-hyphens", {"project_name": "my-heroku-app"}, Baked(recorded={"project_slug": "my_heroku_app"})),
    case(
        "name-padded",
        {"project_name": "  Padded App  "},
        Baked(recorded={"project_slug": "padded_app"}, name="padded_app"),
    ),
    case("name-quotes", {"project_name": 'My "Quoted" App', "project_slug": "quoted"}, Baked()),
    case("name-apostrophe-backslash", {"project_name": "O'Brien's C:\\App\\", "project_slug": "obrien"}, Baked()),
    case("name-erb-marker", {"project_name": "<%= ENV['X'] %>", "project_slug": "erb"}, Baked(name="erb")),
    case("name-30-characters", {"project_name": "Acme Corporation Customer Port"}, Baked()),
    case(
        "name-31-characters",
        {"project_name": "Acme Corporation Customer Porta", "project_slug": "acme"},
        Refused("project_name", "e.g. Acme Corporation Customer"),
    ),
    case("name-newline", {"project_name": "My\nApp", "project_slug": "my_app"}, Refused("project_name", "e.g.")),
    case("name-whitespace-only", {"project_name": "   ", "project_slug": "my_app"}, Refused("project_name", "e.g.")),
    case("name-jinja-expression", {"project_name": "{{ 7*7 }}"}, Refused("project_slug", 'project_slug "49"')),
    # description: one line of any text, up to 200 characters.
    case("description-empty", {"description": ""}, Refused("description", "e.g.")),
    case("description-newline", {"description": "one\ntwo"}, Refused("description", "e.g.")),
    case("description-crlf", {"description": "one\r\ntwo"}, Refused("description", "e.g.")),
    case("description-tab", {"description": "one\ttwo"}, Refused("description", "e.g.")),
    case("description-nul", {"description": "one\x00two"}, Refused("description", "e.g.")),
    case("description-line-separator", {"description": "one\u2028two"}, Refused("description", "e.g.")),
    case("description-201-characters", {"description": "word " * 40 + "a"}, Refused("description", "keep it to 200")),
    case("description-quotes", {"description": "He said \"hi\" and 'bye' and '''then''' \"\"\"left\"\"\""}, Baked()),
    case("description-backslashes", {"description": "C:\\new\\table \\u0041 \\n ends with \\"}, Baked()),
    case("description-python-injection", {"description": '"""; import os; os.system("exit 3"); """'}, Baked()),
    case("description-html-erb", {"description": "<%= ENV['PORT'] %> </script><script>&amp;"}, Baked()),
    case("description-html", {"description": 'An <img src=x onerror="alert(1)"> <b>bold</b> app'}, Baked()),
    case("description-unicode", {"description": "Ünïcode — “smart quotes” 日本語 🍪"}, Baked()),
    case(
        "description-jinja-raw",
        {"description": "{% raw %}{{ kept }} {% if %}{% endraw %}"},
        Baked(recorded={"description": "{{ kept }} {% if %}"}),
    ),
    case("description-jinja-expression", {"description": "{{ 7*7 }}"}, Baked(recorded={"description": "49"})),
    case(
        "description-jinja-answer",
        {"description": "{{ cookiecutter.project_slug }}"},
        Baked(recorded={"description": "my_heroku_app"}),
    ),
    case(
        "description-open-braces", {"description": "{{"}, RefusedByCookiecutter(TemplateSyntaxError, "end of template")
    ),
    case(
        "description-open-block",
        {"description": "{% "},
        RefusedByCookiecutter(TemplateSyntaxError, "tag name expected"),
    ),
    # author_name and author_email: recorded in .cookiecutter.json.
    case("author-empty", {"author_name": ""}, Refused("author_name", "e.g.")),
    case("author-quotes-backslash", {"author_name": 'Jane "JD" O\'Doe \\'}, Baked()),
    case("email-no-at", {"author_email": "you"}, Refused("author_email", "e.g. you@example.com")),
    case("email-no-domain", {"author_email": "you@"}, Refused("author_email", "e.g. you@example.com")),
    case("email-no-user", {"author_email": "@example.com"}, Refused("author_email", "e.g. you@example.com")),
    case("email-space", {"author_email": "a b@example.com"}, Refused("author_email", "e.g. you@example.com")),
    case("email-no-dot", {"author_email": "you@example"}, Refused("author_email", "e.g. you@example.com")),
    case(
        "email-display-name", {"author_email": "Ada <ada@example.com>"}, Refused("author_email", "e.g. you@example.com")
    ),
    case("email-plus-subdomain", {"author_email": "a.b+c@mail.example.org"}, Baked()),
    case("email-apostrophe", {"author_email": "o'brien@example.com"}, Baked()),
    case(
        "email-double-quote", {"author_email": '"o brien"@example.com'}, Refused("author_email", "e.g. you@example.com")
    ),
    case("email-backslash", {"author_email": "a\\b@example.com"}, Refused("author_email", "e.g. you@example.com")),
    # Choices and the yes/no answer: cookiecutter checks extra_context against cookiecutter.json itself.
    case("wsgi-daphne", {"wsgi_server": "daphne"}, RefusedByCookiecutter(ValueError, "choices are ['gunicorn'")),
    case(
        "pool-statement",
        {"pgbouncer_pool_mode": "statement"},
        RefusedByCookiecutter(ValueError, "statement provided for choice variable pgbouncer_pool_mode"),
    ),
    case("wsgi-as-list", {"wsgi_server": ["uwsgi"]}, Baked(recorded={"wsgi_server": "uwsgi"})),
    case(
        "worker-maybe",
        {"use_worker": "maybe"},
        RefusedByCookiecutter(ValueError, "could not be converted to a boolean"),
    ),
    case("worker-empty", {"use_worker": ""}, RefusedByCookiecutter(ValueError, "could not be converted to a boolean")),
    case("worker-no", {"use_worker": "no"}, Baked(recorded={"use_worker": False})),
    case("worker-yes", {"use_worker": "yes"}, Baked(recorded={"use_worker": True})),
    # Not a string, so cookiecutter passes it on (as "1") and the hook refuses it.
    case("worker-number", {"use_worker": 1}, Refused("use_worker", "e.g. use_worker=true")),
    case("worker-null", {"use_worker": None}, Refused("use_worker", "e.g. use_worker=true")),
    # Empty names: the project directory would be the output directory itself, which exists.
    case("slug-empty", {"project_slug": ""}, RefusedByCookiecutter(OutputDirExistsException, "already exists")),
    case(
        "name-empty",
        {"project_name": ""},
        Refused("project_name", "e.g. My Heroku App")
        if SLUGIFIED
        else RefusedByCookiecutter(OutputDirExistsException, "already exists"),
    ),
    case(
        "name-dot",
        {"project_name": "."},
        Refused("project_name", "e.g. project_slug=my_app")
        if SLUGIFIED
        else RefusedByCookiecutter(OutputDirExistsException, "already exists"),
    ),
    # No ASCII letter or digit to make a slug from: refused, not silently baked under a name nobody chose.
    case("name-emoji-only", {"project_name": "🚀🚀🚀"}, Refused("project_name", "e.g. project_slug=my_app")),
    case("name-emoji-only-with-slug", {"project_name": "🚀🚀🚀", "project_slug": "rockets"}, Baked(name="rockets")),
    # Python 3.11 says "embedded null byte", 3.13 "embedded null character in path"
    case("slug-nul", {"project_slug": "a\x00b"}, RefusedByCookiecutter(ValueError, ("null byte", "null character"))),
    case(
        "name-undefined-variable",
        {"project_name": "{{ cookiecutter.nope }}"},
        RefusedByCookiecutter(UndefinedVariableInTemplate, "Unable to render variable 'project_name'"),
    ),
]


def leftovers(output_root):
    """Whatever a bake left under pytest-cookies' output root, apart from the empty bakeNN folders it makes."""
    return sorted(
        str(path.relative_to(output_root))
        for path in output_root.rglob("*")
        if not (path.parent == output_root and re.fullmatch(r"bake\d+", path.name) and not any(path.iterdir()))
    )


def error_line(capfd, key):
    """The hook's ERROR line about `key`, from the subprocess's stderr."""
    err = capfd.readouterr().err
    lines = [line for line in err.split("\n") if line.startswith(f"ERROR: {key} ")]
    assert lines, f"no ERROR line about {key} in:\n{err}"
    return lines[0]


def parse_procfile(path):
    text = path.read_text()
    assert text.endswith("\n") and not text.endswith("\n\n"), repr(text)
    processes = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z][a-z0-9_-]*): (\S.*)", line)
        assert match, f"not a Procfile line: {line!r}"
        assert match[1] not in processes, f"{match[1]} defined twice"
        processes[match[1]] = match[2]
    return processes


def check_baked(project, answers, outcome):
    recorded = json.loads((project / ".cookiecutter.json").read_text())
    expected = {**answers, **outcome.recorded}
    assert {key: recorded[key] for key in expected} == expected
    assert project.name == recorded["project_slug"]

    app = json.loads((project / "app.json").read_text())
    for schema in SCHEMAS:
        jsonschema.validate(app, schema)
    assert app["name"] == (outcome.name or recorded["project_name"])
    assert app["description"] == recorded["description"]

    for path in project.rglob("*.py"):
        ast.parse(path.read_text(), filename=str(path))
    expected_processes = {"release", "web"} | ({"worker"} if recorded["use_worker"] else set())
    assert set(parse_procfile(project / "Procfile")) == expected_processes
    readme = project / "README.md"
    if readme.exists():
        # One line each, so the title stays one heading and the description one paragraph; HTML-escaped, so
        # Markdown shows the text the owner typed rather than rendering it as markup.
        lines = readme.read_text().splitlines()
        assert lines[0] == f"# {escape(recorded['project_name'])}" and escape(recorded["description"]) in lines
        assert "<" not in lines[0] + lines[2] and ">" not in lines[0] + lines[2]
    # The page title is the project's name, whatever quotes or backslashes it holds.
    source = (project / recorded["project_slug"] / "settings.py").read_text()
    title = re.search(r"json\.loads\(r'''(.*)'''\)", source)
    assert json.loads(title[1]) == recorded["project_name"]
    # No answer reaches the file that nginx's buildpack renders with ERB.
    template_erb = ROOT / "{{cookiecutter.project_slug}}" / "config" / "nginx.conf.erb"
    assert (project / "config" / "nginx.conf.erb").read_bytes() == template_erb.read_bytes()


@pytest.mark.parametrize(("answers", "outcome"), CASES)
def test_awkward_answer(cookies, tmp_path, capfd, answers, outcome):
    result = cookies.bake(extra_context=answers)
    if isinstance(outcome, Baked):
        assert result.exception is None, f"{result.exception}\n{capfd.readouterr().err}"
        check_baked(result.project_path, answers, outcome)
        return

    assert leftovers(tmp_path / "cookies") == []
    if isinstance(outcome, RefusedByCookiecutter):
        assert isinstance(result.exception, outcome.exception), repr(result.exception)
        wordings = outcome.text if isinstance(outcome.text, tuple) else (outcome.text,)
        assert any(wording in str(result.exception) for wording in wordings), result.exception
        return

    assert isinstance(result.exception, FailedHookException), repr(result.exception)
    line = error_line(capfd, outcome.key)
    assert "e.g. " in line and outcome.example in line, line
    given = answers.get(outcome.key)
    if isinstance(given, str) and given.isprintable() and "{" not in given:
        assert json.dumps(given, ensure_ascii=False) in line, line


def test_table_covers_enough_answers():
    assert len(CASES) >= 25
    assert {type(param.values[1]) for param in CASES} == {Refused, RefusedByCookiecutter, Baked}


def test_absolute_slug_is_refused_and_removed(cookies, tmp_path, capfd):
    outside = tmp_path / "outside"
    result = cookies.bake(extra_context={"project_slug": str(outside)})
    assert isinstance(result.exception, FailedHookException)
    assert "e.g. " in error_line(capfd, "project_slug")
    assert not outside.exists()
    assert leftovers(tmp_path / "cookies") == []


def test_slug_with_a_slash_is_refused(cookies, capfd):
    result = cookies.bake(extra_context={"project_slug": "a/b"})
    assert isinstance(result.exception, FailedHookException)
    assert "e.g. a_b" in error_line(capfd, "project_slug")


def test_slug_with_a_slash_leaves_no_file(cookies, tmp_path):
    """Cookiecutter creates bakeNN/a/b with its parents before the pre-generation hook runs and removes only
    bakeNN/a/b when the hook fails: an empty bakeNN/a stays, which no hook can remove (cookiecutter's own
    clean-up would then fail on the missing b). No file is written."""
    cookies.bake(extra_context={"project_slug": "a/b"})
    output = tmp_path / "cookies"
    assert [path for path in output.rglob("*") if not path.is_dir()] == []
    assert [path.relative_to(output).as_posix() for path in output.rglob("*")] in ([], ["bake00", "bake00/a"])


def test_cookiecutter_runs_jinja_in_extra_context(cookies, tmp_path, capfd):
    """Outside our hooks: cookiecutter renders extra_context with an unsandboxed Jinja environment, so an
    answer can reach `os` and run a command before any hook sees it. The hook then gets the rendered text."""
    marker = tmp_path / "pwned2"
    payload = f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}"
    result = cookies.bake(extra_context={"description": payload})
    assert marker.exists(), "cookiecutter no longer runs Jinja in answers: update the docs and this test"
    # `touch` printed nothing, so the description the hook sees is empty.
    assert isinstance(result.exception, FailedHookException)
    assert 'description "" is empty' in error_line(capfd, "description")
    assert leftovers(tmp_path / "cookies") == []


def replay_bake(tmp_path, answers):
    """Bake from a replay file, the one channel that hands answers to the hooks exactly as written."""
    replay_file = tmp_path / "replay" / "answers.json"
    replay_file.parent.mkdir(exist_ok=True)
    replay_file.write_text(json.dumps({"cookiecutter": {**DEFAULTS, **answers}}))
    output = tmp_path / "replay-output"
    output.mkdir(exist_ok=True)
    config = {"cookiecutters_dir": str(tmp_path / "cookiecutters"), "replay_dir": str(tmp_path / "replay-dir")}
    project = cookiecutter(str(ROOT), replay=str(replay_file), output_dir=str(output), default_config=config)
    return output, project


@pytest.fixture
def marker_dir():
    """A short directory for files a payload would create: answers are limited to 200 characters."""
    directory = Path(tempfile.mkdtemp(prefix="hk"))
    yield directory
    shutil.rmtree(directory)


def test_replayed_payloads_stay_data(tmp_path, marker_dir):
    markers = [marker_dir / str(number) for number in range(4)]
    answers = {
        "project_name": "{{ 7*7 }} <%= x %> {%",
        "project_slug": "replayed",
        "description": f"{{{{ cycler.__init__.__globals__.os.popen('touch {markers[0]}') }}}}",
        "author_name": f'"""; import os; os.system("touch {markers[1]}"); """',
        "author_email": "you@example.com",
    }
    # Both kinds of triple quote (the hooks' raw strings end on them), each after a backslash that could escape it.
    answers["description"] += f"''' + __import__('os').system('touch {markers[2]}') + r'''\\"
    answers["author_name"] += f'\\""" + __import__("os").system("touch {markers[3]}") + """'
    _, project = replay_bake(tmp_path, answers)
    assert not [marker for marker in markers if marker.exists()]
    check_baked(Path(project), answers, Baked(recorded={}, name="replayed"))


CHOICE_KEYS = [
    key
    for key, value in json.loads((ROOT / "cookiecutter.json").read_text()).items()
    if not key.startswith("_") and isinstance(value, (list, bool))
]


@pytest.mark.parametrize("key", CHOICE_KEYS)
def test_unknown_choice_is_refused(cookies, tmp_path, capfd, key):
    """By cookiecutter when given as extra_context, by the hook when replayed; no directory left either way."""
    result = cookies.bake(extra_context={key: "bogus"})
    assert isinstance(result.exception, ValueError) and key in str(result.exception), repr(result.exception)
    assert leftovers(tmp_path / "cookies") == []
    with pytest.raises(FailedHookException):
        replay_bake(tmp_path, {key: "bogus"})
    line = error_line(capfd, key)
    assert '"bogus" is not one of the answers offered' in line and "e.g. " in line, line
    assert leftovers(tmp_path / "replay-output") == []


@pytest.mark.parametrize(
    ("answers", "key", "message"),
    [
        pytest.param({"wsgi_server": "daphne"}, "wsgi_server", "daphne is an ASGI server", id="wsgi-daphne"),
        pytest.param(
            {"pgbouncer_pool_mode": "statement"},
            "pgbouncer_pool_mode",
            "e.g. pgbouncer_pool_mode=",
            id="pool-statement",
        ),
        pytest.param({"use_worker": "maybe"}, "use_worker", "e.g. use_worker=true", id="worker-maybe"),
        pytest.param({"use_worker": "false"}, "use_worker", 'use_worker "false"', id="worker-string-false"),
    ],
)
def test_replayed_choices_reach_the_hook(tmp_path, capfd, answers, key, message):
    with pytest.raises(FailedHookException):
        replay_bake(tmp_path, answers)
    line = error_line(capfd, key)
    assert message in line and "e.g. " in line, line
    assert leftovers(tmp_path / "replay-output") == []


# Unit tests of the validators, on the hook rendered the way cookiecutter renders it.


def render_hook(name, answers, directory):
    """Render hooks/<name> with cookiecutter's own Jinja environment, write it to `directory`, import it."""
    context = {"cookiecutter": answers}
    source = create_env_with_context(context).from_string((ROOT / "hooks" / name).read_text()).render(**context)
    path = directory / name
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"rendered_{path.stem}_{id(answers)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hook(tmp_path_factory):
    return render_hook("pre_gen_project.py", DEFAULTS, tmp_path_factory.mktemp("hook"))


REFUSALS = [
    (
        "check_project_slug",
        {"project_slug": "my-app"},
        'project_slug "my-app" is not a Python package name',
        "e.g. my_app",
    ),
    ("check_project_slug", {"project_slug": "a/b"}, "lowercase ASCII letters, digits and underscores", "e.g. a_b"),
    ("check_project_slug", {"project_slug": "ünïcode_café"}, "not a Python package name", "e.g. unicode_cafe"),
    ("check_project_slug", {"project_slug": "9lives"}, "starting with a letter", "e.g. app_9lives"),
    ("check_project_slug", {"project_slug": "x" * 31}, "is 31 characters long; keep it to 30", "e.g. " + "x" * 30),
    ("check_project_slug", {"project_slug": "lambda"}, "is a Python keyword", "e.g. lambda_site"),
    ("check_project_slug", {"project_slug": "typing"}, "would shadow the module typing", "e.g. typing_site"),
    (
        "check_project_slug",
        {"project_slug": "whitenoise"},
        "would shadow the module whitenoise",
        "e.g. whitenoise_site",
    ),
    ("check_project_slug", {"project_slug": ["my_app"]}, "not a Python package name", "e.g. my_app"),
    ("check_project_slug", {"project_name": "Hi!", "project_slug": "hi!"}, 'made from project_name "Hi!"', "e.g. hi"),
    (
        "check_project_slug",
        {"project_name": "🚀🚀🚀", "project_slug": "name_your_package"},
        'project_name "🚀🚀🚀" has no ASCII letter or digit',
        "e.g. project_slug=my_app",
    ),
    ("check_texts", {"project_name": ""}, 'project_name "" is empty', "e.g. My Heroku App"),
    ("check_texts", {"project_name": None}, "project_name null is not text", "e.g. My Heroku App"),
    ("check_texts", {"description": "a\nb"}, 'description "a\\nb" contains a newline', "e.g. A Django app on Heroku"),
    ("check_texts", {"description": "a\x85b"}, "contains a newline", "e.g."),
    ("check_texts", {"description": "a\u2029b"}, "contains a newline", "e.g."),
    ("check_texts", {"description": "a\ud800b"}, "another control character", "e.g."),
    ("check_texts", {"author_name": "\t"}, "author_name", "e.g. Ada Lovelace"),
    (
        "check_texts",
        {"project_name": "Thirty One Characters Long Name"},
        "keep it to 30 (app.json's name limit)",
        "e.g. Thirty One Characters Long",
    ),
    ("check_texts", {"description": "x" * 201}, "is 201 characters long; keep it to 200", "e.g. " + "x" * 200),
    (
        "check_author_email",
        {"author_email": "you"},
        'author_email "you" is not an email address',
        "e.g. you@example.com",
    ),
    ("check_author_email", {"author_email": "you@@example.com"}, "use name@domain", "e.g. you@example.com"),
    ("check_author_email", {"author_email": "you@example.com\n"}, "not an email address", "e.g. you@example.com"),
    ("check_author_email", {"author_email": "'; DROP TABLE x; --@example.com"}, "not an email", "e.g."),
    ("check_author_email", {"author_email": None}, "it is not text", "e.g. you@example.com"),
    ("check_author_email", {"author_email": "you@"}, "it needs a name, an @ and a domain", "e.g. you@example.com"),
    ("check_author_email", {"author_email": "@example.com"}, "it needs a name, an @ and a domain", "e.g."),
    ("check_author_email", {"author_email": "you@@example.com"}, "more than one @", "e.g. you@example.com"),
    ("check_author_email", {"author_email": "a b@example.com"}, 'it contains " "', "e.g. you@example.com"),
    ("check_author_email", {"author_email": '"a b"@example.com'}, 'it contains "\\""', "e.g. you@example.com"),
    ("check_author_email", {"author_email": 'a"b@example.com'}, 'it contains "\\""', "e.g. you@example.com"),
    ("check_author_email", {"author_email": "a\\b@example.com"}, 'it contains "\\\\"', "e.g. you@example.com"),
    ("check_author_email", {"author_email": "a\tb@example.com"}, 'it contains "\\t"', "e.g. you@example.com"),
    ("check_author_email", {"author_email": "a\u2028b@example.com"}, "it contains", "e.g. you@example.com"),
    ("check_author_email", {"author_email": "Ada <ada@example.com>"}, 'it contains " "', "e.g."),
    ("check_author_email", {"author_email": "<ada@example.com>"}, 'it contains "<"', "e.g."),
    ("check_author_email", {"author_email": "a..b@example.com"}, "two dots in a row", "e.g. you@example.com"),
    ("check_author_email", {"author_email": ".a@example.com"}, "starts or ends with a dot", "e.g."),
    ("check_author_email", {"author_email": "a.@example.com"}, "starts or ends with a dot", "e.g."),
    ("check_author_email", {"author_email": "a;b@example.com"}, "a character that needs quoting", "e.g."),
    ("check_author_email", {"author_email": "a,b@example.com"}, "a character that needs quoting", "e.g."),
    ("check_author_email", {"author_email": "x" * 65 + "@example.com"}, "64 characters before the @", "e.g."),
    ("check_author_email", {"author_email": "you@example"}, "is not a host name such as example.com", "e.g."),
    ("check_author_email", {"author_email": "you@-example.com"}, "is not a host name", "e.g. you@example.com"),
    ("check_author_email", {"author_email": "you@example..com"}, "is not a host name", "e.g. you@example.com"),
    ("check_author_email", {"author_email": "you@example.c0m"}, "a top-level domain such as .com", "e.g."),
    ("check_author_email", {"author_email": "you@example.c"}, "a top-level domain such as .com", "e.g."),
    ("check_choices", {"wsgi_server": "daphne"}, "daphne is an ASGI server", "e.g. wsgi_server=gunicorn"),
    (
        "check_choices",
        {"wsgi_server": ["gunicorn"]},
        "use one of gunicorn, uwsgi, waitress",
        "e.g. wsgi_server=gunicorn",
    ),
    (
        "check_choices",
        {"pgbouncer_pool_mode": "statement"},
        "breaks Django's multi-statement transactions",
        "e.g. pgbouncer_pool_mode=transaction",
    ),
    (
        "check_choices",
        {"use_worker": "true"},
        'use_worker "true" is not one of the answers offered',
        "e.g. use_worker=true",
    ),
    ("check_choices", {"use_worker": 1}, "use one of true, false", "e.g. use_worker=true"),
    ("check_choices", {"cache": "memcache"}, "use one of none, redis, memcached", "e.g. cache=none"),
    ("check_choices", {"package_manager": "poetry"}, "use one of pip, uv", "e.g. package_manager=pip"),
    (
        "check_combinations",
        {"task_broker": "redis", "use_worker": False},
        'task_broker "redis" needs the worker',
        "e.g. use_worker=true task_broker=redis",
    ),
]
ACCEPTED = [
    ("check_project_slug", {"project_slug": "my_app"}),
    ("check_project_slug", {"project_slug": "shop2"}),
    ("check_project_slug", {"project_slug": "match"}),
    ("check_project_slug", {"project_slug": "x" * 30}),
    ("check_texts", {"project_name": 'My "Quoted" App', "description": "C:\\new <% erb %> {{ x }} {% y %}"}),
    ("check_texts", {"project_name": "Ünïcode Café", "author_name": "Zoë O'Brien 🍪"}),
    ("check_texts", {"project_name": "x" * 30, "description": "x" * 200}),
    ("check_author_email", {"author_email": "a.b+c@mail.example.org"}),
    ("check_author_email", {"author_email": "zoë@example.com"}),
    ("check_author_email", {"author_email": "o'brien@example.com"}),
    ("check_author_email", {"author_email": "O'Brien.Jr+news@mail.example.ie"}),
    ("check_author_email", {"author_email": "first.middle.last@example.com"}),
    ("check_author_email", {"author_email": "x_y-z@a.example.co.uk"}),
    ("check_author_email", {"author_email": "a!#$%&*/=?^`{|}~@example.com"}),
    ("check_author_email", {"author_email": "you@xn--bcher-kva.example"}),
    ("check_author_email", {"author_email": "you@bücher.example"}),
    ("check_author_email", {"author_email": "you@example.xn--p1ai"}),
    ("check_author_email", {"author_email": "x" * 64 + "@example.com"}),
    ("check_choices", {"wsgi_server": "waitress", "pgbouncer_pool_mode": "session", "use_worker": False}),
    ("check_combinations", {"task_broker": "redis", "use_worker": True}),
    ("check_combinations", {"task_broker": "orm", "use_worker": False}),
]


def test_slug_placeholder_is_cookiecutter_jsons_fallback(hook):
    """The hook refuses exactly what cookiecutter.json's project_slug falls back to."""
    template = json.loads((ROOT / "cookiecutter.json").read_text())["project_slug"]
    assert template.endswith(f"or '{hook.SLUG_PLACEHOLDER}' }}}}"), template


def test_hook_choices_are_what_cookiecutter_json_offers(hook):
    offered = json.loads((ROOT / "cookiecutter.json").read_text())
    expected = {
        key: tuple(value) if isinstance(value, list) else (True, False)
        for key, value in offered.items()
        if not key.startswith("_") and isinstance(value, (list, bool))
    }
    assert hook.CHOICES == expected


@pytest.mark.parametrize(("validator", "answers", "message", "example"), REFUSALS)
def test_validator_refuses(hook, validator, answers, message, example):
    with pytest.raises(ValueError) as error:
        getattr(hook, validator)({**hook.ANSWERS, **answers})
    assert message in str(error.value) and example in str(error.value), str(error.value)
    assert next(iter(answers)) in str(error.value)


@pytest.mark.parametrize(("validator", "answers"), ACCEPTED)
def test_validator_accepts(hook, validator, answers):
    getattr(hook, validator)({**hook.ANSWERS, **answers})


def test_defaults_pass_every_validator(hook):
    assert hook.ANSWERS["project_slug"] == "my_heroku_app"
    for validate in hook.VALIDATORS:
        validate(hook.ANSWERS)


def test_every_validator_is_documented_and_tested(hook):
    tested = {validator for validator, *_ in REFUSALS} & {validator for validator, _ in ACCEPTED}
    for validate in hook.VALIDATORS:
        assert "Valid:" in validate.__doc__ and "Invalid:" in validate.__doc__, validate.__name__
        assert validate.__name__ in tested, validate.__name__


NASTY = {
    "project_name": "'''\"\"\"\\",
    "description": '"""; import os; os.system(\'exit 3\'); """ \'\'\' \\',
    "author_name": "</script>\n\u2028\x00{{ x }}{% y %}<% z %>",
    "author_email": "\\",
}


@pytest.mark.parametrize("name", ["pre_gen_project.py", "post_gen_project.py"])
def test_rendered_hooks_read_answers_as_data(tmp_path, name):
    answers = {**DEFAULTS, **NASTY}
    module = render_hook(name, answers, tmp_path)
    assert module.ANSWERS == json.loads(json.dumps(answers))


def test_hook_reports_every_problem_and_exits_1(tmp_path):
    answers = {**DEFAULTS, "project_slug": "my-app", "description": "", "author_email": "you", "use_worker": "no"}
    render_hook("pre_gen_project.py", answers, tmp_path)
    result = subprocess.run([sys.executable, str(tmp_path / "pre_gen_project.py")], capture_output=True, text=True)
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert [line.split()[1] for line in errors] == ["project_slug", "description", "author_email", "use_worker"]
    assert all("e.g. " in line for line in errors), errors
    assert result.stdout == ""


# Every top-level module that some answer's requirements install, refused with the default answers (which
# install none of them): a later `cruft update` adding the option would otherwise break the package.
OPTION_MODULES = ["redis", "storages", "boto3", "botocore", "bmemcached", "django_bmemcached", "django_q", "uwsgi"]


@pytest.mark.parametrize("module", OPTION_MODULES)
def test_slug_shadowing_any_options_module_is_refused_whatever_the_answers(hook, module):
    answers = {**hook.ANSWERS, "project_slug": module, "cache": "none", "use_s3_media": False, "use_worker": False}
    with pytest.raises(ValueError, match=f"would shadow the module {module} .* e.g. {module}_site"):
        hook.check_project_slug(answers)


def test_every_module_the_bakes_install_is_refused(hook, baked_venv):
    """The shared environment holds every server's and every option's requirements (conftest.baked_venv)."""
    code = (
        "import importlib.metadata as m, json, re\n"
        "names = set()\n"
        "for dist in m.distributions():\n"
        "    for file in dist.files or []:\n"
        "        top = file.parts[0]\n"
        "        if top.endswith(('.dist-info', '.egg-info')) or top in ('..', 'bin', '__pycache__'):\n"
        "            continue\n"
        "        name = top.removesuffix('.py').split('.')[0] if top.endswith(('.py', '.so')) or '.' not in top "
        "else ''\n"
        "        if re.fullmatch(r'[a-z][a-z0-9_]*', name):\n"
        "            names.add(name)\n"
        "print(json.dumps(sorted(names)))\n"
    )
    result = subprocess.run([str(baked_venv / "bin/python"), "-c", code], capture_output=True, text=True, check=True)
    installed = set(json.loads(result.stdout))
    assert {"django", "redis", "storages", "bmemcached", "gunicorn", "waitress"} <= installed
    # Debian's setuptools adds a `debian` package to every venv made with its Python; Heroku's has none.
    not_refused = installed - hook.TAKEN_NAMES - set(sys.stdlib_module_names) - {"debian"}
    assert not not_refused, f"add to TAKEN_NAMES in hooks/pre_gen_project.py: {sorted(not_refused)}"


# Invisible and direction-changing characters (Unicode category Cf): each one refused in every one-line text.
HIDDEN = {
    "\u202a": "LEFT-TO-RIGHT EMBEDDING",
    "\u202b": "RIGHT-TO-LEFT EMBEDDING",
    "\u202c": "POP DIRECTIONAL FORMATTING",
    "\u202d": "LEFT-TO-RIGHT OVERRIDE",
    "\u202e": "RIGHT-TO-LEFT OVERRIDE",
    "\u2066": "LEFT-TO-RIGHT ISOLATE",
    "\u2067": "RIGHT-TO-LEFT ISOLATE",
    "\u2068": "FIRST STRONG ISOLATE",
    "\u2069": "POP DIRECTIONAL ISOLATE",
    "\u200b": "ZERO WIDTH SPACE",
    "\u200c": "ZERO WIDTH NON-JOINER",
    "\u200d": "ZERO WIDTH JOINER",
    "\u200e": "LEFT-TO-RIGHT MARK",
    "\u200f": "RIGHT-TO-LEFT MARK",
    "\u061c": "ARABIC LETTER MARK",
    "\u2060": "WORD JOINER",
    "\ufeff": "ZERO WIDTH NO-BREAK SPACE",
    "\u00ad": "SOFT HYPHEN",
    "\U000e0041": "TAG LATIN CAPITAL LETTER A",
}


@pytest.mark.parametrize("char", HIDDEN, ids=lambda char: f"U+{ord(char):04X}")
@pytest.mark.parametrize("key", ["project_name", "description", "author_name"])
def test_invisible_or_direction_changing_character_is_refused(hook, char, key):
    value = f"Shop{char}Admin"
    with pytest.raises(ValueError) as error:
        hook.check_texts({**hook.ANSWERS, key: value})
    message = str(error.value)
    assert f"U+{ord(char):04X} ({HIDDEN[char]})" in message and "e.g. ShopAdmin" in message, message
    assert message.startswith(key)


def test_bidi_override_is_refused_before_anything_is_written(cookies, tmp_path, capfd):
    result = cookies.bake(extra_context={"description": "Pay \u202eSU 001\u202c now"})
    assert isinstance(result.exception, FailedHookException)
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in error_line(capfd, "description")
    assert leftovers(tmp_path / "cookies") == []


@pytest.mark.parametrize(
    "text",
    [
        "Team \U0001f469\u200d\U0001f4bb",  # woman technologist: woman, joiner, laptop
        "Love \u2764\ufe0f\u200d\U0001f525",  # heart on fire: heart, presentation selector, joiner, fire
        "Crew \U0001f469\U0001f3fd\u200d\U0001f680",  # woman astronaut, medium skin tone
    ],
)
def test_zero_width_joiner_inside_an_emoji_is_allowed(hook, text):
    hook.check_texts({**hook.ANSWERS, "description": text, "author_name": text})


@pytest.mark.parametrize("text", ["a\u200db", "\u200d\U0001f4bb laptop", "\U0001f469\u200d", "\U0001f469\u200d x"])
def test_zero_width_joiner_outside_an_emoji_is_refused(hook, text):
    with pytest.raises(ValueError, match="U\\+200D"):
        hook.check_texts({**hook.ANSWERS, "description": text})


def test_long_name_without_spaces_is_cut_without_a_trailing_separator(hook):
    with pytest.raises(ValueError) as error:
        hook.check_texts({**hook.ANSWERS, "project_name": "A_very_long_project_name_over_thirty"})
    assert str(error.value).endswith("e.g. A_very_long_project_name_over"), str(error.value)
