import multiprocessing

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class HerokuRuntimeConfig(AppConfig):
    """What runs the project on a dyno: /health/, the PgBouncer page and console, the 503 middleware, the
    connection budget, the worker's qcluster command and the database's statement timeout."""

    name = "heroku_runtime"

    def ready(self):
        from heroku_runtime import pgbouncer, statement_timeout

        # Every process that runs behind the dyno's PgBouncer (web server workers, the task worker)
        # passes here once at start; see shorten_login_retry for why.
        pgbouncer.shorten_login_retry()
        connection_created.connect(statement_timeout.no_timeout_outside_request_dynos)
        post_migrate.connect(statement_timeout.set_role_timeout_after_migrating, sender=self)

        from heroku_runtime import checks  # noqa: F401 - registers the system checks (email settings on a dyno)


def fork_for_multiprocessing_under_uwsgi():
    """Under uWSGI, sys.executable is the uwsgi binary. From Python 3.14 multiprocessing's default start
    method on Linux is forkserver, under which a queue's semaphore (django-q2 makes one when it loads)
    starts a resource tracker process with sys.executable; uWSGI refuses that command line ("unable to load
    configuration from from multiprocessing.resource_tracker import main",
    https://github.com/unbit/uwsgi/issues/2463) and the request fails. With the fork method, as before 3.14,
    a semaphore needs no tracker
    (https://docs.python.org/3/library/multiprocessing.html#contexts-and-start-methods)."""
    try:
        import uwsgi  # noqa: F401 - uWSGI gives this module to the code it runs; nothing else has it
    except ImportError:
        return
    multiprocessing.set_start_method("fork", force=True)


# At import, not in ready(): Django imports each app's module in INSTALLED_APPS' order before any ready(), and
# django-q2's (after this one) makes its queue as it is imported.
fork_for_multiprocessing_under_uwsgi()
