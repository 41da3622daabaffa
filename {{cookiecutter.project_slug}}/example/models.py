from django.db import models


class ExampleResult(models.Model):
    """What the example task writes: one row per key, however often the task for that key runs.

    The ORM broker delivers a task at least once, so the task's effect must not depend on how many
    times it ran; `runs` only counts the deliveries, to make redeliveries visible.
    """

    key = models.CharField(max_length=64, unique=True)
    digest = models.CharField(max_length=64)
    runs = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.key}: {self.digest[:12]}"
