"""Figures about the tasks and their runs, for the statistics endpoints of the REST API.

Plain functions taking ``now``; each answers with JSON-ready values (ISO dates and times,
ints, floats rounded to the millisecond or to four decimals, None where there is nothing to
measure) in a handful of queries whatever the number of rows.

The rules:

- A run belongs to the moment it was recorded (``created_at``: when it was claimed, queued or
  skipped; every record has one). A window of ``d`` ending at ``now`` holds the runs recorded
  in ``(now - d, now]``.
- Test runs (the editor's "Test run") are left out everywhere: they try a draft, not the
  task's work. Scheduled, manual and retry runs count.
- A finished run is completed, failed, timed out, cancelled or abandoned: a skipped slot never
  ran, so it is neither a success nor a failure. Success rate = completed / finished; failure
  rate = (failed + timed out + abandoned) / finished; both None without finished runs. The
  cancelled runs make up the rest.
- Percentiles interpolate linearly between the two nearest durations (PostgreSQL's
  ``percentile_cont``): PostgreSQL computes them, elsewhere Python does while streaming the
  durations in order, holding a few numbers at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections, router
from django.db.models import Aggregate, Count, F, FloatField, Max, Q, QuerySet, Window
from django.db.models.functions import TruncDate

from scheduled_tasks import schedules
from scheduled_tasks.models import Execution, ScheduledTask

Status = Execution.Status

FINISHED = (Status.COMPLETED, Status.FAILED, Status.TIMEOUT, Status.CANCELLED, Status.ABANDONED)
FAILED = (Status.FAILED, Status.TIMEOUT, Status.ABANDONED)

WINDOWS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DAYS_SHOWN = 30
PERCENTILES = {"p50": 0.5, "p95": 0.95}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def runs_kept() -> QuerySet[Execution]:
    """The recorded runs the figures count: every trigger but test runs."""
    return Execution.objects.exclude(trigger=Execution.Trigger.TEST).order_by()


def _by_status(counts: dict[str, int]) -> dict[str, int]:
    """Every status, with 0 where there is none: the same shape in every answer."""
    return {status: counts.get(status, 0) for status in Status.values}


def _summary(counts: dict[str, int]) -> dict[str, Any]:
    by_status = _by_status(counts)
    finished = sum(by_status[s] for s in FINISHED)
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "finished": finished,
        "success_rate": _rate(by_status[Status.COMPLETED], finished),
    }


# --- overview ------------------------------------------------------------------------------


def task_counts() -> dict[str, Any]:
    """Tasks: all, active, inactive, and how many of each schedule kind (every kind shown)."""
    rows = ScheduledTask.objects.values_list("schedule_kind", "is_active").annotate(n=Count("pk"))
    by_kind = {value: 0 for value, _ in schedules.kinds.choices()}
    active = inactive = 0
    for kind, is_active, n in rows.order_by():
        by_kind[kind] = by_kind.get(kind, 0) + n
        if is_active:
            active += n
        else:
            inactive += n
    return {"total": active + inactive, "active": active, "inactive": inactive, "by_kind": by_kind}


def window_counts(now: datetime) -> dict[str, dict[str, Any]]:
    """Runs by status in each window ending at ``now`` (24h, 7d, 30d), with the success
    rate: one query, a conditional count per window."""
    longest = max(WINDOWS.values())
    rows = (
        runs_kept()
        .filter(created_at__gt=now - longest, created_at__lte=now)
        .values_list("status")
        .annotate(
            **{
                name: Count("pk", filter=Q(created_at__gt=now - length))
                for name, length in WINDOWS.items()
            }
        )
    )
    counts: dict[str, dict[str, int]] = {name: {} for name in WINDOWS}
    for status, *per_window in rows:
        for name, n in zip(WINDOWS, per_window, strict=True):
            counts[name][status] = n
    return {
        name: {
            "start": (now - length).isoformat(),
            "end": now.isoformat(),
            **_summary(counts[name]),
        }
        for name, length in WINDOWS.items()
    }


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of ``day`` in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=zone)


def daily_counts(now: datetime, days: int = DAYS_SHOWN) -> list[dict[str, Any]]:
    """Runs by status per day in the server's TIME_ZONE, the last ``days`` days up to ``now``
    (today included, oldest first, days without runs as zeros)."""
    zone = ZoneInfo(settings.TIME_ZONE)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    rows = (
        runs_kept()
        .filter(created_at__gte=local_midnight(first, zone), created_at__lte=now)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values_list("day", "status")
        .annotate(n=Count("pk"))
    )
    counts: dict[date, dict[str, int]] = {}
    for day, status, n in rows:
        counts.setdefault(day, {})[status] = n
    result = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        by_status = _by_status(counts.get(day, {}))
        result.append({"date": day.isoformat(), "total": sum(by_status.values()), **by_status})
    return result


def overview(now: datetime) -> dict[str, Any]:
    """Tasks, runs per window with their success rates, and runs per day: three queries."""
    return {
        "now": now.isoformat(),
        "time_zone": settings.TIME_ZONE,
        "tasks": task_counts(),
        "executions": window_counts(now),
        "per_day": daily_counts(now),
    }


# --- performance ---------------------------------------------------------------------------


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``."""

    function = "percentile_cont"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError(f"a percentile's fraction lies in [0, 1], not {fraction!r}")
        # A float we built ourselves, written into the SQL as a literal (no user input).
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def interpolate(fraction: float, count: int, value_at: dict[int, float]) -> float:
    """``percentile_cont``: the value at rank ``fraction * (count - 1)`` of the sorted values,
    interpolated linearly between its two neighbours (``value_at`` maps index -> value and
    must hold them, see :func:`ranks_needed`)."""
    position = fraction * (count - 1)
    low, high = math.floor(position), math.ceil(position)
    return value_at[low] + (value_at[high] - value_at[low]) * (position - low)


def ranks_needed(fractions: Iterable[float], count: int) -> set[int]:
    """The indexes of the sorted values that ``interpolate`` reads."""
    needed: set[int] = set()
    for fraction in fractions:
        position = fraction * (count - 1)
        needed.update((math.floor(position), math.ceil(position)))
    return needed


def streamed_percentiles(
    runs: QuerySet[Execution], fractions: dict[str, float]
) -> dict[int, dict[str, float]]:
    """Per task, the duration percentiles of ``runs``, computed while the durations stream by
    in order: each row carries its task's count (a window function), so only the few values
    at the needed ranks are kept, and count and values come from the same statement."""
    rows = (
        runs.filter(duration_seconds__isnull=False)
        .annotate(n=Window(Count("pk"), partition_by=[F("task_id")]))
        .order_by("task_id", "duration_seconds")
        .values_list("task_id", "duration_seconds", "n")
    )
    result: dict[int, dict[str, float]] = {}
    stream: Iterator[tuple[int, float, int]] = rows.iterator(chunk_size=2000)
    for task_id, group in groupby(stream, key=lambda row: row[0]):
        value_at: dict[int, float] = {}
        count = 0
        needed: set[int] = set()
        for index, (_, duration, n) in enumerate(group):
            if index == 0:
                count, needed = n, ranks_needed(fractions.values(), n)
            if index in needed:
                value_at[index] = duration
        result[task_id] = {
            name: interpolate(fraction, count, value_at) for name, fraction in fractions.items()
        }
    return result


def _database_percentiles() -> bool:
    return connections[router.db_for_read(Execution)].vendor == "postgresql"


def performance(now: datetime, *, days: int = 30, limit: int = 10) -> dict[str, Any]:
    """Per task, its runs recorded in the last ``days`` days up to ``now``: how many, their
    duration's median, 95th percentile and maximum (of the runs that have a duration), the
    failure rate; and the ``limit`` slowest tasks by 95th percentile. Two queries (one on
    PostgreSQL)."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive integer, not {days!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be a non-negative integer, not {limit!r}")
    start = now - timedelta(days=days)
    runs = runs_kept().filter(created_at__gt=start, created_at__lte=now)
    in_database = _database_percentiles()
    percentile_aggregates = (
        {
            name: PercentileCont("duration_seconds", fraction)
            for name, fraction in PERCENTILES.items()
        }
        if in_database
        else {}
    )
    rows = (
        runs.values("task_id", "task__name")
        .annotate(
            runs=Count("pk"),
            finished=Count("pk", filter=Q(status__in=FINISHED)),
            failures=Count("pk", filter=Q(status__in=FAILED)),
            timed=Count("duration_seconds"),
            max_seconds=Max("duration_seconds"),
            **percentile_aggregates,
        )
        .order_by("task__name")
    )
    rows = list(rows)
    streamed = {} if in_database else streamed_percentiles(runs, PERCENTILES)
    tasks = []
    for row in rows:
        percentiles = (
            {name: row[name] for name in PERCENTILES}
            if in_database
            else streamed.get(row["task_id"], dict.fromkeys(PERCENTILES))
        )
        tasks.append(
            {
                "task_id": row["task_id"],
                "name": row["task__name"],
                "runs": row["runs"],
                "finished": row["finished"],
                "failures": row["failures"],
                "failure_rate": _rate(row["failures"], row["finished"]),
                "timed_runs": row["timed"],
                **{f"{name}_seconds": _seconds(percentiles[name]) for name in PERCENTILES},
                "max_seconds": _seconds(row["max_seconds"]),
            }
        )
    timed = [task for task in tasks if task["p95_seconds"] is not None]
    slowest = sorted(timed, key=lambda t: (-t["p95_seconds"], -t["max_seconds"], t["name"]))
    return {
        "start": start.isoformat(),
        "end": now.isoformat(),
        "days": days,
        "tasks": tasks,
        "slowest": slowest[:limit],
    }
