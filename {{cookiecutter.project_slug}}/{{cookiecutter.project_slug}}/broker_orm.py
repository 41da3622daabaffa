"""django-q2's ORM broker: tasks live in PostgreSQL, so a task is delivered again after Q_CLUSTER's
`retry` seconds unless it was acknowledged; delivery is at least once. `timeout` must stay below `retry`,
or a slow task is delivered again while it still runs (worker.py refuses that). See docs/broker-orm.md.
https://django-q2.readthedocs.io/en/master/brokers.html
"""

BROKER = {"orm": "default"}
