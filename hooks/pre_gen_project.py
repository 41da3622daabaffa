"""Validate the answers before anything is written.

Each validator takes the answers, returns nothing when they are fine and raises ValueError with a message
that names the answer, says what is allowed and gives an example. The first failure stops the bake, so
cookiecutter removes the half-made output directory.
"""

import json
import keyword
import re
import sys

# Answers arrive as JSON literals so that no quote, backslash or newline in them can end the string early.
ANSWERS = json.loads(r'''{{ cookiecutter | tojson }}''')

# Modules the baked project itself defines or imports: a package of the same name would shadow them.
TAKEN_NAMES = {
    "django", "test", "tests", "core", "config", "bin", "manage", "static", "staticfiles", "media",
    "django_q", "whitenoise", "dj_database_url", "psycopg", "psycopg_binary", "gunicorn", "uwsgi",
    "waitress", "storages", "boto3", "botocore", "redis", "pymemcache", "pytest", "pytest_django",
}
CHOICES = {
    "wsgi_server": ("gunicorn", "uwsgi", "waitress"),
    "pgbouncer_pool_mode": ("transaction", "session"),
}


def check_project_slug(answers):
    """The slug names the Python package, so it must import cleanly and shadow nothing.

    Valid: my_app, shop2, heroku_site. Invalid: my-app, 2shop, class, django, json, Café, "".
    """
    slug = answers["project_slug"]
    example = re.sub(r"[^a-z0-9_]+", "_", str(slug).lower()).strip("_") or "my_app"
    if example[0].isdigit():
        example = "app_" + example
    allowed = "use lowercase ASCII letters, digits and underscores, starting with a letter"
    if not isinstance(slug, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", slug):
        raise ValueError(f"project_slug {json.dumps(slug)} is not a valid Python package name; {allowed}, e.g. {example}")
    if len(slug) > 50:
        raise ValueError(f"project_slug {json.dumps(slug)} is longer than 50 characters; {allowed}, e.g. {slug[:30]}")
    if keyword.iskeyword(slug) or keyword.issoftkeyword(slug):
        raise ValueError(f"project_slug {json.dumps(slug)} is a Python keyword; {allowed}, e.g. {slug}_site")
    if slug in TAKEN_NAMES or slug in sys.stdlib_module_names:
        raise ValueError(
            f"project_slug {json.dumps(slug)} would shadow the module {slug!r} that Django or the baked project "
            f"imports; choose another name, e.g. {slug}_site"
        )


def check_one_line_texts(answers):
    """Names and descriptions go into app.json, the README and a Procfile-adjacent world of one-liners.

    Valid: My "Quoted" App, Ünïcode Café, a \\ backslash. Invalid: "", "   ", "two\\nlines", a tab character.
    """
    for key in ("project_name", "description", "author_name"):
        value = answers[key]
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{key} is empty; give one line of text, e.g. {key}=\"My Heroku App\"")
        if any(ord(char) < 32 or ord(char) == 127 for char in value):
            raise ValueError(
                f"{key} {json.dumps(value)} contains a newline or another control character; "
                f"give one line of printable text, e.g. {key}=\"My Heroku App\""
            )
        if len(value) > 200:
            raise ValueError(f"{key} is {len(value)} characters long; keep it under 200, e.g. a short sentence")


def check_author_email(answers):
    """Valid: you@example.com, a.b+c@mail.example.org. Invalid: you, you@, @example.com, a b@c.d."""
    email = answers["author_email"]
    if not isinstance(email, str) or not re.fullmatch(r"[^@\s\"'<>\\]+@[^@\s\"'<>\\]+\.[A-Za-z]{2,}", email):
        raise ValueError(f"author_email {json.dumps(email)} is not an email address; use the form you@example.com")


def check_choices(answers):
    """Choices edited into a replay file or passed by hand must still be ones the template knows.

    Valid: wsgi_server=uwsgi, use_worker=true. Invalid: wsgi_server=daphne, pgbouncer_pool_mode=statement.
    """
    for key, allowed in CHOICES.items():
        if answers[key] not in allowed:
            hint = ""
            if answers[key] == "statement":
                hint = " (statement mode breaks Django's multi-statement transactions)"
            raise ValueError(
                f"{key} {json.dumps(answers[key])} is not offered{hint}; choose one of {', '.join(allowed)}, "
                f"e.g. {key}={allowed[0]}"
            )
    if not isinstance(answers["use_worker"], bool):
        raise ValueError(f"use_worker {json.dumps(answers['use_worker'])} is not a yes/no answer; use true or false")


VALIDATORS = (check_project_slug, check_one_line_texts, check_author_email, check_choices)


def main():
    for validate in VALIDATORS:
        try:
            validate(ANSWERS)
        except ValueError as error:
            print(f"ERROR: {error}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
