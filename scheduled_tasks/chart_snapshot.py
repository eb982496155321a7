"""The dashboard's charts, computed ahead of the page.

The runs-per-day chart counts every run of the last 30 days and the duration trend averages a
week of completed runs: about a second with a million runs, too slow for a page that should
answer in well under 300 ms. So the runners' monitor threads (daemon, embedded leader, a cron
pass) recompute both when the stored ones are ``REFRESH_SECONDS`` old and store them in one
row; the page reads that row. The page computes them itself only when no runner has for
``STALE_SECONDS`` (no scheduler running) or when the stored figures are from another day (the
day axis moved on), and stores what it computed for the next view. The page says when the
figures were computed; its live counts do not come from here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from scheduled_tasks import dashboard
from scheduled_tasks.models import ChartSnapshot

log = logging.getLogger("scheduled_tasks")

NAME = "dashboard"
REFRESH_SECONDS = 300
STALE_SECONDS = 2 * REFRESH_SECONDS


@dataclass(frozen=True)
class Charts:
    computed_at: datetime
    outcomes: dashboard.DailyOutcomes
    trend_days: list[date]
    trends: list[dashboard.DurationTrend]


def compute(now: datetime) -> Charts:
    """Both charts' figures at ``now`` (the expensive part: four queries over the history)."""
    trend_days, trends = dashboard.slowest_trends(now)
    return Charts(now, dashboard.daily_outcomes(now), trend_days, trends)


def _to_json(charts: Charts) -> dict[str, Any]:
    return {
        "days": [d.isoformat() for d in charts.outcomes.days],
        "completed": charts.outcomes.completed,
        "failed": charts.outcomes.failed,
        "trend_days": [d.isoformat() for d in charts.trend_days],
        "trends": [
            {
                "task_id": t.task_id,
                "name": t.name,
                "mean_seconds": t.mean_seconds,
                "daily_mean_seconds": t.daily_mean_seconds,
            }
            for t in charts.trends
        ],
    }


def _from_json(computed_at: datetime, data: dict[str, Any]) -> Charts:
    return Charts(
        computed_at=computed_at,
        outcomes=dashboard.DailyOutcomes(
            days=[date.fromisoformat(d) for d in data["days"]],
            completed=[int(n) for n in data["completed"]],
            failed=[int(n) for n in data["failed"]],
        ),
        trend_days=[date.fromisoformat(d) for d in data["trend_days"]],
        trends=[
            dashboard.DurationTrend(
                task_id=int(t["task_id"]),
                name=str(t["name"]),
                mean_seconds=float(t["mean_seconds"]),
                daily_mean_seconds=[
                    None if m is None else float(m) for m in t["daily_mean_seconds"]
                ],
            )
            for t in data["trends"]
        ],
    )


def refresh(now: datetime) -> Charts:
    """Compute the charts and store them for the pages."""
    charts = compute(now)
    ChartSnapshot.objects.update_or_create(
        name=NAME, defaults={"computed_at": now, "data": _to_json(charts)}
    )
    return charts


def _fresh(computed_at: datetime, now: datetime, seconds: float) -> bool:
    """Computed at most ``seconds`` before ``now``, on the same (server-local) day."""
    zone = ZoneInfo(settings.TIME_ZONE)
    return (
        now - timedelta(seconds=seconds) <= computed_at <= now
        and computed_at.astimezone(zone).date() == now.astimezone(zone).date()
    )


def refresh_if_due(now: datetime) -> bool:
    """What a runner's monitor calls: recompute the charts unless some process did less than
    ``REFRESH_SECONDS`` ago (several runners, or one-minute cron passes, share the work).
    Returns whether it recomputed them."""
    computed_at = (
        ChartSnapshot.objects.filter(name=NAME).values_list("computed_at", flat=True).first()
    )
    if computed_at is not None and _fresh(computed_at, now, REFRESH_SECONDS):
        return False
    refresh(now)
    return True


def current(now: datetime) -> Charts:
    """The stored charts if a runner computed them lately and on the same day, else computed
    now (and stored). One query when they are stored."""
    row = ChartSnapshot.objects.filter(name=NAME).first()
    if row is not None and _fresh(row.computed_at, now, STALE_SECONDS):
        try:
            return _from_json(row.computed_at, row.data)
        except (KeyError, TypeError, ValueError):
            log.warning("the stored dashboard charts are unreadable; computing them again")
    return refresh(now)
