"""Validate the answers before anything is written.

Each validator takes the answers, returns nothing when they are fine and raises ValueError with a message
that names the answer, says what is allowed and gives an example. Every failure is printed, then the hook
exits 1 and cookiecutter removes the project directory it created for the hook.
"""

import json
import keyword
import re
import sys
import textwrap
import unicodedata

# All answers arrive as one JSON literal: tojson escapes every quote inside a value (" as \", ' as \u0027), so
# no quote, backslash or newline in an answer can end the string early. Answers are data here, never code.
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

# The baked project's top-level names and the modules that any answer's requirements install, whatever this
# bake's answers: a package of the same name would shadow one of them, now or after a later `cruft update` that
# adds the option. The standard library's names are refused too (sys.stdlib_module_names leaves out test).
# tests/test_hooks.py checks this list against every module installed in the bakes' shared environment.
TAKEN_NAMES = set(
    """
    heroku_runtime example config bin docs static staticfiles media manage conftest test tests
    django asgiref sqlparse dj_database_url psycopg psycopg_binary whitenoise
    django_q picklefield
    gunicorn packaging uwsgi uwsgidecorators waitress
    redis async_timeout
    bmemcached django_bmemcached uhashring setup
    storages boto3 botocore s3transfer jmespath dateutil six urllib3
    pytest pytest_django py pluggy iniconfig pygments ruff pip setuptools pkg_resources typing_extensions
    """.split()
)
# cookiecutter.json's project_slug when project_name has no ASCII letter or digit to make it from ("🚀🚀🚀", "."):
# a placeholder the hook refuses, rather than a working name the owner never chose.
SLUG_PLACEHOLDER = "name_your_package"
# Characters that change the direction of the text around them or are invisible: in a name or description
# they make README.md and app.json read differently from what they are (Trojan Source, CVE-2021-42574).
# Unicode's format characters (category Cf) are all of these: U+200B..U+200F, U+202A..U+202E,
# U+2060..U+2069, U+FEFF, U+00AD, U+061C, tag characters. One exception: a zero-width joiner between two
# emoji builds one emoji (U+1F469 U+200D U+1F4BB, "woman technologist"), so it stays allowed there only.
ZWJ = "\u200d"
EMOJI_CATEGORIES = ("So", "Sk")  # pictographs; skin-tone modifiers are Sk
EMOJI_PRESENTATION = "\ufe0f"  # variation selector-16, may sit between an emoji and the joiner
# app.json's "name" allows 30 characters (SchemaStore's schema) and falls back to the slug when the project
# name does not start with an ASCII letter, so both stay within it.
NAME_LIMIT = 30
# One-line texts: an example, the longest allowed and why.
TEXTS = {
    "project_name": ("My Heroku App", NAME_LIMIT, " (app.json's name limit)"),
    "description": ("A Django app on Heroku", 200, ""),
    "author_name": ("Ada Lovelace", 200, ""),
}
# What cookiecutter.json offers; tests/test_hooks.py checks that the two agree.
CHOICES = {
    "wsgi_server": ("gunicorn", "uwsgi", "waitress"),
    "pgbouncer_pool_mode": ("transaction", "session"),
    "use_worker": (True, False),
    "task_broker": ("orm", "redis"),
    "cache": ("none", "redis", "memcached"),
    "use_s3_media": (True, False),
    "package_manager": ("pip", "uv"),
}
# RFC 5322's atext (any letter or digit, as RFC 6531 allows, and these symbols) and a host name's label.
EMAIL_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]"
EMAIL_LABEL = r"(?!-)[\w-]{1,63}(?<!-)"
HINTS = {
    "daphne": " (daphne is an ASGI server; this template serves WSGI behind nginx)",
    "statement": " (statement mode breaks Django's multi-statement transactions)",
}


def show(value):
    """The answer in JSON quotes, with anything unprintable escaped: "Café", "a\\nb", "a\\u2028b", null."""
    text = json.dumps(value, ensure_ascii=False)
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def ascii_slug(text):
    """A package name close to `text`: 'Ünïcode Café!' -> unicode_cafe, '2048 game' -> app_2048_game."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_") or "my_app"
    return ("app_" + slug if slug[0].isdigit() else slug)[:NAME_LIMIT].strip("_")


def check_project_slug(answers):
    """The slug names the Python package, so it must import cleanly and shadow nothing.

    Valid: my_app, shop2, heroku_site, match. Invalid: my-app, "my app", 2shop, MyApp, _app, a/b, ünïcode_café,
    class, django, test, json, example, a name over 30 characters, the placeholder a project_name without
    ASCII letters or digits ("🚀🚀🚀") leaves.
    """
    slug, name = answers["project_slug"], answers["project_name"]
    if slug == SLUG_PLACEHOLDER and isinstance(name, str) and name.strip():
        raise ValueError(
            f"project_name {show(name)} has no ASCII letter or digit to make the package name from; "
            f"give project_slug too, e.g. project_slug=my_app"
        )
    shown = show(slug)
    if slug == str(name).lower().strip().replace(" ", "_").replace("-", "_"):
        shown += f" (made from project_name {show(name)}; set project_slug to choose another)"
    if not isinstance(slug, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", slug):
        raise ValueError(
            f"project_slug {shown} is not a Python package name; use lowercase ASCII letters, digits and "
            f"underscores, starting with a letter, e.g. {ascii_slug(slug)}"
        )
    if len(slug) > NAME_LIMIT:
        raise ValueError(
            f"project_slug {shown} is {len(slug)} characters long; keep it to {NAME_LIMIT} "
            f"(app.json's name limit), e.g. {ascii_slug(slug)}"
        )
    if keyword.iskeyword(slug):
        raise ValueError(
            f"project_slug {shown} is a Python keyword, which cannot name a package; add a word, e.g. {slug}_site"
        )
    if slug in TAKEN_NAMES or slug in sys.stdlib_module_names:
        raise ValueError(
            f"project_slug {shown} would shadow the module {slug} that Python, Django or the baked project "
            f"imports; choose another name, e.g. {slug}_site"
        )


def hidden_characters(text):
    """The invisible or direction-changing characters in `text`, as "U+202E (RIGHT-TO-LEFT OVERRIDE)".

    Allowed: a joiner inside an emoji sequence ("\U0001f469\u200d\U0001f4bb"). Refused: "abc\u202edcba",
    "a\u200bb", "x\u2066y\u2069", "a\u200db" (a joiner between letters), "\u200d\U0001f4bb" (nothing before it).
    """
    found = []
    for index, char in enumerate(text):
        if unicodedata.category(char) != "Cf":
            continue
        if char == ZWJ:
            before = text[:index].rstrip(EMOJI_PRESENTATION)[-1:]
            after = text[index + 1 : index + 2]
            if before and after and all(unicodedata.category(c) in EMOJI_CATEGORIES for c in before + after):
                continue
        found.append(f"U+{ord(char):04X} ({unicodedata.name(char, 'unnamed format character')})")
    return found


def check_texts(answers):
    """Names and descriptions are one line of printable, visible text, short enough for app.json.

    Valid: My "Quoted" App, Ünïcode Café, C:\\new, <% erb %>, literal double braces, an emoji built with a
    zero-width joiner. Invalid: "", "   ", "two\\nlines", a tab, U+2028, U+202E, U+200B, a project_name over
    30 characters.
    """
    for key, (example, limit, reason) in TEXTS.items():
        value = answers[key]
        if not isinstance(value, str) or not value.strip():
            problem = "is empty" if isinstance(value, str) else "is not text"
            raise ValueError(f"{key} {show(value)} {problem}; give one line of text, e.g. {example}")
        # Cc: control characters (newline, tab, NUL), Zl/Zp: Unicode line breaks, Cs: lone surrogates.
        if any(unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cs") for char in value):
            raise ValueError(
                f"{key} {show(value)} contains a newline or another control character; "
                f"give one line of printable text, e.g. {example}"
            )
        hidden = hidden_characters(value)
        if hidden:
            visible = "".join(char for char in value if unicodedata.category(char) != "Cf")
            raise ValueError(
                f"{key} {show(value)} contains {', '.join(hidden)}, which is invisible or changes the direction "
                f"of the text around it, so README.md and app.json would read differently from what they are; "
                f"remove it, e.g. {visible.strip() or example}"
            )
        if len(value) > limit:
            # At a word boundary; a name without spaces is cut, never ending in a separator.
            shorter = textwrap.shorten(value, limit, placeholder="").rstrip(" _-.,;:") or value[:limit]
            raise ValueError(
                f"{key} {show(value)} is {len(value)} characters long; keep it to {limit}{reason}, e.g. {shorter}"
            )


def email_problem(email):
    """Why `email` is not an address in the common RFC 5322 form local@domain, or None when it is one.

    The local part is RFC 5322's dot-atom: letters (any script), digits and ! # $ % & ' * + / = ? ^ _ ` { | } ~ -,
    in runs joined by single dots. Its quoted form ("a b"@example.com) and display names are refused: a double
    quote, backslash, space or control character would have to be escaped wherever the address is written.
    """
    if not isinstance(email, str):
        return "it is not text"
    unsafe = [char for char in email if char in '"\\<>' or char.isspace() or not char.isprintable()]
    if unsafe:
        return f"it contains {show(unsafe[0])}, which no address of the form name@domain holds"
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        return "it needs a name, an @ and a domain"
    if "@" in local:
        return "it has more than one @"
    if len(local) > 64 or len(email) > 254:
        return "it is longer than an address may be (64 characters before the @, 254 in all)"
    if not re.fullmatch(rf"{EMAIL_ATOM}+(?:\.{EMAIL_ATOM}+)*", local):
        return (
            f"the part before the @, {show(local)}, starts or ends with a dot, has two dots in a row "
            "or a character that needs quoting"
        )
    labels = domain.split(".")
    if len(labels) < 2 or not all(re.fullmatch(EMAIL_LABEL, label) for label in labels):
        return f"the domain {show(domain)} is not a host name such as example.com"
    if not re.fullmatch(r"[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59}", labels[-1], re.IGNORECASE):
        return f"the domain {show(domain)} does not end in a top-level domain such as .com"
    return None


def check_author_email(answers):
    """Valid: you@example.com, a.b+c@mail.example.org, o'brien@example.com, zoë@example.com, x_y-z@a.example.co.uk,
    a!#$%&*/=?^`{|}~@example.com, you@xn--bcher-kva.example. Invalid: you, you@, @example.com, a b@c.d, you@example,
    Ada <ada@example.com>, "a b"@example.com, a\\b@example.com, a"b@example.com, a..b@example.com, .a@example.com,
    you@-example.com, you@@example.com, a;b@example.com.
    """
    problem = email_problem(answers["author_email"])
    if problem:
        raise ValueError(
            f"author_email {show(answers['author_email'])} is not an email address: {problem}; "
            "use name@domain, e.g. you@example.com"
        )


def check_choices(answers):
    """Choices must be ones cookiecutter.json offers. Cookiecutter itself refuses unknown ones given as
    extra_context or on the command line, before this hook runs; answers from a replay file arrive unchecked.

    Valid: wsgi_server=uwsgi, pgbouncer_pool_mode=session, use_worker=true. Invalid: wsgi_server=daphne,
    pgbouncer_pool_mode=statement, use_worker="maybe", use_worker="1".
    """
    for key, allowed in CHOICES.items():
        value = answers[key]
        # By type as well as value: 1 == True in Python, but "1" or 1 is not a yes/no answer.
        if not any(type(value) is type(option) and value == option for option in allowed):
            options = ", ".join(show(option).strip('"') for option in allowed)
            raise ValueError(
                f"{key} {show(value)} is not one of the answers offered{HINTS.get(str(value), '')}; "
                f"use one of {options}, e.g. {key}={options.split(', ')[0]}"
            )


def check_combinations(answers):
    """Answers that only mean something together with another one.

    Valid: use_worker=true task_broker=redis; use_worker=false task_broker=orm.
    Invalid: use_worker=false task_broker=redis (no worker would read the Redis queue).
    """
    if answers["task_broker"] == "redis" and answers["use_worker"] is False:
        raise ValueError(
            'task_broker "redis" needs the worker, but use_worker is false; '
            "keep the default broker or add the worker, e.g. use_worker=true task_broker=redis"
        )


VALIDATORS = (check_project_slug, check_texts, check_author_email, check_choices, check_combinations)


def main():
    errors = []
    for validate in VALIDATORS:
        try:
            validate(ANSWERS)
        except ValueError as error:
            errors.append(f"ERROR: {error}")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
