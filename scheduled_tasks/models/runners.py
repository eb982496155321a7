"""What the runners leave behind: the embedded scheduler's leader lease, each runner's
heartbeat."""

from __future__ import annotations

from django.db import models


class SchedulerLease(models.Model):
    """A named lease held by one process at a time (the embedded scheduler's leader lock).

    Taken and renewed with compare-and-set updates; a holder that stops renewing loses it
    once ``expires_at`` passes, and another process takes over.
    """

    name = models.CharField("name", max_length=100, unique=True)
    holder = models.CharField("holder", max_length=200, help_text="host:pid:thread of the holder")
    acquired_at = models.DateTimeField("acquired at")
    renewed_at = models.DateTimeField("renewed at")
    expires_at = models.DateTimeField("expires at")

    class Meta:
        verbose_name = "scheduler lease"

    def __str__(self) -> str:
        return f"{self.name}: {self.holder} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class RunnerHeartbeat(models.Model):
    """A runner (daemon, cron pass, embedded scheduler, worker) saying it is alive.

    Each runner renews its own row while it runs; "the scheduler is down" means no row was
    renewed for ``ALERT_SCHEDULER_DOWN_MINUTES``, and ``/metrics`` shows each row's age.
    """

    class Mode(models.TextChoices):
        DAEMON = "daemon", "Daemon"
        CRON = "cron", "Cron pass"
        EMBEDDED = "embedded", "Embedded scheduler"
        WORKER = "worker", "Worker"

    runner = models.CharField(
        "runner", max_length=200, unique=True, help_text="host:pid of the runner."
    )
    kind = models.CharField("kind", max_length=20, choices=Mode.choices)
    started_at = models.DateTimeField("started at", help_text="When the runner started.")
    last_seen_at = models.DateTimeField(
        "last seen", db_index=True, help_text="The runner's latest heartbeat."
    )
    concurrency = models.PositiveSmallIntegerField(
        "slots", default=1, help_text="How many runs the runner may have going at once."
    )
    running = models.PositiveIntegerField(
        "running", default=0, help_text="Runs in progress at the latest heartbeat."
    )
    stopped_at = models.DateTimeField(
        "stopped at",
        null=True,
        blank=True,
        help_text="When the runner stopped cleanly (empty while it runs, or if it died).",
    )

    class Meta:
        verbose_name = "runner heartbeat"
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.runner}"
