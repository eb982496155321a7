"""Cron and one-off schedules: cronsim semantics, cronie's daylight-saving rules, one-offs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduled_tasks import schedules
from scheduled_tasks.schedules import CronSchedule, OneOffSchedule, ScheduleError

MADRID = ZoneInfo("Europe/Madrid")
NEW_YORK = ZoneInfo("America/New_York")


def local_times(expr: str, zone: str, after: datetime, count: int) -> list[str]:
    schedule = CronSchedule.build(expr, zone)
    return [
        t.astimezone(schedule.tz).isoformat() for t in schedules.fire_times(schedule, after, count)
    ]


def test_weekday_mornings_in_a_zone():
    assert local_times(
        "30 8 * * MON-FRI", "Europe/Madrid", datetime(2026, 1, 2, 12, tzinfo=UTC), 3
    ) == [
        "2026-01-05T08:30:00+01:00",
        "2026-01-06T08:30:00+01:00",
        "2026-01-07T08:30:00+01:00",
    ]


def test_steps_ranges_lists_and_names():
    assert local_times("*/20 9-10 1,15 JAN,FEB *", "UTC", datetime(2026, 1, 1, tzinfo=UTC), 7) == [
        "2026-01-01T09:00:00+00:00",
        "2026-01-01T09:20:00+00:00",
        "2026-01-01T09:40:00+00:00",
        "2026-01-01T10:00:00+00:00",
        "2026-01-01T10:20:00+00:00",
        "2026-01-01T10:40:00+00:00",
        "2026-01-15T09:00:00+00:00",
    ]


def test_day_of_month_or_day_of_week_when_both_are_restricted():
    # Like cron: the 13th OR any Friday, not "Friday the 13th".
    assert local_times("0 0 13 * FRI", "UTC", datetime(2026, 2, 1, tzinfo=UTC), 4) == [
        "2026-02-06T00:00:00+00:00",
        "2026-02-13T00:00:00+00:00",
        "2026-02-20T00:00:00+00:00",
        "2026-02-27T00:00:00+00:00",
    ]
    assert local_times("0 0 13 * *", "UTC", datetime(2026, 2, 1, tzinfo=UTC), 2) == [
        "2026-02-13T00:00:00+00:00",
        "2026-03-13T00:00:00+00:00",
    ]


def test_fixed_time_in_the_spring_gap_runs_once_at_the_end_of_the_gap():
    assert local_times("30 2 * * *", "Europe/Madrid", datetime(2024, 3, 30, 12, tzinfo=UTC), 2) == [
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:30:00+02:00",
    ]
    assert local_times(
        "30 2 * * *", "America/New_York", datetime(2024, 3, 9, 12, tzinfo=UTC), 2
    ) == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:30:00-04:00",
    ]


def test_fixed_time_in_the_repeated_hour_runs_once_at_the_first_occurrence():
    assert local_times(
        "30 2 * * *", "Europe/Madrid", datetime(2024, 10, 26, 12, tzinfo=UTC), 2
    ) == [
        "2024-10-27T02:30:00+02:00",
        "2024-10-28T02:30:00+01:00",
    ]
    # Asking again from inside the repeated hour does not give the second 02:30.
    schedule = CronSchedule.build("30 2 * * *", "Europe/Madrid")
    inside = datetime(2024, 10, 27, 1, 0, tzinfo=UTC)  # 02:00 CET, the second pass
    assert schedules.next_fire_time(schedule, inside).astimezone(MADRID).isoformat() == (
        "2024-10-28T02:30:00+01:00"
    )


def test_hourly_job_follows_real_time_through_both_transitions():
    fall = local_times("0 * * * *", "Europe/Madrid", datetime(2024, 10, 26, 23, 30, tzinfo=UTC), 4)
    assert fall == [
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:00:00+01:00",
        "2024-10-27T03:00:00+01:00",
        "2024-10-27T04:00:00+01:00",
    ]
    spring = local_times(
        "*/30 * * * *", "Europe/Madrid", datetime(2024, 3, 31, 0, 10, tzinfo=UTC), 3
    )
    assert spring == [
        "2024-03-31T01:30:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-03-31T03:30:00+02:00",
    ]


def test_every_result_is_strictly_later_and_in_utc():
    for expr in ["* * * * *", "*/7 * * * *", "0 */3 * * *", "15 2 * * *", "0 0 1 * *"]:
        schedule = CronSchedule.build(expr, "Europe/Madrid")
        moment = datetime(2024, 10, 26, 22, tzinfo=UTC)
        for _ in range(300):
            following = schedules.next_fire_time(schedule, moment)
            assert following is not None
            assert following.tzinfo is UTC
            assert following > moment
            moment = following


def test_inclusive_returns_a_matching_moment_itself():
    schedule = CronSchedule.build("0 9 * * *", "UTC")
    at_nine = datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert schedules.next_fire_time(schedule, at_nine, inclusive=True) == at_nine
    assert schedules.next_fire_time(schedule, at_nine) == at_nine + timedelta(days=1)


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("0 0 31 2 *", "never runs: day 31 of the month never falls in month 2"),
        ("0 0 30 2 *", "never runs"),
        ("0 0 32 * *", "Bad day-of-month"),
        ("61 * * * *", "Bad minute"),
        ("* 24 * * *", "Bad hour"),
        ("* * * 13 *", "Bad month"),
        ("* * * * 8", "Bad day-of-week"),
        ("* * *", "5 fields"),
        ("* * * * * *", "5 fields"),
        ("@daily", "5 fields"),
        ("", "empty"),
        ("a b c d e", "invalid cron expression"),
    ],
)
def test_invalid_expressions_are_refused_clearly(expr: str, fragment: str):
    with pytest.raises(ScheduleError, match=fragment):
        CronSchedule.build(expr, "UTC")


def test_unknown_zone_is_refused():
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Base'"):
        CronSchedule.build("* * * * *", "Mars/Base")


def test_describe_in_words_with_zone():
    assert CronSchedule.build("30 8 * * MON-FRI", "Europe/Madrid").describe() == (
        "At 08:30 AM, Monday through Friday (Europe/Madrid)"
    )


def test_one_off_fires_once_then_never():
    once = OneOffSchedule.build(datetime(2026, 12, 1, 9, 0), "Europe/Madrid")
    assert once.at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert schedules.fire_times(once, datetime(2026, 1, 1, tzinfo=UTC), 3) == [once.at]
    assert schedules.next_fire_time(once, once.at) is None
    assert schedules.next_fire_time(once, once.at, inclusive=True) == once.at
    assert once.describe() == "Once, at 2026-12-01 09:00 (Europe/Madrid)"


def test_one_off_in_a_gap_runs_at_the_end_of_the_gap():
    once = OneOffSchedule.build(datetime(2024, 3, 31, 2, 30), "Europe/Madrid")
    assert once.at.astimezone(MADRID).isoformat() == "2024-03-31T03:00:00+02:00"


def test_build_dispatches_by_kind_and_refuses_unknown_kinds():
    assert isinstance(schedules.build("cron", tz="UTC", cron="* * * * *"), CronSchedule)
    assert isinstance(schedules.build("once", tz="UTC", at=datetime(2026, 1, 1)), OneOffSchedule)
    with pytest.raises(ScheduleError, match="unknown schedule kind"):
        schedules.build("sometimes", tz="UTC")
    with pytest.raises(ScheduleError, match="needs a date and time"):
        schedules.build("once", tz="UTC")


def test_slots_between_counts_cron_slots():
    schedule = CronSchedule.build("*/10 * * * *", "UTC")
    start = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert schedules.slots_between(schedule, start, start + timedelta(hours=1)) == 7
    assert schedules.missed_slots(schedule, start, start + timedelta(minutes=25))[1] == (
        start + timedelta(minutes=20)
    )


def _matches(expr: str, wall: datetime) -> bool:
    """Whether cron ``expr`` matches the naive wall time ``wall`` (cronsim as the oracle)."""
    from cronsim import CronSim

    return next(CronSim(expr, wall - timedelta(minutes=1))) == wall


TRANSITIONS = [
    ("Europe/Madrid", datetime(2024, 3, 30, tzinfo=UTC)),
    ("Europe/Madrid", datetime(2024, 10, 26, tzinfo=UTC)),
    ("America/New_York", datetime(2024, 3, 9, tzinfo=UTC)),
    ("America/New_York", datetime(2024, 11, 2, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2024, 4, 6, tzinfo=UTC)),  # a 30-minute shift
    ("Australia/Lord_Howe", datetime(2024, 10, 5, tzinfo=UTC)),
]


@pytest.mark.parametrize(("zone", "start"), TRANSITIONS)
@pytest.mark.parametrize("expr", ["*/15 * * * *", "0 * * * *", "5 */2 * * *", "30 2 * * *"])
def test_cron_matches_a_minute_by_minute_brute_force_around_transitions(
    zone: str, start: datetime, expr: str
):
    tz = ZoneInfo(zone)
    schedule = CronSchedule.build(expr, zone)
    end = start + timedelta(days=2)
    minute = start
    expected: list[datetime] = []
    while minute < end:
        if _matches(expr, minute.astimezone(tz).replace(tzinfo=None)):
            expected.append(minute)
        minute += timedelta(minutes=1)
    if schedule.follows_wall_clock:
        # Wall-clock jobs: a repeated time runs once (drop the second pass), a skipped time
        # runs at the end of the gap.
        days = {m.astimezone(tz).date() for m in expected}
        expected = []
        for day in sorted(days):
            wall = datetime.combine(day, datetime.min.time()).replace(hour=2, minute=30)
            expected.append(schedules.resolve_wall_time(wall, tz))
        gap_day = [
            d
            for d in {(start + timedelta(hours=h)).astimezone(tz).date() for h in range(48)}
            if schedules.is_imaginary(
                datetime.combine(d, datetime.min.time()).replace(hour=2, minute=30), tz
            )
        ]
        for day in gap_day:
            wall = datetime.combine(day, datetime.min.time()).replace(hour=2, minute=30)
            expected.append(schedules.resolve_wall_time(wall, tz))
        expected = sorted(m for m in set(expected) if start <= m < end)
    got = []
    moment = start - timedelta(seconds=1)
    while True:
        moment = schedules.next_fire_time(schedule, moment)
        if moment is None or moment >= end:
            break
        got.append(moment)
    assert got == expected
