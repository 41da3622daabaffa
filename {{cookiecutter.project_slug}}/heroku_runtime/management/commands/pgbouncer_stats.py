from django.core.management.base import BaseCommand, CommandError

from heroku_runtime import pgbouncer


class Command(BaseCommand):
    help = "Print PgBouncer's live SHOW STATS and SHOW POOLS from the admin console on this dyno."

    def handle(self, *args, **options):
        for what in pgbouncer.SHOW_COMMANDS:
            try:
                rows = pgbouncer.show(what)
            except pgbouncer.PgBouncerUnavailable as error:
                raise CommandError(str(error)) from error
            self.stdout.write(f"SHOW {what}")
            for row in rows:
                self.stdout.write("  " + " ".join(f"{column}={value}" for column, value in row.items()))
