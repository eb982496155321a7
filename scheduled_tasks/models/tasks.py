"""A scheduled task: what to run, when, and how."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone as dj_timezone

from scheduled_tasks import schedules
from scheduled_tasks.choices import CatchUp
from scheduled_tasks.querysets import ScheduledTaskQuerySet


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
    "queue",
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
    queue = models.CharField(
        "queue",
        max_length=100,
        blank=True,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
                "A queue name: letters, digits and _ . : - (starting with a letter or digit).",
            )
        ],
        help_text="With Celery workers: the queue this task's runs are sent to (workers "
        "started with --queues=<name> take them); empty: the default queue. Ignored when "
        "the scheduler runs tasks itself.",
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
    # Its last_execution's outcome, kept on the task so that "failing now" is one indexed
    # look among ten thousand tasks; scheduled_tasks/last_outcome.py keeps it true.
    last_failed = models.BooleanField(
        "last run failed",
        default=False,
        editable=False,
        help_text="Whether the task's most recent run failed, timed out or was abandoned.",
    )
    last_execution = models.ForeignKey(
        "scheduled_tasks.Execution",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name="last execution",
        help_text="The task's most recent run (set when it is claimed); its status is the "
        "task's last status.",
    )
    current_version = models.ForeignKey(
        "scheduled_tasks.TaskVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name="current version",
        help_text="The version of the code (or function) the task runs now; set by each save "
        "that changes it. A claim copies it onto the run it creates.",
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
        # Running a task now, a test run of code and a registered function on demand: the
        # pages and the API ask for it beside view / add / change / delete.
        permissions = [("run_scheduledtask", "Can run scheduled tasks and test code now")]
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
            # The tasks failing now, the latest first (the dashboard, the task list's
            # "failing" filter and count): a few rows, however many tasks there are.
            models.Index(
                fields=["-last_run_at", "id"],
                condition=models.Q(last_failed=True),
                name="sched_task_failing",
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
    def last_status(self) -> str:
        """The status of the task's most recent run (``last_execution``), "" if it never ran.

        Lists read it for many tasks: they ``select_related("last_execution")`` (and filter
        on ``last_execution__status``), or each row costs a query.
        """
        return self.last_execution.status if self.last_execution_id else ""

    @property
    def runs_function(self) -> bool:
        return bool(self.function_name)

    def first_run_after(self, now: datetime) -> datetime | None:
        """The first slot at or after ``now``: where a new or edited schedule starts."""
        return schedules.next_fire_time(self.schedule, now, inclusive=True)
