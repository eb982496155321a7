"""The figures behind the statistics endpoints (scheduled_tasks/statistics.py): known runs at
injected times give exact numbers, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from scheduled_tasks import statistics
from scheduled_tasks.models import Execution, ScheduledTask
from tests.factories import T0, make_execution, make_task

pytestmark = pytest.mark.django_db

S = timedelta(seconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)
Status = Execution.Status
ZERO = dict.fromkeys(Status.values, 0)


def run(task: ScheduledTask, at: datetime, status: str = Status.COMPLETED, **values: Any):
    return make_execution(task, created_at=at, status=status, **values)


# --- overview -------------------------------------------------------------------------------


def test_task_counts_by_state_and_kind() -> None:
    make_task(name="a")
    make_task(name="b", is_active=False)
    make_task(name="c", schedule_kind="cron", cron_expression="0 8 * * *")
    make_task(name="d", schedule_kind="once", run_at=T0 + D, is_active=False)
    assert statistics.task_counts() == {
        "total": 4,
        "active": 2,
        "inactive": 2,
        "by_kind": {"interval": 2, "cron": 1, "once": 1},
    }


def test_windows_hold_the_runs_recorded_after_their_start_up_to_now() -> None:
    task = make_task()
    run(task, T0)  # now: in every window
    run(task, T0 + S)  # the future: in none
    run(task, T0 - 24 * H + S, Status.FAILED)  # just inside 24h
    run(task, T0 - 24 * H, Status.TIMEOUT)  # on the 24h edge: 7d and 30d only
    run(task, T0 - 7 * D, Status.SKIPPED)  # on the 7d edge: 30d only
    run(task, T0 - 30 * D + S, Status.CANCELLED)  # just inside 30d
    run(task, T0 - 30 * D, Status.FAILED)  # on the 30d edge: in none
    run(task, T0 - H, trigger=Execution.Trigger.TEST)  # test runs never count
    run(task, T0 - H, Status.PENDING, trigger=Execution.Trigger.RETRY)

    windows = statistics.window_counts(T0)

    day = windows["24h"]
    assert day["start"] == (T0 - D).isoformat() and day["end"] == T0.isoformat()
    assert day["by_status"] == {**ZERO, "completed": 1, "failed": 1, "pending": 1}
    assert (day["total"], day["finished"], day["success_rate"]) == (3, 2, 0.5)
    week = windows["7d"]
    assert week["by_status"] == {**ZERO, "completed": 1, "failed": 1, "timeout": 1, "pending": 1}
    assert (week["total"], week["finished"], week["success_rate"]) == (4, 3, 0.3333)
    month = windows["30d"]
    assert month["by_status"] == {
        **ZERO,
        "completed": 1,
        "failed": 1,
        "timeout": 1,
        "pending": 1,
        "skipped": 1,
        "cancelled": 1,
    }
    # Skipped slots never ran: out of the rate; a cancelled run is finished, not a success.
    assert (month["total"], month["finished"], month["success_rate"]) == (6, 4, 0.25)


def test_success_rate_is_none_without_finished_runs() -> None:
    task = make_task()
    run(task, T0 - H, Status.SKIPPED)
    run(task, T0 - H, Status.RUNNING)
    assert statistics.window_counts(T0)["24h"]["success_rate"] is None


def test_runs_per_day_cover_thirty_days_with_zeros(settings: Any) -> None:
    settings.TIME_ZONE = "UTC"
    task = make_task()
    run(task, T0)
    run(task, T0 - 9 * H + S, Status.FAILED)  # 00:00:01 today (UTC)
    run(task, T0 - 9 * H - S)  # 23:59:59 yesterday
    run(task, T0 - 29 * D - 9 * H)  # midnight opening the first day
    run(task, T0 - 29 * D - 9 * H - S)  # the day before: not shown
    run(task, T0 - 2 * D, trigger=Execution.Trigger.TEST)

    days = statistics.daily_counts(T0)

    assert len(days) == 30
    assert days[0]["date"] == "2025-12-07" and days[-1]["date"] == "2026-01-05"
    by_date = {d["date"]: d for d in days}
    assert by_date["2026-01-05"] == {
        "date": "2026-01-05",
        "total": 2,
        **ZERO,
        "completed": 1,
        "failed": 1,
    }
    assert by_date["2026-01-04"]["total"] == by_date["2026-01-04"]["completed"] == 1
    assert by_date["2025-12-07"]["total"] == 1
    assert sum(d["total"] for d in days) == 4
    assert by_date["2026-01-03"] == {"date": "2026-01-03", "total": 0, **ZERO}


def test_days_are_the_servers_local_days(settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Madrid"  # UTC+1 in winter, UTC+2 in summer
    task = make_task()
    run(task, datetime(2026, 1, 4, 23, 30, tzinfo=UTC))  # 00:30 on the 5th in Madrid
    run(task, datetime(2026, 1, 4, 22, 59, tzinfo=UTC))  # 23:59 on the 4th in Madrid
    days = {d["date"]: d["total"] for d in statistics.daily_counts(T0)}
    assert (days["2026-01-05"], days["2026-01-04"]) == (1, 1)


def test_local_days_follow_the_offset_across_a_dst_change(settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Madrid"  # summer time ended on 2025-10-26 at 03:00 CEST
    now = datetime(2025, 11, 5, 12, 0, tzinfo=UTC)
    task = make_task()
    run(task, datetime(2025, 10, 25, 22, 30, tzinfo=UTC))  # 00:30 CEST on the 26th
    run(task, datetime(2025, 10, 26, 22, 30, tzinfo=UTC))  # 23:30 CET on the 26th
    run(task, datetime(2025, 10, 25, 21, 30, tzinfo=UTC))  # 23:30 CEST on the 25th
    days = {d["date"]: d["total"] for d in statistics.daily_counts(now)}
    assert (days["2025-10-25"], days["2025-10-26"], days["2025-10-27"]) == (1, 2, 0)


def test_overview_of_an_empty_database() -> None:
    result = statistics.overview(T0)
    assert result["tasks"] == {
        "total": 0,
        "active": 0,
        "inactive": 0,
        "by_kind": {"interval": 0, "cron": 0, "once": 0},
    }
    for window in result["executions"].values():
        assert (window["total"], window["finished"], window["success_rate"]) == (0, 0, None)
    assert len(result["per_day"]) == 30
    assert {d["total"] for d in result["per_day"]} == {0}


def test_overview_costs_three_queries(django_assert_num_queries) -> None:
    task = make_task()
    for hour in range(100):
        run(task, T0 - hour * H, duration_seconds=hour)
    with django_assert_num_queries(3):
        statistics.overview(T0)


# --- performance ----------------------------------------------------------------------------


def timed(task: ScheduledTask, seconds: float | None, status: str = Status.COMPLETED, **kw: Any):
    return run(task, kw.pop("at", T0 - H), status, duration_seconds=seconds, **kw)


def known_performance() -> dict[str, ScheduledTask]:
    tasks = {name: make_task(name=name) for name in ("alpha", "beta", "gamma", "delta")}
    alpha, beta, gamma, delta = tasks.values()
    for seconds in (1, 2, 3):
        timed(alpha, seconds)
    timed(alpha, 4, Status.FAILED)
    timed(alpha, 10, Status.TIMEOUT)
    timed(alpha, None, Status.SKIPPED)
    timed(beta, 5)
    timed(beta, None, Status.ABANDONED)
    timed(beta, 1000, trigger=Execution.Trigger.TEST)  # a test run: left out
    timed(beta, 900, at=T0 - 30 * D)  # on the window's edge: left out
    timed(gamma, None, Status.PENDING)
    timed(delta, 0.5)
    timed(delta, 1.5, Status.CANCELLED, at=T0)
    return tasks


def test_performance_per_task() -> None:
    tasks = known_performance()
    result = statistics.performance(T0)
    assert (result["start"], result["end"], result["days"]) == (
        (T0 - 30 * D).isoformat(),
        T0.isoformat(),
        30,
    )
    by_name = {t["name"]: t for t in result["tasks"]}
    assert [t["name"] for t in result["tasks"]] == ["alpha", "beta", "delta", "gamma"]
    assert by_name["alpha"] == {
        "task_id": tasks["alpha"].pk,
        "name": "alpha",
        "runs": 6,
        "finished": 5,
        "failures": 2,
        "failure_rate": 0.4,
        "timed_runs": 5,
        "p50_seconds": 3.0,
        "p95_seconds": 8.8,  # rank 3.8 of [1, 2, 3, 4, 10]: 4 + 0.8 * 6
        "max_seconds": 10.0,
    }
    beta = by_name["beta"]
    assert (beta["runs"], beta["failure_rate"], beta["p50_seconds"], beta["p95_seconds"]) == (
        2,
        0.5,
        5.0,
        5.0,
    )
    assert by_name["gamma"] == {
        "task_id": tasks["gamma"].pk,
        "name": "gamma",
        "runs": 1,
        "finished": 0,
        "failures": 0,
        "failure_rate": None,
        "timed_runs": 0,
        "p50_seconds": None,
        "p95_seconds": None,
        "max_seconds": None,
    }
    delta = by_name["delta"]
    assert (delta["p50_seconds"], delta["p95_seconds"], delta["failure_rate"]) == (1.0, 1.45, 0.0)


def test_the_slowest_tasks_by_95th_percentile() -> None:
    known_performance()
    assert [t["name"] for t in statistics.performance(T0)["slowest"]] == [
        "alpha",
        "beta",
        "delta",
    ]
    slowest = statistics.performance(T0, limit=2)["slowest"]
    assert [(t["name"], t["p95_seconds"]) for t in slowest] == [("alpha", 8.8), ("beta", 5.0)]
    assert statistics.performance(T0, limit=0)["slowest"] == []


def test_a_shorter_window() -> None:
    task = make_task(name="alpha")
    timed(task, 1, at=T0 - D)  # on the edge of one day: left out
    timed(task, 2, at=T0 - D + S)
    timed(task, 4, at=T0)
    (alpha,) = statistics.performance(T0, days=1)["tasks"]
    assert (alpha["runs"], alpha["p50_seconds"], alpha["max_seconds"]) == (2, 3.0, 4.0)


def test_performance_of_an_empty_database() -> None:
    assert statistics.performance(T0) == {
        "start": (T0 - 30 * D).isoformat(),
        "end": T0.isoformat(),
        "days": 30,
        "tasks": [],
        "slowest": [],
    }


@pytest.mark.parametrize(("days", "limit"), [(0, 10), (-1, 10), (30, -1), (True, 10), (1.5, 1)])
def test_bad_windows_and_limits_are_refused(days: Any, limit: Any) -> None:
    with pytest.raises(ValueError):
        statistics.performance(T0, days=days, limit=limit)


def reference_percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def test_percentiles_match_percentile_cont_on_many_runs() -> None:
    """Uneven, unsorted durations and counts per task: the database's percentile_cont (on
    PostgreSQL) and the streamed computation give the reference's numbers."""
    durations: dict[str, list[float]] = {}
    for t in range(4):
        task = make_task(name=f"t{t}")
        values = [round((i * 7919 + t * 104729) % 1013 / 7.0, 3) for i in range(1 + 37 * t)]
        durations[task.name] = values
        for i, seconds in enumerate(values):
            timed(task, seconds, at=T0 - i * S)

    result = {t["name"]: t for t in statistics.performance(T0)["tasks"]}
    runs = Execution.objects.filter(created_at__gt=T0 - 30 * D)
    streamed = statistics.streamed_percentiles(runs, statistics.PERCENTILES)
    names = dict(ScheduledTask.objects.values_list("pk", "name"))
    for name, values in durations.items():
        for key, fraction in statistics.PERCENTILES.items():
            expected = reference_percentile(values, fraction)
            assert result[name][f"{key}_seconds"] == round(expected, 3), (name, key)
        assert result[name]["max_seconds"] == max(values)
    for task_id, found in streamed.items():
        for key, fraction in statistics.PERCENTILES.items():
            assert found[key] == pytest.approx(
                reference_percentile(durations[names[task_id]], fraction)
            )


def test_percentile_cont_is_the_database_s_own_on_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("percentile_cont is PostgreSQL's")
    task = make_task()
    for seconds in (1, 2, 3, 4, 10):
        timed(task, seconds)
    found = Execution.objects.aggregate(p=statistics.PercentileCont("duration_seconds", 0.95))
    assert found["p"] == pytest.approx(8.8)


def test_performance_queries(django_assert_num_queries) -> None:
    known_performance()
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        statistics.performance(T0)
