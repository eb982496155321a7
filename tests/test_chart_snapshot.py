"""The dashboard's charts computed ahead of the page: stored by the runners' monitors, read by
the page, recomputed by the page only when no runner did lately or the day moved on."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import time_machine
from django.db import DatabaseError
from django.test import Client
from django.urls import reverse

from scheduled_tasks import chart_snapshot, dashboard
from scheduled_tasks.alerts import monitor as alert_monitor
from scheduled_tasks.models import ChartSnapshot
from tests.factories import T0, H, make_execution, make_task

pytestmark = pytest.mark.django_db

NOW = T0 + 12 * H  # 21:00 UTC: the snapshot's day and the page's are the same
S = timedelta(seconds=1)


def completed_run(name: str, seconds: float, at=NOW - H) -> None:
    task = make_task(name=name)
    make_execution(task, status="completed", duration_seconds=seconds, created_at=at,
                   finished_at=at)  # fmt: skip


def test_current_computes_and_stores_the_charts_when_none_are_stored() -> None:
    completed_run("slow", 9.0)
    charts = chart_snapshot.current(NOW)
    assert charts.computed_at == NOW
    assert charts.outcomes == dashboard.daily_outcomes(NOW)
    assert (charts.trend_days, charts.trends) == dashboard.slowest_trends(NOW)
    assert ChartSnapshot.objects.get(name="dashboard").computed_at == NOW


def test_stored_charts_are_read_back_as_they_were_computed(django_assert_num_queries) -> None:
    completed_run("slow", 9.0)
    completed_run("fast", 0.5)
    stored = chart_snapshot.refresh(NOW)
    with django_assert_num_queries(1):
        read = chart_snapshot.current(NOW + 60 * S)
    assert read == stored
    assert [t.name for t in read.trends] == ["slow", "fast"]


def test_new_runs_show_once_the_charts_are_recomputed() -> None:
    chart_snapshot.refresh(NOW)
    completed_run("late", 3.0, at=NOW)
    assert chart_snapshot.current(NOW + 60 * S).trends == []  # stored a minute ago
    later = NOW + (chart_snapshot.STALE_SECONDS + 1) * S  # nobody refreshed them since
    assert [t.name for t in chart_snapshot.current(later).trends] == ["late"]
    assert ChartSnapshot.objects.get().computed_at == later


@pytest.mark.parametrize(
    "computed_at",
    [
        NOW - (chart_snapshot.STALE_SECONDS + 1) * S,  # no runner refreshed them lately
        T0.replace(hour=23, minute=59) - timedelta(days=1),  # yesterday: the day axis moved
        NOW + H,  # from the future (a clock set wrong)
    ],
)
def test_the_page_recomputes_stale_charts(computed_at) -> None:
    ChartSnapshot.objects.create(name="dashboard", computed_at=computed_at, data={})
    assert chart_snapshot.current(NOW).computed_at == NOW


def test_unreadable_stored_charts_are_computed_again(caplog) -> None:
    ChartSnapshot.objects.create(name="dashboard", computed_at=NOW, data={"days": "nonsense"})
    with caplog.at_level(logging.WARNING, logger="scheduled_tasks"):
        charts = chart_snapshot.current(NOW)
    assert len(charts.outcomes.days) == dashboard.CHART_DAYS
    assert "unreadable" in caplog.text


def test_refresh_if_due_leaves_charts_another_process_computed_lately() -> None:
    assert chart_snapshot.refresh_if_due(NOW) is True
    assert chart_snapshot.refresh_if_due(NOW + 60 * S) is False
    due = NOW + chart_snapshot.REFRESH_SECONDS * S + S
    assert chart_snapshot.refresh_if_due(due) is True
    assert ChartSnapshot.objects.get().computed_at == due


def test_runner_monitor_refreshes_the_charts_on_its_own_schedule(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(chart_snapshot, "refresh_if_due", lambda now: calls.append(now))
    clock = [100.0]
    monitor = alert_monitor.RunnerMonitor(
        "host:9", "daemon", running=lambda: 0, monotonic=lambda: clock[0], charts_seconds=300
    )
    monitor.refresh_charts(NOW)
    clock[0] += 299
    monitor.refresh_charts(NOW + 299 * S)
    clock[0] += 1
    monitor.refresh_charts(NOW + 300 * S)
    assert calls == [NOW, NOW + 300 * S]


def test_runner_monitor_never_raises_when_the_charts_fail(monkeypatch, caplog) -> None:
    def broken(now):
        raise DatabaseError("database is locked")

    monkeypatch.setattr(chart_snapshot, "refresh_if_due", broken)
    monitor = alert_monitor.RunnerMonitor("host:9", "daemon", running=lambda: 0)
    with caplog.at_level(logging.WARNING, logger="scheduled_tasks.alerts"):
        monitor.refresh_charts(NOW)
    assert "dashboard charts: database unavailable" in caplog.text


def test_dashboard_page_says_when_its_charts_were_computed(viewer_client: Client) -> None:
    completed_run("slow", 9.0)
    with time_machine.travel(NOW, tick=False):
        chart_snapshot.refresh(NOW - 120 * S)
        page = viewer_client.get(reverse("scheduled_tasks:dashboard")).content.decode()
    assert 'Charts as of <time datetime="2026-01-05T20:58:00+00:00">20:58 UTC</time>' in page
    assert "slow" in page
