"""One task's figures for its page: over the last 30 days, the success rate and the median and
95th percentile of its run durations, by the rules of ``statistics`` (test runs left out; a
skipped slot is not a finished run; percentiles interpolate like ``percentile_cont``).

Three small queries whatever the history's length, the same on every database: one aggregate
over the task's window (read through the ``sched_exec_task_time`` index), then for each
percentile the one or two durations at its ranks (``ORDER BY duration LIMIT 2 OFFSET k``), so
no more than two durations ever leave the database. None where there is nothing to measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet

from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.statistics import FINISHED, PERCENTILES, interpolate, ranks_needed

WINDOW_DAYS = 30


@dataclass(frozen=True)
class TaskFigures:
    days: int
    finished: int
    completed: int
    timed: int
    p50_seconds: float | None
    p95_seconds: float | None

    @property
    def success_rate(self) -> float | None:
        """Completed runs as a share of the finished ones (0..1), None without finished runs."""
        return self.completed / self.finished if self.finished else None

    @property
    def success_percent(self) -> float | None:
        rate = self.success_rate
        return None if rate is None else round(rate * 100, 1)


def _percentile(timed_runs: QuerySet[Execution], fraction: float, count: int) -> float | None:
    """The ``fraction`` percentile of the ``count`` durations of ``timed_runs``."""
    ranks = sorted(ranks_needed([fraction], count))
    low, high = ranks[0], ranks[-1]
    durations = list(
        timed_runs.order_by("duration_seconds", "pk").values_list("duration_seconds", flat=True)[
            low : high + 1
        ]
    )
    if not durations:  # runs deleted since they were counted (cleanup): nothing to say
        return None
    # A run deleted between the two queries may leave the upper neighbour missing.
    value_at = {low + i: value for i, value in enumerate(durations)}
    value_at.setdefault(high, durations[-1])
    return interpolate(fraction, count, value_at)


def task_figures(task: ScheduledTask, now: datetime, *, days: int = WINDOW_DAYS) -> TaskFigures:
    """``task``'s runs recorded in ``(now - days, now]``: finished, completed, timed runs, and
    the p50 / p95 of the durations of the timed ones."""
    runs = (
        Execution.objects.filter(
            task=task, created_at__gt=now - timedelta(days=days), created_at__lte=now
        )
        .exclude(trigger=Execution.Trigger.TEST)
        .order_by()
    )
    totals = runs.aggregate(
        finished=Count("pk", filter=Q(status__in=FINISHED)),
        completed=Count("pk", filter=Q(status=Execution.Status.COMPLETED)),
        timed=Count("duration_seconds"),
    )
    timed = totals["timed"]
    percentiles: dict[str, float | None] = dict.fromkeys(PERCENTILES)
    if timed:
        durations = runs.filter(duration_seconds__isnull=False)
        for name, fraction in PERCENTILES.items():
            value = _percentile(durations, fraction, timed)
            percentiles[name] = None if value is None else round(value, 3)
    return TaskFigures(
        days=days,
        finished=totals["finished"],
        completed=totals["completed"],
        timed=timed,
        p50_seconds=percentiles["p50"],
        p95_seconds=percentiles["p95"],
    )
