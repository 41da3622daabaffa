from django.apps import AppConfig


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"

    def ready(self):
        # Every process that runs behind the dyno's PgBouncer (web server workers, the task worker)
        # passes here once at start; see shorten_login_retry for why.
        from core import pgbouncer

        pgbouncer.shorten_login_retry()

        from core import checks  # noqa: F401 - registers the system checks (email settings on a dyno)
