"""Does the formation fit the Postgres plan's connection limit?

Each dyno's PgBouncer opens at most PGBOUNCER_DEFAULT_POOL_SIZE + PGBOUNCER_RESERVE_POOL_SIZE connections to
PostgreSQL, and no more than the dyno has Django connections in use at once: a PgBouncer client holds a
PostgreSQL connection only while it runs a transaction (transaction mode) or while it is open (session mode,
where Django closes its connection after each request). So a dyno counts min(pool + reserve, its clients).
One-off dynos (`heroku run`) and the release phase connect directly, one connection each.
"""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from heroku_runtime import pgbouncer

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


def database_clients(process_type, pool):
    """(Django connections of one dyno of this type that can be in use at once with PgBouncer's `pool`, why),
    or (None, why) when this command cannot know (a process type of your own: counted at pool + reserve)."""
    if process_type == "web":
{% if cookiecutter.wsgi_server == "waitress" %}
        threads = pgbouncer.waitress_threads(pool)
        return threads, f"waitress: {threads} threads (WAITRESS_THREADS, else the pool), a connection each"
{% else %}
        # Sync workers: one request, so one connection, at a time per process. Heroku's Python buildpack
        # sets WEB_CONCURRENCY on every dyno, one-off dynos too, and bin/dyno as it does.
        if not os.environ.get("WEB_CONCURRENCY"):
            raise CommandError(
                "WEB_CONCURRENCY is not set here: run this where a dyno's environment is, "
                "`heroku run python manage.py connection_budget ...` or `bin/dyno run python manage.py "
                "connection_budget ...`, or set WEB_CONCURRENCY to the web dyno's processes"
            )
        processes = int(os.environ["WEB_CONCURRENCY"])
        return processes, f"{{ cookiecutter.wsgi_server }}: WEB_CONCURRENCY {processes} processes, one request each"
{% endif %}
{% if cookiecutter.use_worker %}
    if process_type == "worker":
        workers = settings.Q_CLUSTER["workers"]
        # Besides the workers' tasks: the monitor saves results, the sentinel runs the scheduler (every 30 s),
        # and with the ORM broker the pusher fetches tasks from PostgreSQL; each is a process of its own.
        others = ["monitor", "scheduler"] + (["pusher"] if "orm" in settings.Q_CLUSTER else [])
        return workers + len(others), f"qcluster: Q_WORKERS {workers} + {', '.join(others)}"
{% endif %}
    return None, "not known to this command"


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


def per_dyno(name, pool, reserve):
    """(connections one dyno of this type can open, the clients behind it, why)."""
    clients, why = database_clients(name, pool)
    return (pool + reserve if clients is None else min(pool + reserve, clients)), clients, why


def pooled_connections(formation, pool, reserve):
    """PostgreSQL connections all the formation's PgBouncers can open with this pool and reserve."""
    return sum(quantity * per_dyno(name, pool, reserve)[0] for name, quantity in formation.items())


class Command(BaseCommand):
    help = "Check that every dyno's PgBouncer pool fits the Postgres plan's connection limit."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dynos",
            default=os.environ.get("DYNO_FORMATION") or procfile_formation(),
            help="dynos that run PgBouncer, e.g. web=2,worker=1 (default: $DYNO_FORMATION, else one of each "
            "Procfile type that runs bin/start-pgbouncer)",
        )
        parser.add_argument("--pool", type=int, default=pgbouncer.pool_size())
        parser.add_argument("--reserve", type=int, default=pgbouncer.reserve_pool_size())
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
        for name, quantity in formation.items():
            each, clients, why = per_dyno(name, pool, reserve)
            self.stdout.write(
                f"{name}: {quantity} dyno(s) x {each} = {quantity * each} "
                f"(pool {pool} + reserve {reserve}; clients at once: {clients if clients is not None else '?'}, {why})"
            )
        total = pooled_connections(formation, pool, reserve) + DIRECT_CONNECTIONS
        self.stdout.write(f"direct (release phase, heroku run): {DIRECT_CONNECTIONS}")
        self.stdout.write(f"total: {total} of {max_connections} ({source})")
        if total > max_connections:
            # Smaller pools, each with a reserve of 1 (none at 1 in all), counted as the dynos would run them.
            smaller = [(max(limit - 1, 1), limit - max(limit - 1, 1)) for limit in range(1, pool + reserve)]
            fitting = [
                pools
                for pools in smaller
                if pooled_connections(formation, *pools) + DIRECT_CONNECTIONS <= max_connections
            ]
            if fitting:
                advised_pool, advised_reserve = fitting[-1]
                advice = (
                    f"keep pool + reserve at {advised_pool + advised_reserve} or less (e.g. "
                    f"PGBOUNCER_DEFAULT_POOL_SIZE={advised_pool} PGBOUNCER_RESERVE_POOL_SIZE={advised_reserve}), "
                )
            else:
                advice = "no pool size fits: "
            raise CommandError(
                f"does not fit: {total} > {max_connections}. With {dynos}, {advice}scale down, or move to a "
                f"larger plan."
            )
        self.stdout.write(self.style.SUCCESS(f"fits, with {max_connections - total} connections to spare"))

    def ask_the_database(self):
        if connection.vendor != "postgresql":
            raise CommandError("not connected to PostgreSQL: give --plan or --max-connections")
        with connection.cursor() as cursor:
            cursor.execute("SHOW max_connections")
            return int(cursor.fetchone()[0])
