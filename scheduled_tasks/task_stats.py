"""One task's figures for its page: the success rate and the median and 95th percentile of the
durations of its recent runs, by the rules of ``statistics`` (test runs left out; a skipped
slot is not a finished run; percentiles interpolate like ``percentile_cont``).

"Recent" is the runs recorded in the last 30 days, at most the latest ``RECENT_RUNS`` of them:
one query that reads the task's newest runs through the ``sched_exec_task_time`` index and
stops there, so a task with a hundred thousand runs costs what one with a thousand does. The
page says which window the figures cover. None where there is nothing to measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.statistics import FINISHED, PERCENTILES, interpolate, ranks_needed

WINDOW_DAYS = 30
RECENT_RUNS = 1000


@dataclass(frozen=True)
class TaskFigures:
    days: int
    runs: int  # the runs looked at (test runs aside)
    capped: bool  # True: more runs in the window than RECENT_RUNS; the latest were looked at
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


def percentiles_of(durations: list[float]) -> dict[str, float | None]:
    """The ``PERCENTILES`` of ``durations`` (any order), interpolated like percentile_cont."""
    if not durations:
        return dict.fromkeys(PERCENTILES)
    ordered = sorted(durations)
    result: dict[str, float | None] = {}
    for name, fraction in PERCENTILES.items():
        value_at = {i: ordered[i] for i in ranks_needed([fraction], len(ordered))}
        result[name] = round(interpolate(fraction, len(ordered), value_at), 3)
    return result


def task_figures(
    task: ScheduledTask, now: datetime, *, days: int = WINDOW_DAYS, limit: int | None = None
) -> TaskFigures:
    """Of ``task``'s latest ``limit`` runs (``RECENT_RUNS`` by default), those recorded in
    ``(now - days, now]`` that are not test runs: finished, completed and timed runs, and the
    p50 / p95 of the timed ones' durations. One query."""
    limit = RECENT_RUNS if limit is None else limit
    start = now - timedelta(days=days)
    # Only the task in the condition, so that the database walks its (task, created_at) index
    # backwards and stops after ``limit + 1`` rows: with the window in the condition too, an
    # unanalysed PostgreSQL guesses few rows and reads and sorts the task's whole window. The
    # window and the test runs are left out here.
    latest = list(
        Execution.objects.filter(task=task)
        .order_by("-created_at")
        .values_list("status", "duration_seconds", "created_at", "trigger")[: limit + 1]
    )
    capped = len(latest) > limit and latest[limit][2] > start
    rows = [
        (status, duration)
        for status, duration, created_at, trigger in latest[:limit]
        if start < created_at <= now and trigger != Execution.Trigger.TEST
    ]
    durations = [duration for _, duration in rows if duration is not None]
    percentiles = percentiles_of(durations)
    return TaskFigures(
        days=days,
        runs=len(rows),
        capped=capped,
        finished=sum(1 for status, _ in rows if status in FINISHED),
        completed=sum(1 for status, _ in rows if status == Execution.Status.COMPLETED),
        timed=len(durations),
        p50_seconds=percentiles["p50"],
        p95_seconds=percentiles["p95"],
    )
