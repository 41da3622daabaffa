"""Does `dynos x (pool + reserve)` fit the Postgres plan's connection limit?

Each dyno's PgBouncer opens at most PGBOUNCER_DEFAULT_POOL_SIZE + PGBOUNCER_RESERVE_POOL_SIZE connections
to PostgreSQL. One-off dynos (`heroku run`) and the release phase connect directly, one connection each.
"""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

# Connection limits of Heroku Postgres plans: https://devcenter.heroku.com/articles/heroku-postgres-plans
PLAN_LIMITS = {
    "essential-0": 20,
    "essential-1": 20,
    "essential-2": 40,
    "standard-0": 120,
    "standard-2": 400,
    "premium-0": 120,
    "premium-2": 400,
}
# The release phase's migrate plus one `heroku run` console.
DIRECT_CONNECTIONS = 2


def procfile_formation(procfile=None):
    """One dyno of each Procfile process type that runs bin/start-pgbouncer: "web=1,worker=1", or "web=1"."""
    procfile = procfile or settings.BASE_DIR / "Procfile"
    lines = procfile.read_text().splitlines() if procfile.exists() else []
    entries = (line.partition(":") for line in lines)
    types = [name.strip() for name, _, command in entries if "bin/start-pgbouncer" in command]
    return ",".join(f"{name}=1" for name in types) or "web=1"


def parse_formation(text):
    """ "web=2,worker=1" -> {"web": 2, "worker": 1}."""
    formation = {}
    for part in filter(None, (item.strip() for item in text.split(","))):
        name, _, quantity = part.partition("=")
        if not name or not quantity.isdigit():
            raise CommandError(f"--dynos expects process=count pairs like web=2,worker=1, not {part!r}")
        formation[name] = int(quantity)
    return formation


class Command(BaseCommand):
    help = "Check that every dyno's PgBouncer pool fits the Postgres plan's connection limit."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dynos",
            default=os.environ.get("DYNO_FORMATION") or procfile_formation(),
            help="dynos that run PgBouncer, e.g. web=2,worker=1 (default: $DYNO_FORMATION, else one of each "
            "Procfile type that runs bin/start-pgbouncer)",
        )
        parser.add_argument("--pool", type=int, default=int(os.environ.get("PGBOUNCER_DEFAULT_POOL_SIZE", "1")))
        parser.add_argument("--reserve", type=int, default=int(os.environ.get("PGBOUNCER_RESERVE_POOL_SIZE", "1")))
        limit = parser.add_mutually_exclusive_group()
        limit.add_argument("--plan", choices=sorted(PLAN_LIMITS), help="a Heroku Postgres plan")
        limit.add_argument("--max-connections", type=int, help="the database's connection limit")

    def handle(self, *args, dynos, pool, reserve, plan, max_connections, **options):
        formation = parse_formation(dynos)
        if plan:
            max_connections, source = PLAN_LIMITS[plan], f"plan {plan}"
        elif max_connections is None:
            max_connections, source = self.ask_the_database(), "SHOW max_connections"
        else:
            source = "--max-connections"
        per_dyno = pool + reserve
        pooled = sum(formation.values()) * per_dyno
        total = pooled + DIRECT_CONNECTIONS
        for name, quantity in formation.items():
            self.stdout.write(f"{name}: {quantity} dyno(s) x ({pool} pool + {reserve} reserve) = {quantity * per_dyno}")
        self.stdout.write(f"direct (release phase, heroku run): {DIRECT_CONNECTIONS}")
        self.stdout.write(f"total: {total} of {max_connections} ({source})")
        if total > max_connections:
            dyno_count = max(sum(formation.values()), 1)
            fitting = (max_connections - DIRECT_CONNECTIONS) // dyno_count
            raise CommandError(
                f"does not fit: {total} > {max_connections}. With {dyno_count} dynos, keep pool + reserve at "
                f"{fitting} or less (e.g. PGBOUNCER_DEFAULT_POOL_SIZE={max(fitting - 1, 1)} "
                f"PGBOUNCER_RESERVE_POOL_SIZE=1), scale down, or move to a larger plan."
            )
        self.stdout.write(self.style.SUCCESS(f"fits, with {max_connections - total} connections to spare"))

    def ask_the_database(self):
        if connection.vendor != "postgresql":
            raise CommandError("not connected to PostgreSQL: give --plan or --max-connections")
        with connection.cursor() as cursor:
            cursor.execute("SHOW max_connections")
            return int(cursor.fetchone()[0])
