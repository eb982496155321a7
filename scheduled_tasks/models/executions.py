"""One run of a task, and the lines it logged."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone as dj_timezone

from scheduled_tasks.models.tasks import ScheduledTask
from scheduled_tasks.querysets import ExecutionQuerySet


class Execution(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        TIMEOUT = "timeout", "Timed out"
        CANCELLED = "cancelled", "Cancelled"
        ABANDONED = "abandoned", "Abandoned"
        SKIPPED = "skipped", "Skipped"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Manual"
        TEST = "test", "Test run"
        RETRY = "retry", "Retry"

    FINISHED_STATUSES = frozenset(
        {
            Status.COMPLETED,
            Status.FAILED,
            Status.TIMEOUT,
            Status.CANCELLED,
            Status.ABANDONED,
            Status.SKIPPED,
        }
    )
    RETRYABLE_STATUSES = frozenset({Status.FAILED, Status.TIMEOUT, Status.ABANDONED})

    task = models.ForeignKey(
        ScheduledTask,
        on_delete=models.CASCADE,
        related_name="executions",
        verbose_name="task",
    )
    status = models.CharField(
        "status", max_length=20, choices=Status.choices, default=Status.PENDING
    )
    trigger = models.CharField(
        "trigger",
        max_length=20,
        choices=Trigger.choices,
        default=Trigger.SCHEDULE,
        help_text="What started the run: the schedule, a person (manual) or a test run.",
    )
    scheduled_for = models.DateTimeField(
        "scheduled for",
        null=True,
        blank=True,
        help_text="The schedule slot this run fills; empty for manual and test runs.",
    )
    slots_covered = models.PositiveIntegerField(
        "slots covered",
        default=1,
        help_text="How many schedule slots this run stands for (more than 1 after downtime).",
    )
    slots_skipped = models.PositiveIntegerField(
        "slots skipped",
        default=0,
        help_text="Missed slots this record stands for that were skipped, not run.",
    )
    attempt = models.PositiveSmallIntegerField(
        "attempt", default=1, help_text="1 for the first run, 2 for the first retry, ..."
    )
    retry_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="retries",
        verbose_name="retry of",
        help_text="The first execution of the run this one retries.",
    )
    not_before = models.DateTimeField(
        "not before",
        null=True,
        blank=True,
        help_text="A pending retry starts at this moment or later.",
    )
    started_at = models.DateTimeField("started", null=True, blank=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)
    duration_seconds = models.FloatField("duration (s)", null=True, blank=True)
    lease_expires_at = models.DateTimeField(
        "lease expires",
        null=True,
        blank=True,
        help_text="A running execution past this moment belongs to a runner that died.",
    )
    runner = models.CharField(
        "runner", max_length=200, blank=True, help_text="host:pid of the process that ran it."
    )
    output = models.TextField("output", blank=True)
    output_truncated = models.BooleanField("output truncated", default=False)
    error = models.TextField("error", blank=True)
    created_at = models.DateTimeField("created at", default=dj_timezone.now)
    version = models.ForeignKey(
        "scheduled_tasks.TaskVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="executions",
        verbose_name="version",
        help_text="The version of the task's code this run ran (empty for test runs and runs "
        "from before versions were kept).",
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name="cancelled by",
        help_text="Who cancelled the run (empty when it was not cancelled by a person).",
    )

    objects = ExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["task", "-created_at"], name="sched_exec_task_time"),
            # A task's runs by outcome (its page's counts and status filter, newest first), and
            # all runs by outcome, newest id first (the runs list's status filter, paged by id):
            # each a range of one index.
            models.Index(fields=["task", "status", "created_at"], name="sched_exec_task_status"),
            models.Index(fields=["status", "id"], name="sched_exec_status_id"),
            models.Index(fields=["status", "lease_expires_at"], name="sched_exec_status"),
            models.Index(fields=["status", "not_before"], name="sched_exec_pending"),
            # Runs that ended lately, by outcome: the alert rules' candidates (failed or
            # skipped in the last hour) without reading the whole history. Partial on ended
            # runs, so the runner's queries on pending and running runs keep their own indexes.
            # The trigger rides along so that counts leaving test runs out (the dashboard's)
            # are read from the index alone.
            models.Index(
                fields=["status", "finished_at", "trigger"],
                condition=models.Q(finished_at__isnull=False),
                name="sched_exec_finished",
            ),
        ]
        constraints = [
            # The database itself refuses a second record of the same schedule slot.
            models.UniqueConstraint(
                fields=["task", "scheduled_for"],
                condition=models.Q(trigger="schedule"),
                name="sched_exec_one_per_slot",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task} #{self.pk} ({self.status})"


class ExecutionLogLine(models.Model):
    """One line a run wrote through ``logger`` (a snippet) or logging (a registered function),
    kept with the run while it goes on; bounded per run (``SCHEDULED_TASKS["MAX_LOG_LINES"]``)."""

    execution = models.ForeignKey(
        Execution,
        on_delete=models.CASCADE,
        related_name="log_lines",
        db_index=False,  # the (execution, seq) index serves lookups by execution
        verbose_name="execution",
        help_text="The run that wrote the line.",
    )
    seq = models.PositiveIntegerField(
        "sequence", help_text="The line's place in its run's log, from 1."
    )
    at = models.DateTimeField("at", help_text="When the runner received the line.")
    level = models.PositiveSmallIntegerField(
        "level",
        validators=[MinValueValidator(10), MaxValueValidator(50)],
        help_text="The logging level: 10 debug, 20 info, 30 warning, 40 error, 50 critical.",
    )
    message = models.TextField(
        "message", help_text="What was logged; a very long line is cut, marked with “…”."
    )

    class Meta:
        verbose_name = "log line"
        ordering = ["seq"]
        indexes = [models.Index(fields=["execution", "seq"], name="sched_logline_exec_seq")]

    def __str__(self) -> str:
        return f"{self.level_name} {self.message[:80]}"

    @property
    def level_name(self) -> str:
        """DEBUG, INFO, WARNING, ERROR or CRITICAL."""
        return logging.getLevelName(self.level)
