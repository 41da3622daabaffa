"""The baked README's CLI deploy is app.json, for every answer.

app.json is read only when an app is created from it (the Deploy Button); a `git push` deploy gets what the
README's "Heroku CLI" commands and the "Set-up on Heroku" sections of the bake's docs/ files set. Parsed
with shlex, those commands must give what app.json gives: the stack, the buildpacks in order, the add-ons,
every config var with app.json's value (a generated secret and a required variable: set, to anything), and
the formation's quantities and sizes. Nothing more, nothing less.
"""

import json
import re
import shlex

import pytest
from test_readme import ALL_ANSWERS

from conftest import answers_id, bake


def bash_blocks(text):
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def commands(block):
    """The heroku commands of a bash block, as argument lists (continuation lines joined, comments dropped)."""
    joined = re.sub(r"\\\n", " ", block)
    found = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["heroku"]:
            found.append(words[1:])
    return found


def deploy_commands(project):
    readme = (project / "README.md").read_text()
    cli = readme.split("**Heroku CLI**", 1)[1]
    shown = commands(bash_blocks(cli)[0])
    for doc in sorted((project / "docs").glob("*.md")):
        text = doc.read_text()
        if "## Set-up on Heroku" in text:
            section = text.split("## Set-up on Heroku", 1)[1].split("\n## ", 1)[0]
            shown += [words for block in bash_blocks(section) for words in commands(block)]
    return shown


def what_they_set(shown):
    """{stack, buildpacks, addons, config, formation} from the commands, in app.json's terms."""
    result = {"stack": None, "buildpacks": [], "addons": set(), "config": {}, "formation": {}}
    for words in shown:
        command, arguments = words[0], words[1:]
        if command == "create":
            result["stack"] = arguments[arguments.index("--stack") + 1]
        elif command == "buildpacks:add":
            result["buildpacks"].append(arguments[0])
        elif command == "addons:create":
            result["addons"].add(arguments[0])
        elif command == "config:set":
            result["config"].update(argument.split("=", 1) for argument in arguments)
        elif command == "ps:scale":
            for argument in arguments:
                process_type, scale = argument.split("=", 1)
                quantity, _, size = scale.partition(":")
                result["formation"][process_type] = {"quantity": int(quantity), "size": size or None}
    return result


def differences(project):
    """What the CLI deploy of `project` sets differently from its app.json, as sentences."""
    app = json.loads((project / "app.json").read_text())
    shown = what_they_set(deploy_commands(project))
    found = []
    if shown["stack"] != app["stack"]:
        found.append(f"stack {shown['stack']}, app.json {app['stack']}")
    if shown["buildpacks"] != [buildpack["url"] for buildpack in app["buildpacks"]]:
        found.append(f"buildpacks {shown['buildpacks']}, app.json {app['buildpacks']}")
    plans = {addon["plan"] if isinstance(addon, dict) else addon for addon in app["addons"]}
    if shown["addons"] != plans:
        found.append(f"add-ons {sorted(shown['addons'])}, app.json {sorted(plans)}")
    # An optional entry with no value (the email server's) is one the Deploy Button also leaves unset.
    optional = {name for name, spec in app["env"].items() if spec.get("required") is False and "value" not in spec}
    for name in sorted((set(app["env"]) - optional) ^ (set(shown["config"]) - optional)):
        found.append(f"{name}: {'only in app.json' if name in app['env'] else 'not in app.json'}")
    for name, spec in app["env"].items():
        value = shown["config"].get(name)
        if name in shown["config"] and "value" in spec and value != spec["value"]:
            found.append(f"{name}={value}, app.json {spec['value']!r}")
        if name in shown["config"] and spec.get("generator") == "secret" and value != "$(openssl rand -hex 32)":
            found.append(f"{name}={value}: not a generated secret")
    for process_type in sorted(set(app["formation"]) | set(shown["formation"])):
        spec, scaled = app["formation"].get(process_type), shown["formation"].get(process_type)
        if not spec or not scaled or scaled["quantity"] != spec["quantity"] or scaled["size"] != spec["size"]:
            found.append(f"formation {process_type}: {scaled}, app.json {spec}")
    return found


@pytest.mark.parametrize("answers", ALL_ANSWERS, ids=answers_id)
def test_cli_deploy_is_app_json(cookies, answers):
    assert not differences(bake(cookies, **answers))


def test_a_difference_is_caught(cookies):
    """A config var left out, a value changed, a dyno of another size: each is named."""
    project = bake(cookies)
    readme = project / "README.md"
    text = readme.read_text()
    assert " PGBOUNCER_SERVER_IDLE_TIMEOUT=30" in text and "PGBOUNCER_DEFAULT_POOL_SIZE=5 " in text
    readme.write_text(
        text.replace(" PGBOUNCER_SERVER_IDLE_TIMEOUT=30", "")
        .replace("PGBOUNCER_DEFAULT_POOL_SIZE=5 ", "PGBOUNCER_DEFAULT_POOL_SIZE=4 ")
        .replace("web=1:basic", "web=1:standard-2x")
    )
    found = differences(project)
    assert "PGBOUNCER_SERVER_IDLE_TIMEOUT: only in app.json" in found
    assert "PGBOUNCER_DEFAULT_POOL_SIZE=4, app.json '5'" in found
    assert any(line.startswith("formation web: {'quantity': 1, 'size': 'standard-2x'}") for line in found), found


def test_a_scale_without_the_size_is_caught(cookies):
    """`ps:scale web=1` leaves the dyno at whatever size the app had: the size must be app.json's."""
    project = bake(cookies)
    readme = project / "README.md"
    text = readme.read_text()
    assert "web=1:basic" in text
    readme.write_text(text.replace("web=1:basic", "web=1"))
    assert "formation web: {'quantity': 1, 'size': None}, app.json {'quantity': 1, 'size': 'basic'}" in differences(
        project
    )
