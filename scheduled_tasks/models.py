"""The scheduler's records: a task (what to run and when) and an execution (one run of it)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone as dj_timezone

from scheduled_tasks import schedules
from scheduled_tasks.querysets import ExecutionQuerySet, ScheduledTaskQuerySet


class ScheduledTask(models.Model):
    name = models.CharField(
        "name", max_length=200, unique=True, help_text="A unique, human-readable name."
    )
    description = models.TextField(
        "description", blank=True, help_text="What the task does and who relies on it."
    )
    code = models.TextField(
        "code",
        help_text="Python run in the sandbox. It sees timezone, datetime, timedelta, User, "
        "Ticket, Contact, Company, logger and print.",
    )
    every = models.PositiveIntegerField(
        "every",
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(schedules.MAX_EVERY)],
        help_text="How many units between runs (at least 1).",
    )
    unit = models.CharField(
        "unit",
        max_length=10,
        choices=schedules.UNIT_CHOICES,
        default=schedules.Unit.HOURS.value,
        help_text="Minutes and hours count real elapsed time; days, weeks and months keep the "
        "anchor's wall-clock time in the server's time zone.",
    )
    anchor = models.DateTimeField(
        "start time",
        default=dj_timezone.now,
        help_text="The first run; later runs fall on start time + k x interval, never drifting.",
    )
    is_active = models.BooleanField(
        "active", default=True, help_text="Inactive tasks are never run by the scheduler."
    )
    timeout_seconds = models.PositiveIntegerField(
        "timeout (seconds)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 3600)],
        help_text="Wall-clock limit of one run; empty uses the default from settings.",
    )
    next_run_at = models.DateTimeField(
        "next run",
        null=True,
        blank=True,
        editable=False,
        help_text="The next slot on the schedule's grid; maintained by the scheduler.",
    )
    last_run_at = models.DateTimeField(
        "last run", null=True, blank=True, editable=False, help_text="When the last run started."
    )
    last_status = models.CharField(
        "last status",
        max_length=20,
        blank=True,
        editable=False,
        help_text="Status of the most recent execution, kept here so lists need no extra query.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name="created by",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name="updated by",
    )
    created_at = models.DateTimeField("created at", auto_now_add=True)
    updated_at = models.DateTimeField("updated at", auto_now=True)

    objects = ScheduledTaskQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "scheduled task"
        indexes = [
            # The runner's one query: active tasks whose next slot has come.
            models.Index(fields=["is_active", "next_run_at"], name="sched_task_due"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def schedule(self) -> schedules.IntervalSchedule:
        return schedules.IntervalSchedule.build(
            self.every, self.unit, self.anchor, dj_timezone.get_default_timezone()
        )

    @property
    def schedule_description(self) -> str:
        return schedules.describe(self.schedule)

    def first_run_after(self, now: datetime) -> datetime:
        """The first slot at or after ``now``: where a new or edited schedule starts."""
        return schedules.next_fire_time(self.schedule, now, inclusive=True)

    def reschedule(self, now: datetime) -> None:
        """Put ``next_run_at`` on the grid after a create or edit (not saved here)."""
        self.next_run_at = self.first_run_after(now) if self.is_active else None


class Execution(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        TIMEOUT = "timeout", "Timed out"
        CANCELLED = "cancelled", "Cancelled"
        ABANDONED = "abandoned", "Abandoned"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Manual"
        TEST = "test", "Test run"

    FINISHED_STATUSES = frozenset(
        {Status.COMPLETED, Status.FAILED, Status.TIMEOUT, Status.CANCELLED, Status.ABANDONED}
    )

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

    objects = ExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["task", "-created_at"], name="sched_exec_task_time"),
            models.Index(fields=["status", "lease_expires_at"], name="sched_exec_status"),
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

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED_STATUSES
