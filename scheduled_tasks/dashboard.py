"""What the dashboard shows: counts, short lists and the series of its two charts.

Plain functions taking ``now``. Each reads a bounded window or a bounded number of rows through
an index, never the whole run history, so the page stays cheap with a million runs:

- tasks "failing now" are those whose latest run failed, timed out or was abandoned: the
  ``last_failed`` flag the runner keeps (``last_outcome``), read through its partial index;
- runs by status "in the last 24 h" are the runs that *ended* in that window, counted through
  the partial ``(status, finished_at)`` index (``sched_exec_finished``); runs in progress and
  waiting are counted now, through ``(status, lease_expires_at)``;
- the runs-per-day chart counts the runs that ended each day (the same index), in the server's
  ``TIME_ZONE``, completed against failed (failed, timed out, abandoned);
- the duration trend picks the slowest tasks by the mean duration of their runs completed in
  the last 7 days, then reads only those tasks' runs of the last 30 days through
  ``(task, created_at)`` (``sched_exec_task_time``).

Test runs (the editor's "Test run") are left out of the counts of ended runs and of the charts,
as in ``statistics``; a test run in progress is still "running now".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Avg,
    Case,
    Count,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)

from scheduled_tasks import conf, heartbeats
from scheduled_tasks.alerts import service as alerts
from scheduled_tasks.models import Execution, RunnerHeartbeat, ScheduledTask
from scheduled_tasks.statistics import FAILED, local_midnight, runs_kept

Status = Execution.Status

RECENT = timedelta(hours=24)
WAITING = (Status.PENDING, Status.RUNNING)
LISTED = 10  # rows of the "running now", "failing now" and "next runs" lists
RUNNERS_LISTED = 20
CHART_DAYS = 30
SLOWEST = 5
SLOWEST_WINDOW = timedelta(days=7)


def _last_status() -> Subquery:
    """Each listed task's latest status, looked up by primary key. Written as a correlated
    subquery rather than a join: without planner statistics PostgreSQL may hash the whole run
    history for the join, while this reads one row per listed task."""
    return Subquery(
        Execution.objects.filter(pk=OuterRef("last_execution_id")).order_by().values("status")[:1]
    )


def _down_after() -> timedelta:
    minutes = (
        conf.get("ALERT_SCHEDULER_DOWN_MINUTES") or conf.DEFAULTS["ALERT_SCHEDULER_DOWN_MINUTES"]
    )
    return timedelta(minutes=minutes)


# Runs are counted with COUNT(*), not COUNT(id): PostgreSQL then answers from an index alone
# (its indexes do not hold the id; SQLite's hold the rowid either way).


def counts(now: datetime) -> dict[str, Any]:
    """The figures the dashboard refreshes every few seconds, JSON-ready: tasks active and
    paused, tasks failing now (their latest run failed, timed out or was abandoned:
    ``last_failed``), runs running and pending now, runs ended in the last 24 h by status,
    open alerts, and whether a scheduler beat lately. Five queries."""
    tasks = ScheduledTask.objects.order_by().aggregate(
        active=Count("pk", filter=Q(is_active=True)),
        paused=Count("pk", filter=Q(is_active=False)),
        failing=Count("pk", filter=Q(last_failed=True)),
    )
    now_rows = (
        Execution.objects.filter(status__in=WAITING)
        .values_list("status")
        .annotate(n=Count("*"))
        .order_by()
    )
    in_progress = dict(now_rows)
    ended_rows = (
        runs_kept()
        .filter(
            status__in=sorted(Execution.FINISHED_STATUSES),
            finished_at__gt=now - RECENT,
            finished_at__lte=now,
        )
        .values_list("status")
        .annotate(n=Count("*"))
    )
    ended = dict(ended_rows)
    recent = {s: ended.get(s, 0) for s in Status.values if s not in WAITING}
    newest = heartbeats.latest()
    age = None if newest is None else max((now - newest.last_seen_at).total_seconds(), 0.0)
    return {
        "now": now.isoformat(),
        "tasks": {"active": tasks["active"], "paused": tasks["paused"]},
        "failing": tasks["failing"],
        "running": in_progress.get(Status.RUNNING, 0),
        "pending": in_progress.get(Status.PENDING, 0),
        "recent": {
            "total": sum(recent.values()),
            "failed": sum(recent[s] for s in FAILED),
            "by_status": recent,
        },
        "alerts": alerts.summary()["open"],
        "scheduler": {
            "ok": newest is not None and newest.last_seen_at >= now - _down_after(),
            "last_heartbeat_at": None if newest is None else newest.last_seen_at.isoformat(),
            "age_seconds": None if age is None else round(age, 1),
            "kind": None if newest is None else newest.kind,
        },
    }


def running_now() -> list[Execution]:
    """The runs in progress, the latest started first (at most ``LISTED``)."""
    return list(
        Execution.objects.running()
        .select_related("task")
        .only("pk", "status", "trigger", "started_at", "created_at", "task__id", "task__name")
        .order_by("-started_at", "-pk")[:LISTED]
    )


def failing_now() -> list[ScheduledTask]:
    """Tasks whose latest run failed, timed out or was abandoned, the latest first (at most
    ``LISTED``; the partial index of failing tasks); each with its ``latest_status``."""
    return list(
        ScheduledTask.objects.filter(last_failed=True)
        .annotate(latest_status=_last_status())
        .only("pk", "name", "is_active", "last_run_at")
        .order_by("-last_run_at", "pk")[:LISTED]
    )


def next_runs() -> list[ScheduledTask]:
    """The next ``LISTED`` slots of active tasks (the partial index on their ``next_run_at``)."""
    return list(
        ScheduledTask.objects.filter(is_active=True, next_run_at__isnull=False)
        .only("pk", "name", "next_run_at", "time_zone")
        .order_by("next_run_at", "pk")[:LISTED]
    )


@dataclass(frozen=True)
class Runner:
    """One runner's latest heartbeat and what it says about the runner."""

    name: str
    kind: str
    kind_label: str
    last_seen_at: datetime
    started_at: datetime
    running: int
    concurrency: int
    state: str  # "alive", "silent" (no heartbeat lately) or "stopped" (stopped cleanly)


def runners(now: datetime) -> list[Runner]:
    """The runners seen most recently (at most ``RUNNERS_LISTED``), newest first."""
    down_after = _down_after()
    rows = RunnerHeartbeat.objects.order_by("-last_seen_at", "runner")[:RUNNERS_LISTED]
    result = []
    for row in rows:
        if row.stopped_at is not None:
            state = "stopped"
        elif row.last_seen_at >= now - down_after:
            state = "alive"
        else:
            state = "silent"
        result.append(
            Runner(
                name=row.runner,
                kind=row.kind,
                kind_label=row.get_kind_display(),
                last_seen_at=row.last_seen_at,
                started_at=row.started_at,
                running=row.running,
                concurrency=row.concurrency,
                state=state,
            )
        )
    return result


def _days(now: datetime, days: int) -> tuple[ZoneInfo, list[date]]:
    zone = ZoneInfo(settings.TIME_ZONE)
    today = now.astimezone(zone).date()
    return zone, [today - timedelta(days=days - 1 - n) for n in range(days)]


def day_index(field: str, days: list[date], zone: ZoneInfo) -> Case:
    """The place in ``days`` of the day ``field`` falls on (for rows already bounded to
    ``days``), by comparing with each local midnight: plain comparisons the database does
    itself, where a date truncation in the zone would call a Python function per row on
    SQLite (seconds for a month of runs)."""
    return Case(
        *(
            When(**{f"{field}__lt": local_midnight(day, zone)}, then=Value(n))
            for n, day in enumerate(days[1:])
        ),
        default=Value(len(days) - 1),
        output_field=IntegerField(),
    )


@dataclass(frozen=True)
class DailyOutcomes:
    days: list[date]
    completed: list[int]
    failed: list[int]


def daily_outcomes(now: datetime, days: int = CHART_DAYS) -> DailyOutcomes:
    """Runs that ended each day of the last ``days`` days (today included, oldest first):
    completed, and failed (failed, timed out, abandoned). One query."""
    zone, day_list = _days(now, days)
    rows = (
        runs_kept()
        .filter(
            status__in=[Status.COMPLETED, *FAILED],
            finished_at__gte=local_midnight(day_list[0], zone),
            finished_at__lte=now,
        )
        .annotate(day=day_index("finished_at", day_list, zone))
        .values_list("day", "status")
        .annotate(n=Count("*"))
    )
    completed = [0] * len(day_list)
    failed = [0] * len(day_list)
    for day, status, n in rows:
        (completed if status == Status.COMPLETED else failed)[day] += n
    return DailyOutcomes(days=day_list, completed=completed, failed=failed)


@dataclass(frozen=True)
class DurationTrend:
    task_id: int
    name: str
    mean_seconds: float  # over the last ``SLOWEST_WINDOW``
    daily_mean_seconds: list[float | None]  # one per day of the chart, None: no completed run


def slowest_trends(
    now: datetime, *, days: int = CHART_DAYS, limit: int = SLOWEST
) -> tuple[list[date], list[DurationTrend]]:
    """The ``limit`` tasks whose runs completed in the last 7 days took longest on average,
    and each one's mean duration per day over the last ``days`` days (by the day the run was
    recorded). Three queries (one when nothing completed lately)."""
    zone, day_list = _days(now, days)
    slowest = list(
        runs_kept()
        .filter(
            status=Status.COMPLETED,
            finished_at__gt=now - SLOWEST_WINDOW,
            finished_at__lte=now,
            duration_seconds__isnull=False,
        )
        .values("task_id")
        .annotate(mean=Avg("duration_seconds"))
        .order_by("-mean", "task_id")[:limit]
    )
    if not slowest:
        return day_list, []
    # The names of the few tasks found (joining the task to every run of the week costs more).
    names = dict(
        ScheduledTask.objects.filter(pk__in=[row["task_id"] for row in slowest]).values_list(
            "pk", "name"
        )
    )
    # Only the task and the time in the condition, so that the (task, created_at) index
    # serves it: a condition on the status would lure SQLite onto the status index (every
    # completed run). The status is checked inside the mean instead.
    rows = (
        runs_kept()
        .filter(
            task_id__in=[row["task_id"] for row in slowest],
            created_at__gte=local_midnight(day_list[0], zone),
            created_at__lte=now,
        )
        .annotate(day=day_index("created_at", day_list, zone))
        .values_list("task_id", "day")
        .annotate(mean=Avg("duration_seconds", filter=Q(status=Status.COMPLETED)))
    )
    means: dict[tuple[int, int], float | None] = {(t, d): m for t, d, m in rows}
    trends = [
        DurationTrend(
            task_id=row["task_id"],
            name=names.get(row["task_id"], f"#{row['task_id']}"),
            mean_seconds=row["mean"],
            daily_mean_seconds=[
                None if (m := means.get((row["task_id"], d))) is None else round(m, 3)
                for d in range(len(day_list))
            ],
        )
        for row in slowest
    ]
    return day_list, trends
