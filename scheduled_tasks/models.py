"""The scheduler's records: a task (what to run and when) and an execution (one run of it)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone as dj_timezone

from scheduled_tasks import schedules
from scheduled_tasks.choices import CatchUp
from scheduled_tasks.querysets import ExecutionQuerySet, ScheduledTaskQuerySet


def default_time_zone() -> str:
    return settings.TIME_ZONE


def validate_time_zone(value: str) -> None:
    from django.core.exceptions import ValidationError

    try:
        schedules.parse_zone(value)
    except schedules.ScheduleError as exc:
        raise ValidationError(str(exc)) from None


# How a task runs, beside what and when: the form's "Advanced" part, the admin's collapsed
# section and the optional keys of the import format.
RUN_SETTINGS = (
    "timeout_seconds",
    "catch_up",
    "grace_seconds",
    "max_instances",
    "max_retries",
    "retry_backoff_seconds",
    "priority",
)


class ScheduledTask(models.Model):
    name = models.CharField(
        "name", max_length=200, unique=True, help_text="A unique, human-readable name."
    )
    description = models.TextField(
        "description", blank=True, help_text="What the task does and who relies on it."
    )
    code = models.TextField(
        "code",
        blank=True,
        help_text="Python run in the sandbox. It sees timezone, datetime, timedelta, User, "
        "Ticket, Contact, Company, logger and print. Leave empty to run a registered function.",
    )
    function_name = models.CharField(
        "registered function",
        max_length=200,
        blank=True,
        help_text="Run this registered Python function instead of code.",
    )
    function_params = models.JSONField(
        "function parameters",
        default=dict,
        blank=True,
        help_text="Keyword arguments for the registered function, as a JSON object.",
    )
    schedule_kind = models.CharField(
        "schedule",
        max_length=10,
        choices=schedules.KIND_CHOICES,
        default=schedules.kinds.INTERVAL.value,
        help_text="Every N units from a start time, a cron expression, or once.",
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
    cron_expression = models.CharField(
        "cron expression",
        max_length=120,
        blank=True,
        help_text="Five fields: minute hour day-of-month month day-of-week, e.g. "
        "“30 8 * * MON-FRI”. Evaluated in the task's time zone.",
    )
    run_at = models.DateTimeField(
        "run at",
        null=True,
        blank=True,
        help_text="For a one-off task: when it runs. It deactivates itself afterwards.",
    )
    time_zone = models.CharField(
        "time zone",
        max_length=64,
        default=default_time_zone,
        validators=[validate_time_zone],
        help_text="IANA zone (e.g. Europe/Madrid) for cron, wall-clock and display times.",
    )
    catch_up = models.CharField(
        "missed runs",
        max_length=10,
        choices=CatchUp.choices,
        default=CatchUp.RUN_ONCE,
        help_text="What to do with slots missed while the scheduler was down.",
    )
    grace_seconds = models.PositiveIntegerField(
        "grace period (seconds)",
        null=True,
        blank=True,
        validators=[MaxValueValidator(366 * 24 * 3600)],
        help_text="A slot missed by more than this is skipped, not run; empty: no limit.",
    )
    max_instances = models.PositiveSmallIntegerField(
        "max parallel runs",
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="How many runs of this task may be in progress at once.",
    )
    max_retries = models.PositiveSmallIntegerField(
        "retries",
        default=0,
        validators=[MaxValueValidator(20)],
        help_text="How many times a failed or timed-out run is retried.",
    )
    retry_backoff_seconds = models.PositiveIntegerField(
        "retry backoff (seconds)",
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 3600)],
        help_text="Delay before the first retry; each further retry waits twice as long.",
    )
    priority = models.SmallIntegerField(
        "priority",
        default=0,
        validators=[MinValueValidator(-100), MaxValueValidator(100)],
        help_text="When several tasks are due, higher priority runs first.",
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
            # The runner's due query (active tasks whose next slot has come) and the daemon's
            # "when is the next one" MIN, both ``WHERE "is_active" AND ...``. Partial on
            # ``is_active``, so it serves them without planner statistics (a database nobody
            # has analysed): the old (is_active, next_run_at) index cannot be searched on a
            # bare boolean term, and SQLite scanned the whole table. See querysets.due().
            models.Index(
                fields=["next_run_at"],
                condition=models.Q(is_active=True),
                name="sched_task_active_due",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def kind(self) -> schedules.ScheduleKind:
        """The task's kind of schedule from the table (``schedules.kinds``); raises
        ScheduleError for a value no kind declares."""
        return schedules.kinds.get(self.schedule_kind)

    @property
    def is_one_off(self) -> bool:
        """Whether the task runs once and is then done (False for an unknown kind)."""
        kind = schedules.kinds.lookup(self.schedule_kind)
        return kind is not None and kind.is_one_off

    @property
    def schedule(self) -> schedules.Schedule:
        kind = self.kind
        values = {name: getattr(self, name) for name in kind.model_fields}
        return kind.build(values, self.time_zone or settings.TIME_ZONE)

    @property
    def schedule_description(self) -> str:
        try:
            return schedules.describe(self.schedule)
        except schedules.ScheduleError as exc:
            return f"invalid schedule: {exc}"

    @property
    def runs_function(self) -> bool:
        return bool(self.function_name)

    def first_run_after(self, now: datetime) -> datetime | None:
        """The first slot at or after ``now``: where a new or edited schedule starts."""
        return schedules.next_fire_time(self.schedule, now, inclusive=True)


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

    objects = ExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["task", "-created_at"], name="sched_exec_task_time"),
            models.Index(fields=["status", "lease_expires_at"], name="sched_exec_status"),
            models.Index(fields=["status", "not_before"], name="sched_exec_pending"),
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
        import logging

        return logging.getLevelName(self.level)


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
