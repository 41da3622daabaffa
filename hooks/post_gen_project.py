"""Remove what the answers don't need and print the next steps. Offline: no network, no subprocess."""

import json
import shutil
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
PACKAGE = ANSWERS["project_slug"]  # the settings package, where each option's settings module lives
# Each server's config, and the test that guards the config's use of the server's internals, if any.
SERVER_FILES = {
    "gunicorn": ["config/gunicorn.conf.py", "heroku_runtime/tests/test_overrides_gunicorn.py"],
    "uwsgi": ["config/uwsgi.ini"],
    "waitress": ["config/serve_waitress.py", "heroku_runtime/tests/test_overrides_waitress.py"],
}
# Each answer maps to the paths that exist only for the other choices. What the README says about one
# choice lives in its own docs/ file, kept or removed here with that choice's code.
UNNEEDED = {
    ("wsgi_server", server): [
        path for other, files in SERVER_FILES.items() if other != server for path in (*files, f"docs/{other}.md")
    ]
    for server in SERVER_FILES
}
UNNEEDED[("use_worker", False)] = [
    "example/tasks.py",
    "example/tests/test_tasks.py",
    "example/tests/test_broker_redis.py",
    f"{PACKAGE}/tests/test_broker_redis.py",
    "heroku_runtime/management/commands/qcluster.py",
    "heroku_runtime/tests/test_qcluster.py",
    "heroku_runtime/tests/test_overrides_django_q.py",
    "docs/worker.md",
    "docs/broker-orm.md",
    "docs/broker-redis.md",
    f"{PACKAGE}/worker.py",
    f"{PACKAGE}/broker_orm.py",
    f"{PACKAGE}/broker_redis.py",
]
UNNEEDED[("task_broker", "orm")] = [
    "example/tests/test_broker_redis.py",
    f"{PACKAGE}/tests/test_broker_redis.py",
    "docs/broker-redis.md",
    f"{PACKAGE}/broker_redis.py",
]
UNNEEDED[("task_broker", "redis")] = ["docs/broker-orm.md", f"{PACKAGE}/broker_orm.py"]
UNNEEDED[("cache", "none")] = [
    f"{PACKAGE}/tests/test_cache_redis.py",
    f"{PACKAGE}/tests/test_cache_memcached.py",
    "docs/cache-redis.md",
    "docs/cache-memcached.md",
    f"{PACKAGE}/cache_redis.py",
    f"{PACKAGE}/cache_memcached.py",
]
UNNEEDED[("cache", "redis")] = [
    f"{PACKAGE}/tests/test_cache_memcached.py",
    "docs/cache-memcached.md",
    f"{PACKAGE}/cache_memcached.py",
]
UNNEEDED[("cache", "memcached")] = [
    f"{PACKAGE}/tests/test_cache_redis.py",
    "docs/cache-redis.md",
    f"{PACKAGE}/cache_redis.py",
]
UNNEEDED[("use_s3_media", False)] = [
    f"{PACKAGE}/tests/test_media_storage.py",
    "docs/s3-media.md",
    f"{PACKAGE}/media_s3.py",
]
# One package-manager file, or Heroku's Python buildpack fails the build; uv.lock is only baked for uv.
UNNEEDED[("package_manager", "pip")] = [".github/workflows/ci-uv.yml", "docs/uv.md"]
UNNEEDED[("package_manager", "uv")] = ["requirements.txt", "requirements-dev.txt", "docs/pip.md"]
# Files another answer's variant replaces: the workflow is copied without rendering (GitHub's own expression
# syntax), so its variants cannot be chosen by an empty rendered file name.
REPLACED = {("package_manager", "uv"): {".github/workflows/ci-uv.yml": ".github/workflows/ci.yml"}}
INSTALL = {
    "pip": "python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt",
    "uv": "uv sync             # uv, and UV_PYTHON for Debian's Python: README.md, Run it locally",
}
RUN = {"pip": ".venv/bin/python", "uv": "uv run python"}


def remove(relative_path):
    path = Path(relative_path)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def main():
    for (key, value), paths in UNNEEDED.items():
        if ANSWERS[key] == value:
            for path in paths:
                remove(path)
    for (key, value), moves in REPLACED.items():
        if ANSWERS[key] == value:
            for source, target in moves.items():
                Path(source).replace(target)
    slug, tool = ANSWERS["project_slug"], ANSWERS["package_manager"]
    print(
        f"\nBaked {slug} with {ANSWERS['wsgi_server']} behind nginx and PgBouncer "
        f"({ANSWERS['pgbouncer_pool_mode']} pool mode).\n\n"
        f"Next steps:\n"
        f"  cd {slug}\n"
        f"  {INSTALL[tool]}\n"
        f"  {RUN[tool]} manage.py migrate && {RUN[tool]} manage.py runserver\n"
        f"  bin/dyno web        # the Procfile's web process with nginx and PgBouncer, as on a dyno\n"
        f"Deploy: see README.md (Deploy button, or heroku create + heroku buildpacks:add in order).\n"
    )


if __name__ == "__main__":
    main()
