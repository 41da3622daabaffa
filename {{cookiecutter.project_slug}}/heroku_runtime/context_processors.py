"""Values every template gets (settings.TEMPLATES lists this module)."""

import functools
import importlib.metadata
import json

from django.db import connection

from heroku_runtime.pgbouncer import through_pgbouncer

# The name given when the project was baked; tojson keeps any quote or backslash in it as data.
PROJECT_NAME = json.loads(r'''{{ cookiecutter.project_name | tojson }}''')
# The WSGI servers the Procfile starts; each listens only on nginx's socket (config/), so nginx is in front.
BEHIND_NGINX = {"gunicorn": "gunicorn", "uWSGI": "uWSGI", "waitress": "waitress"}


def project(request):
    return {"project_name": PROJECT_NAME, "serving_stack": serving_stack(request)}


def serving_stack(request):
    """What answered this request, outside in: "nginx → gunicorn 27.0.1 → PgBouncer → PostgreSQL" on a dyno
    (or bin/dyno), "runserver → SQLite" with `manage.py runserver` and no DATABASE_URL."""
    software = request.META.get("SERVER_SOFTWARE") or ""
    if "uwsgi.version" in request.META:  # uWSGI names itself only there
        server = "uWSGI"
    elif "waitress.client_disconnected" in request.META:  # config/serve_waitress.py sends no name (ident)
        server = "waitress"
    else:
        server = next((name for name in BEHIND_NGINX if software.startswith(name)), None)
    if server:
        parts = ["nginx", f"{server} {_version(BEHIND_NGINX[server])}".strip()]
    elif software.startswith("WSGIServer/"):  # Django's runserver
        parts = ["runserver"]
    else:
        parts = [software or "a WSGI server"]
    if connection.vendor == "postgresql":
        parts += ["PgBouncer", "PostgreSQL"] if through_pgbouncer(connection) else ["PostgreSQL"]
    else:
        parts.append({"sqlite": "SQLite"}.get(connection.vendor, connection.vendor))
    return " → ".join(parts)


@functools.cache
def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""
