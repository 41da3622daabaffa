"""The template's files (heroku_runtime/, bin/, config/) import nothing from the owner's: neither the project
package (settings, urls, their helper modules) nor example/. They get what they need from Django's settings,
so that an owner can edit or delete their files and a template update can replace its own without either
breaking the other. The one name the server configs give the project package is the WSGI callable's
("<package>.wsgi:application"), as a string, which is how every WSGI server is pointed at an application."""

import ast
import re
import shutil

import pytest

from conftest import MATRIX, OPTION_BAKES, answers_id

TEMPLATE_DIRS = ("heroku_runtime", "bin", "config")
ANSWER_SETS = MATRIX + OPTION_BAKES + [{"package_manager": "uv"}]


def python_files(project):
    for directory in TEMPLATE_DIRS:
        for path in sorted((project / directory).rglob("*")):
            if path.suffix == ".py" or (path.is_file() and path.read_bytes().startswith(b"#!/usr/bin/env python")):
                yield path


def imported_modules(path):
    """Every absolute module name `path` imports, at any depth of its code (functions included)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def owners_imports(project):
    owners = {project.name, "example"}  # the project package is named as the project's folder
    found = []
    for path in python_files(project):
        found += [
            f"{path.relative_to(project)} imports {name}"
            for name in imported_modules(path)
            if name.split(".")[0] in owners
        ]
    return found


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answers_id)
def test_the_templates_files_import_nothing_of_the_owners(bake_once, answers):
    project = bake_once(**answers)
    assert (project / project.name / "settings.py").is_file()
    checked = list(python_files(project))
    # The walk reaches each part: a broken glob would check nothing and pass. (A uWSGI bake's config/ has
    # no Python: uwsgi.ini.)
    parts = {"heroku_runtime", "bin"} | ({"config"} if answers.get("wsgi_server") != "uwsgi" else set())
    assert {path.relative_to(project).parts[0] for path in checked} == parts
    assert (project / "bin" / "dyno") in checked
    assert owners_imports(project) == []


def test_an_import_of_the_owners_is_found(bake_once, tmp_path):
    """The check above on a copy with one such import per kind: each is reported."""
    source = bake_once()
    project = tmp_path / source.name
    shutil.copytree(source, project, symlinks=True)
    with open(project / "heroku_runtime" / "checks.py", "a") as checks:
        checks.write(f"\n\ndef late():\n    from {source.name}.env import IS_HEROKU_APP\n\n    return IS_HEROKU_APP\n")
    with open(project / "bin" / "dynolib" / "nginx.py", "a") as nginx:
        nginx.write("\nimport example.views\n")
    assert owners_imports(project) == [
        f"heroku_runtime/checks.py imports {source.name}.env",
        "bin/dynolib/nginx.py imports example.views",
    ]


WHOSE = re.compile(r"^- (The template's|Yours|Both)[^:]*: (.*?)(?=^- |\Z)", re.MULTILINE | re.DOTALL)
NOT_LISTED = {".cruft.json"}  # cruft's own record, written by cruft create


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=answers_id)
def test_the_docs_say_whose_each_file_is(bake_once, answers):
    """docs/files.md, linked from the README: each file it names is in the bake, each top-level entry of the
    bake is in one list, and the directories whose imports are checked above are the template's."""
    project = bake_once(**answers)
    assert "(docs/files.md)" in (project / "README.md").read_text()
    section = (project / "docs" / "files.md").read_text()
    lists = {owner: re.findall(r"`([^`]+)`", text) for owner, text in WHOSE.findall(section)}
    assert set(lists) == {"The template's", "Yours", "Both"}, section
    package = project / project.name
    named = {}
    for owner, names in lists.items():
        for name in names:
            path = project / name if (project / name).exists() else package / name
            assert path.exists(), f"{owner} list names {name}, which the bake lacks"
            assert path not in named, f"{name} is in two lists"
            named[path] = owner
    top = {path for path in project.iterdir() if path.name not in NOT_LISTED and path != package}
    assert top - set(named) == set(), "not in any list"
    assert set(package.iterdir()) - {package / "__init__.py"} - set(named) == set(), "not in any list"
    for directory in TEMPLATE_DIRS:
        assert named[project / directory] == "The template's"
