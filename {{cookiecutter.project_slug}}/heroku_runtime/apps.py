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
