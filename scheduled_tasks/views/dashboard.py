"""The dashboard page and the small JSON answer its script polls to refresh the counts."""

from __future__ import annotations

from datetime import date

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from scheduled_tasks import chart_snapshot, charts, dashboard
from scheduled_tasks.choices import status_label
from scheduled_tasks.views.access import view_required

DAY_LABEL = "%d %b"


def _outcomes_chart(outcomes: dashboard.DailyOutcomes) -> str:
    labels = [d.strftime(DAY_LABEL) for d in outcomes.days]
    return charts.stacked_bars(
        "chart-outcomes",
        f"Runs per day, last {len(labels)} days",
        f"Completed and failed runs per day from {labels[0]} to {labels[-1]}: "
        f"{sum(outcomes.completed)} completed, {sum(outcomes.failed)} failed "
        "(failed, timed out or abandoned).",
        labels,
        [
            charts.Series("completed", outcomes.completed),
            charts.Series("failed", outcomes.failed),
        ],
    )


def _trend_chart(days: list[date], trends: list[dashboard.DurationTrend]) -> str:
    labels = [d.strftime(DAY_LABEL) for d in days]
    names = ", ".join(t.name for t in trends)
    return charts.lines(
        "chart-durations",
        "Mean duration per day of the slowest tasks",
        f"Mean duration in seconds of the completed runs of {names}, per day from "
        f"{labels[0]} to {labels[-1]}.",
        labels,
        [charts.Series(t.name, t.daily_mean_seconds) for t in trends],
        unit=" s",
    )


@view_required
@require_safe
def dashboard_page(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    figures = chart_snapshot.current(now)
    outcomes, days, trends = figures.outcomes, figures.trend_days, figures.trends
    failing = dashboard.failing_now()
    for task in failing:
        task.latest_status_label = status_label(task.latest_status)
    return render(
        request,
        "scheduled_tasks/dashboard.html",
        {
            "now": now,
            "counts": dashboard.counts(now),
            "running": dashboard.running_now(),
            "failing": failing,
            "next_runs": dashboard.next_runs(),
            "runners": dashboard.runners(now),
            # The chart functions escape every text they draw.
            "outcomes_chart": mark_safe(_outcomes_chart(outcomes)),  # noqa: S308
            "trends": trends,
            "charts_at": figures.computed_at,
            "trend_chart": mark_safe(_trend_chart(days, trends)) if trends else "",  # noqa: S308
        },
    )


@never_cache
@view_required
@require_safe
def dashboard_live(request: HttpRequest) -> JsonResponse:
    """The dashboard's counts as JSON (see ``dashboard.counts``), with the moment they were
    counted as the page shows it (in the current time zone, with its name)."""
    now = timezone.now()
    body = dashboard.counts(now)
    body["now_label"] = date_format(timezone.localtime(now), "H:i:s T")
    return JsonResponse(body)
