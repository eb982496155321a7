"""The pure schedule maths of scheduled_tasks.schedules: drift-free grids, DST, errors, wording."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from scheduled_tasks import schedules
from scheduled_tasks.schedules import (
    IntervalSchedule,
    ScheduleError,
    Unit,
    describe,
    fire_time,
    fire_times,
    next_fire_time,
    resolve_wall_time,
    slots_between,
)

MADRID = ZoneInfo("Europe/Madrid")
NEW_YORK = ZoneInfo("America/New_York")


def build(every: int, unit: str, anchor: datetime, tz: str = "UTC") -> IntervalSchedule:
    return IntervalSchedule.build(every, unit, anchor, tz)


def local(times: list[datetime], tz: ZoneInfo) -> list[str]:
    return [moment.astimezone(tz).isoformat() for moment in times]


def just_before(schedule: IntervalSchedule) -> datetime:
    return schedule.anchor - timedelta(seconds=1)


# --- months: computed from the anchor, so month ends never drift --------------------------------


def test_month_end_anchor_keeps_last_day_in_a_common_year() -> None:
    schedule = build(1, "months", datetime(2023, 1, 31, 9, 0))

    assert local(fire_times(schedule, just_before(schedule), 6), ZoneInfo("UTC")) == [
        "2023-01-31T09:00:00+00:00",
        "2023-02-28T09:00:00+00:00",
        "2023-03-31T09:00:00+00:00",
        "2023-04-30T09:00:00+00:00",
        "2023-05-31T09:00:00+00:00",
        "2023-06-30T09:00:00+00:00",
    ]


def test_month_end_anchor_runs_on_february_29_in_a_leap_year() -> None:
    schedule = build(1, "months", datetime(2024, 1, 31, 9, 0), "Europe/Madrid")

    assert local(fire_times(schedule, just_before(schedule), 4), MADRID) == [
        "2024-01-31T09:00:00+01:00",
        "2024-02-29T09:00:00+01:00",
        "2024-03-31T09:00:00+02:00",
        "2024-04-30T09:00:00+02:00",
    ]


def test_month_end_is_recomputed_from_the_anchor_after_many_months() -> None:
    schedule = build(1, "months", datetime(2023, 1, 31, 9, 0))

    assert fire_time(schedule, 13) == datetime(2024, 2, 29, 9, 0, tzinfo=UTC)
    assert fire_time(schedule, 14) == datetime(2024, 3, 31, 9, 0, tzinfo=UTC)
    assert fire_time(schedule, 120) == datetime(2033, 1, 31, 9, 0, tzinfo=UTC)


def test_every_twelve_months_from_february_29_returns_to_29_in_leap_years() -> None:
    schedule = build(12, "months", datetime(2024, 2, 29, 12, 0))

    assert fire_times(schedule, just_before(schedule), 6) == [
        datetime(2024, 2, 29, 12, 0, tzinfo=UTC),
        datetime(2025, 2, 28, 12, 0, tzinfo=UTC),
        datetime(2026, 2, 28, 12, 0, tzinfo=UTC),
        datetime(2027, 2, 28, 12, 0, tzinfo=UTC),
        datetime(2028, 2, 29, 12, 0, tzinfo=UTC),
        datetime(2029, 2, 28, 12, 0, tzinfo=UTC),
    ]


def test_every_three_months_from_the_30th() -> None:
    schedule = build(3, "months", datetime(2025, 11, 30, 6, 0))

    assert [t.date().isoformat() for t in fire_times(schedule, just_before(schedule), 4)] == [
        "2025-11-30",
        "2026-02-28",
        "2026-05-30",
        "2026-08-30",
    ]


# --- days and weeks ------------------------------------------------------------------------------


def test_every_three_days_crosses_month_and_year_ends() -> None:
    schedule = build(3, "days", datetime(2025, 12, 27, 7, 15))

    assert [t.isoformat() for t in fire_times(schedule, just_before(schedule), 5)] == [
        "2025-12-27T07:15:00+00:00",
        "2025-12-30T07:15:00+00:00",
        "2026-01-02T07:15:00+00:00",
        "2026-01-05T07:15:00+00:00",
        "2026-01-08T07:15:00+00:00",
    ]


def test_every_two_weeks_keeps_the_weekday() -> None:
    schedule = build(2, "weeks", datetime(2026, 1, 5, 9, 0), "Europe/Madrid")  # a Monday

    runs = fire_times(schedule, just_before(schedule), 30)

    assert all(run.astimezone(MADRID).strftime("%A %H:%M") == "Monday 09:00" for run in runs)
    dates = [run.astimezone(MADRID).date() for run in runs]
    assert {(b - a).days for a, b in pairwise(dates)} == {14}


# --- minutes and hours count real time across DST -----------------------------------------------


def test_hourly_runs_twice_at_0230_on_the_madrid_fall_back_day() -> None:
    schedule = build(1, "hours", datetime(2024, 10, 26, 22, 30), "Europe/Madrid")

    runs = fire_times(schedule, datetime(2024, 10, 27, 0, 0, tzinfo=MADRID), 5)

    assert local(runs, MADRID) == [
        "2024-10-27T00:30:00+02:00",
        "2024-10-27T01:30:00+02:00",
        "2024-10-27T02:30:00+02:00",
        "2024-10-27T02:30:00+01:00",
        "2024-10-27T03:30:00+01:00",
    ]
    assert {b - a for a, b in pairwise(runs)} == {timedelta(hours=1)}


def test_hourly_skips_no_real_hour_on_the_madrid_spring_forward_day() -> None:
    schedule = build(1, "hours", datetime(2024, 3, 30, 22, 30), "Europe/Madrid")

    runs = fire_times(schedule, datetime(2024, 3, 31, 0, 0, tzinfo=MADRID), 4)

    assert local(runs, MADRID) == [
        "2024-03-31T00:30:00+01:00",
        "2024-03-31T01:30:00+01:00",
        "2024-03-31T03:30:00+02:00",
        "2024-03-31T04:30:00+02:00",
    ]
    assert {b - a for a, b in pairwise(runs)} == {timedelta(hours=1)}


def test_hourly_follows_real_time_through_both_new_york_transitions() -> None:
    schedule = build(1, "hours", datetime(2024, 3, 9, 23, 30), "America/New_York")

    spring = fire_times(schedule, datetime(2024, 3, 10, 0, 0, tzinfo=NEW_YORK), 3)
    fall = fire_times(schedule, datetime(2024, 11, 3, 0, 0, tzinfo=NEW_YORK), 4)

    assert local(spring, NEW_YORK) == [
        "2024-03-10T00:30:00-05:00",
        "2024-03-10T01:30:00-05:00",
        "2024-03-10T03:30:00-04:00",
    ]
    assert local(fall, NEW_YORK) == [
        "2024-11-03T00:30:00-04:00",
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:30:00-05:00",
        "2024-11-03T02:30:00-05:00",
    ]


def test_minutes_count_real_time_across_the_spring_gap() -> None:
    schedule = build(45, "minutes", datetime(2024, 3, 31, 1, 0), "Europe/Madrid")

    runs = fire_times(schedule, just_before(schedule), 3)

    assert local(runs, MADRID) == [
        "2024-03-31T01:00:00+01:00",
        "2024-03-31T01:45:00+01:00",
        "2024-03-31T03:30:00+02:00",
    ]


def test_a_day_with_a_repeated_hour_has_25_hourly_slots() -> None:
    schedule = build(1, "hours", datetime(2024, 10, 1, 0, 0), "Europe/Madrid")
    start = datetime(2024, 10, 27, 0, 0, tzinfo=MADRID)
    end = datetime(2024, 10, 27, 23, 59, tzinfo=MADRID)

    assert slots_between(schedule, start, end) == 25


# --- days, weeks and months keep the wall clock across DST ---------------------------------------


def test_daily_keeps_0900_wall_clock_across_both_madrid_transitions() -> None:
    schedule = build(1, "days", datetime(2024, 3, 29, 9, 0), "Europe/Madrid")

    spring = fire_times(schedule, just_before(schedule), 4)
    fall = fire_times(schedule, datetime(2024, 10, 26, 0, 0, tzinfo=MADRID), 3)

    assert local(spring, MADRID) == [
        "2024-03-29T09:00:00+01:00",
        "2024-03-30T09:00:00+01:00",
        "2024-03-31T09:00:00+02:00",
        "2024-04-01T09:00:00+02:00",
    ]
    assert local(fall, MADRID) == [
        "2024-10-26T09:00:00+02:00",
        "2024-10-27T09:00:00+01:00",
        "2024-10-28T09:00:00+01:00",
    ]


def test_daily_time_in_the_madrid_spring_gap_runs_at_the_end_of_the_gap() -> None:
    schedule = build(1, "days", datetime(2024, 3, 29, 2, 30), "Europe/Madrid")

    runs = fire_times(schedule, just_before(schedule), 4)

    assert local(runs, MADRID) == [
        "2024-03-29T02:30:00+01:00",
        "2024-03-30T02:30:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:30:00+02:00",
    ]


def test_daily_time_in_the_new_york_spring_gap_runs_at_the_end_of_the_gap() -> None:
    schedule = build(1, "days", datetime(2024, 3, 9, 2, 30), "America/New_York")

    runs = fire_times(schedule, just_before(schedule), 3)

    assert local(runs, NEW_YORK) == [
        "2024-03-09T02:30:00-05:00",
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:30:00-04:00",
    ]


def test_weekly_and_monthly_times_in_the_gap_run_at_the_end_of_the_gap() -> None:
    weekly = build(1, "weeks", datetime(2024, 3, 24, 2, 30), "Europe/Madrid")  # Sundays
    monthly = build(1, "months", datetime(2024, 1, 31, 2, 30), "Europe/Madrid")

    assert local(fire_times(weekly, just_before(weekly), 3), MADRID) == [
        "2024-03-24T02:30:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-04-07T02:30:00+02:00",
    ]
    assert local(fire_times(monthly, just_before(monthly), 4), MADRID) == [
        "2024-01-31T02:30:00+01:00",
        "2024-02-29T02:30:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-04-30T02:30:00+02:00",
    ]


def test_daily_time_in_the_repeated_madrid_hour_runs_once_at_its_first_occurrence() -> None:
    schedule = build(1, "days", datetime(2024, 10, 25, 2, 30), "Europe/Madrid")
    day_start = datetime(2024, 10, 27, 0, 0, tzinfo=MADRID)
    day_end = datetime(2024, 10, 27, 23, 59, tzinfo=MADRID)

    runs = fire_times(schedule, just_before(schedule), 4)

    assert local(runs, MADRID) == [
        "2024-10-25T02:30:00+02:00",
        "2024-10-26T02:30:00+02:00",
        "2024-10-27T02:30:00+02:00",
        "2024-10-28T02:30:00+01:00",
    ]
    assert slots_between(schedule, day_start, day_end) == 1
    # Asking from between the two 02:30s must not produce the second one.
    between = datetime(2024, 10, 27, 0, 45, tzinfo=UTC)
    assert local([next_fire_time(schedule, between)], MADRID) == ["2024-10-28T02:30:00+01:00"]


def test_daily_time_in_the_repeated_new_york_hour_runs_once_at_its_first_occurrence() -> None:
    schedule = build(1, "days", datetime(2024, 11, 2, 1, 30), "America/New_York")

    runs = fire_times(schedule, just_before(schedule), 3)

    assert local(runs, NEW_YORK) == [
        "2024-11-02T01:30:00-04:00",
        "2024-11-03T01:30:00-04:00",
        "2024-11-04T01:30:00-05:00",
    ]


# --- resolve_wall_time ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wall", "tz", "expected_utc"),
    [
        (datetime(2024, 7, 1, 9, 0), MADRID, datetime(2024, 7, 1, 7, 0, tzinfo=UTC)),
        (datetime(2024, 3, 31, 2, 30), MADRID, datetime(2024, 3, 31, 1, 0, tzinfo=UTC)),
        (datetime(2024, 3, 31, 2, 0), MADRID, datetime(2024, 3, 31, 1, 0, tzinfo=UTC)),
        (datetime(2024, 3, 31, 2, 59, 59), MADRID, datetime(2024, 3, 31, 1, 0, tzinfo=UTC)),
        (datetime(2024, 10, 27, 2, 30), MADRID, datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),
        (datetime(2024, 3, 10, 2, 30), NEW_YORK, datetime(2024, 3, 10, 7, 0, tzinfo=UTC)),
        (datetime(2024, 11, 3, 1, 30), NEW_YORK, datetime(2024, 11, 3, 5, 30, tzinfo=UTC)),
    ],
)
def test_resolve_wall_time(wall: datetime, tz: ZoneInfo, expected_utc: datetime) -> None:
    resolved = resolve_wall_time(wall, tz)

    assert resolved == expected_utc
    assert resolved.tzinfo is UTC


def test_resolve_wall_time_ignores_a_second_occurrence_fold_on_the_input() -> None:
    wall = datetime(2024, 10, 27, 2, 30, fold=1)

    assert resolve_wall_time(wall, MADRID) == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)


# --- next_fire_time ------------------------------------------------------------------------------


def test_next_fire_time_is_strictly_after_a_fire_time() -> None:
    schedule = build(1, "hours", datetime(2026, 1, 5, 9, 0))
    slot = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    assert next_fire_time(schedule, slot) == slot + timedelta(hours=1)
    assert next_fire_time(schedule, slot - timedelta(microseconds=1)) == slot


def test_inclusive_returns_a_fire_time_equal_to_after() -> None:
    schedule = build(1, "days", datetime(2026, 1, 5, 9, 0), "Europe/Madrid")
    slot = datetime(2026, 1, 7, 8, 0, tzinfo=UTC)

    assert next_fire_time(schedule, slot, inclusive=True) == slot
    assert next_fire_time(schedule, slot + timedelta(seconds=1), inclusive=True) == datetime(
        2026, 1, 8, 8, 0, tzinfo=UTC
    )


def test_before_the_anchor_the_next_fire_time_is_the_anchor() -> None:
    schedule = build(2, "weeks", datetime(2026, 6, 1, 9, 0))

    assert next_fire_time(schedule, datetime(2000, 1, 1, tzinfo=UTC)) == schedule.anchor
    assert next_fire_time(schedule, schedule.anchor, inclusive=True) == schedule.anchor
    assert next_fire_time(schedule, schedule.anchor) == schedule.anchor + timedelta(weeks=2)


def test_after_in_any_zone_gives_a_utc_result() -> None:
    schedule = build(1, "days", datetime(2026, 1, 5, 9, 0), "Europe/Madrid")

    result = next_fire_time(schedule, datetime(2026, 1, 6, 3, 0, tzinfo=NEW_YORK))

    assert result == datetime(2026, 1, 7, 8, 0, tzinfo=UTC)
    assert result.tzinfo is UTC


def test_naive_after_is_refused() -> None:
    schedule = build(1, "days", datetime(2026, 1, 5, 9, 0))

    with pytest.raises(ValueError, match="aware"):
        next_fire_time(schedule, datetime(2026, 1, 6))


_PROPERTY_ZONES = [
    "UTC",
    "Europe/Madrid",
    "America/New_York",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Asia/Kolkata",  # a half-hour offset, no DST
    "America/St_Johns",
    "Pacific/Apia",  # skipped the whole of 2011-12-30
]


def _schedule_id(schedule: IntervalSchedule) -> str:
    zone = getattr(schedule.tz, "key", str(schedule.tz))
    return f"{schedule.every}-{schedule.unit}-{schedule.anchor:%Y%m%dT%H%M}Z-{zone}"


def _random_schedules(count: int) -> list[IntervalSchedule]:
    rng = random.Random(20260105)
    built = []
    for _ in range(count):
        wall = datetime(2010, 1, 1) + timedelta(minutes=rng.randrange(20 * 365 * 24 * 60))
        if rng.random() < 0.3 and wall.month in (1, 3, 5, 7, 8, 10, 12):
            wall = wall.replace(day=rng.choice([29, 30, 31]))
        if rng.random() < 0.2:
            wall = wall.replace(hour=rng.choice([0, 1, 2, 3]), minute=rng.choice([0, 30, 45]))
        every = rng.choice([1, 1, 2, 3, 5, 7, 12, 13, 45, 90])
        built.append(build(every, rng.choice(list(Unit)), wall, rng.choice(_PROPERTY_ZONES)))
    return built


@pytest.mark.parametrize("schedule", _random_schedules(400), ids=_schedule_id)
def test_next_fire_time_is_the_first_grid_point_after_and_the_grid_is_monotonic(
    schedule: IntervalSchedule,
) -> None:
    grid = [fire_time(schedule, k) for k in range(40)]
    rng = random.Random(schedule.anchor.timestamp())

    assert all(a < b for a, b in pairwise(grid))
    for _ in range(8):
        after = grid[0] - timedelta(hours=1) + (grid[-1] - grid[0]) * rng.random() * 0.95
        expected = next(point for point in grid if point > after)
        assert next_fire_time(schedule, after) == expected
    sequence = fire_times(schedule, grid[0] - timedelta(seconds=1), 39)
    assert sequence == grid[:39]


@pytest.mark.parametrize("schedule", _random_schedules(200), ids=_schedule_id)
def test_grid_points_keep_the_wall_clock_or_sit_at_the_end_of_a_gap(
    schedule: IntervalSchedule,
) -> None:
    step = {Unit.MINUTES: timedelta(minutes=1), Unit.HOURS: timedelta(hours=1)}
    grid = [fire_time(schedule, k) for k in range(30)]
    if schedule.counts_real_time:
        assert {b - a for a, b in pairwise(grid)} == {schedule.every * step[schedule.unit]}
        return
    anchor_wall = schedule.anchor.astimezone(schedule.tz).time()
    for point in grid:
        wall = point.astimezone(schedule.tz)
        if wall.time() != anchor_wall:
            # Only allowed at the end of a gap: the offset changed at exactly this instant.
            before = (point - timedelta(seconds=1)).astimezone(schedule.tz)
            assert before.utcoffset() != wall.utcoffset(), (schedule, wall)


def test_long_sequences_are_strictly_increasing_for_every_unit() -> None:
    anchor = datetime(2024, 1, 31, 2, 30)
    for unit in Unit:
        for zone in ("Europe/Madrid", "America/New_York"):
            schedule = build(1, unit.value, anchor, zone)
            runs = fire_times(schedule, just_before(schedule), 1000)
            assert all(a < b for a, b in pairwise(runs)), (unit, zone)


# --- far future: the estimate lands next to the answer -------------------------------------------


MONDAY_0900 = datetime(2026, 1, 5, 9, 0)
MONTH_END_0900 = datetime(2026, 1, 31, 9, 0)


@pytest.mark.parametrize(
    ("every", "unit", "anchor", "after", "expected"),
    [
        (1, "minutes", MONTH_END_0900, datetime(2076, 1, 5, 9, 0, 30, tzinfo=UTC),
         "2076-01-05T10:01:00+01:00"),
        (7, "hours", MONTH_END_0900, datetime(2076, 1, 1, tzinfo=UTC), "2076-01-01T04:00:00+01:00"),
        (3, "days", MONDAY_0900, datetime(2076, 1, 1, tzinfo=UTC), "2076-01-01T09:00:00+01:00"),
        (2, "weeks", MONDAY_0900, datetime(2076, 7, 1, tzinfo=UTC), "2076-07-13T09:00:00+02:00"),
        (1, "months", MONTH_END_0900, datetime(2076, 2, 15, tzinfo=UTC),
         "2076-02-29T09:00:00+01:00"),
    ],
)  # fmt: skip
def test_fifty_years_ahead_is_found_with_few_candidates(
    monkeypatch: pytest.MonkeyPatch,
    every: int,
    unit: str,
    anchor: datetime,
    after: datetime,
    expected: str,
) -> None:
    # Expected values computed by hand: date arithmetic on the wall dates, UTC steps for hours.
    schedule = build(every, unit, anchor, "Europe/Madrid")
    calls = []
    real_fire_time = schedules.fire_time

    def counting_fire_time(s: IntervalSchedule, k: int) -> datetime:
        calls.append(k)
        return real_fire_time(s, k)

    monkeypatch.setattr(schedules.interval, "fire_time", counting_fire_time)

    result = next_fire_time(schedule, after)

    assert result.astimezone(MADRID).isoformat() == expected
    assert result > after
    assert real_fire_time(schedule, calls[-1] - 1) <= after
    # Not a timing assertion: the search starts next to the answer instead of at the anchor.
    assert len(calls) <= 4


# --- slots_between -------------------------------------------------------------------------------


def test_slots_between_counts_both_ends() -> None:
    schedule = build(1, "hours", datetime(2026, 1, 5, 9, 0))
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)

    assert slots_between(schedule, start, start + timedelta(hours=3)) == 4
    assert slots_between(schedule, start, start) == 1
    assert slots_between(schedule, start + timedelta(minutes=1), start + timedelta(hours=3)) == 3


def test_slots_between_is_zero_for_an_empty_or_reversed_window() -> None:
    schedule = build(1, "days", datetime(2026, 1, 5, 9, 0))
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)

    assert slots_between(schedule, start, start + timedelta(hours=20)) == 0
    assert slots_between(schedule, start, start - timedelta(days=3)) == 0


def test_slots_between_before_the_anchor_counts_from_the_anchor() -> None:
    schedule = build(1, "days", datetime(2026, 1, 5, 9, 0))

    count = slots_between(
        schedule, datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 7, 9, 0, tzinfo=UTC)
    )

    assert count == 3


def test_slots_between_a_month_of_month_end_runs() -> None:
    schedule = build(1, "months", datetime(2024, 1, 31, 23, 0), "Europe/Madrid")
    start = datetime(2024, 1, 1, tzinfo=UTC)

    assert slots_between(schedule, start, datetime(2024, 12, 31, 23, 59, tzinfo=UTC)) == 12


# --- describe ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("every", "unit", "anchor", "zone", "expected"),
    [
        (1, "minutes", datetime(2026, 1, 5, 9, 0), "UTC", "Every minute"),
        (15, "minutes", datetime(2026, 1, 5, 9, 7), "UTC", "Every 15 minutes"),
        (1, "hours", datetime(2026, 1, 5, 9, 5), "UTC", "Every hour at minute 05"),
        (2, "hours", datetime(2026, 1, 5, 9, 30), "Asia/Kolkata", "Every 2 hours at minute 30"),
        (1, "days", datetime(2026, 1, 5, 9, 0), "Europe/Madrid", "Every day at 09:00 (Europe/Madrid)"),
        (3, "days", datetime(2026, 1, 5, 18, 45), "UTC", "Every 3 days at 18:45 (UTC)"),
        (1, "weeks", datetime(2026, 1, 9, 7, 0), "UTC", "Every week on Friday at 07:00 (UTC)"),
        (2, "weeks", datetime(2026, 1, 5, 9, 0), "Europe/Madrid",
         "Every 2 weeks on Monday at 09:00 (Europe/Madrid)"),
        (1, "months", datetime(2026, 1, 15, 9, 0), "UTC", "Every month on day 15 at 09:00 (UTC)"),
        (1, "months", datetime(2026, 1, 28, 9, 0), "UTC", "Every month on day 28 at 09:00 (UTC)"),
        (1, "months", datetime(2026, 1, 31, 9, 0), "Europe/Madrid",
         "Every month on day 31 (or the month's last day) at 09:00 (Europe/Madrid)"),
        (12, "months", datetime(2024, 2, 29, 9, 0), "UTC",
         "Every 12 months on day 29 (or the month's last day) at 09:00 (UTC)"),
    ],
)  # fmt: skip
def test_describe(every: int, unit: str, anchor: datetime, zone: str, expected: str) -> None:
    assert describe(build(every, unit, anchor, zone)) == expected


def test_describe_shows_an_aware_anchor_in_the_schedule_zone() -> None:
    schedule = build(1, "days", datetime(2026, 1, 5, 8, 0, tzinfo=UTC), "Europe/Madrid")

    assert describe(schedule) == "Every day at 09:00 (Europe/Madrid)"


# --- IntervalSchedule.build ----------------------------------------------------------------------


def test_build_normalises_values() -> None:
    schedule = build(2, "days", datetime(2024, 3, 31, 2, 30), "Europe/Madrid")

    assert schedule.unit is Unit.DAYS
    assert schedule.tz == MADRID
    assert schedule.anchor == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
    assert schedule.anchor.tzinfo is UTC
    assert not schedule.counts_real_time
    assert build(1, "hours", datetime(2026, 1, 1), "UTC").counts_real_time


def test_build_accepts_a_tzinfo_and_the_largest_frequency() -> None:
    schedule = IntervalSchedule.build(
        schedules.MAX_EVERY, Unit.MINUTES, datetime(2026, 1, 1, tzinfo=UTC), MADRID
    )

    assert schedule.every == schedules.MAX_EVERY
    assert schedule.tz is MADRID


@pytest.mark.parametrize(
    ("every", "unit", "zone", "message"),
    [
        (0, "days", "UTC", "the frequency must be at least 1, not 0"),
        (-1, "days", "UTC", "the frequency must be at least 1, not -1"),
        (100_001, "hours", "UTC", "the frequency must be at most 100000 for hours, not 100001"),
        (True, "days", "UTC", "the frequency must be a whole number, not True"),
        (False, "days", "UTC", "the frequency must be a whole number, not False"),
        ("3", "days", "UTC", "the frequency must be a whole number, not '3'"),
        (2.0, "days", "UTC", "the frequency must be a whole number, not 2.0"),
        (None, "days", "UTC", "the frequency must be a whole number, not None"),
        (1, "fortnights", "UTC", "unknown unit 'fortnights'; use one of: minutes, hours, days, "
                                 "weeks, months"),
        (1, "Hours", "UTC", "unknown unit 'Hours'"),
        (1, "", "UTC", "unknown unit ''"),
        (1, None, "UTC", "unknown unit None"),
        (1, "days", "Mars/Olympus_Mons", "unknown time zone 'Mars/Olympus_Mons'"),
        (1, "days", "", "unknown time zone ''"),
        (1, "days", "../../etc/passwd", "unknown time zone '../../etc/passwd'"),
    ],
)  # fmt: skip
def test_build_refuses_bad_values_with_a_clear_message(
    every: object, unit: object, zone: str, message: str
) -> None:
    with pytest.raises(ScheduleError) as excinfo:
        IntervalSchedule.build(every, unit, datetime(2026, 1, 1), zone)  # type: ignore[arg-type]

    assert str(excinfo.value) == message or str(excinfo.value).startswith(message)


def test_schedule_error_is_a_value_error() -> None:
    assert issubclass(ScheduleError, ValueError)


# --- regressions ------------------------------------------------------------------------------


@pytest.mark.parametrize(("unit", "limit"), [("days", 36_500), ("weeks", 5_200), ("months", 1_200)])
def test_frequency_is_capped_per_unit_so_runs_stay_before_year_9999(unit: str, limit: int) -> None:
    with pytest.raises(ScheduleError, match=f"at most {limit} for {unit}"):
        build(limit + 1, unit, datetime(2026, 1, 5, 9, 0))
    assert build(limit, unit, datetime(2026, 1, 5, 9, 0)).every == limit


@pytest.mark.parametrize("unit", ["months", "weeks", "days", "hours"])
def test_a_schedule_whose_next_runs_pass_year_9999_raises_schedule_error(unit: str) -> None:
    every = schedules.MAX_EVERY_BY_UNIT[Unit(unit)]
    schedule = build(every, unit, datetime(9990, 1, 5, 9, 0))

    with pytest.raises(ScheduleError, match="no further runs"):
        fire_times(schedule, schedule.anchor, 5)


def test_an_anchor_at_the_second_occurrence_of_a_repeated_hour_is_the_first_run() -> None:
    anchor = datetime(2024, 10, 27, 2, 30, tzinfo=MADRID, fold=1)  # 02:30+01:00 = 01:30 UTC
    schedule = build(1, "days", anchor, "Europe/Madrid")

    assert fire_time(schedule, 0) == schedule.anchor
    assert next_fire_time(schedule, schedule.anchor, inclusive=True) == schedule.anchor
    # The following days keep the wall clock at the first 02:30 ... of later days.
    assert fire_time(schedule, 1) == datetime(2024, 10, 28, 1, 30, tzinfo=UTC)


def test_slots_between_refuses_a_naive_end() -> None:
    schedule = build(1, "hours", datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="aware"):
        schedules.slots_between(schedule, schedule.anchor, datetime(2026, 1, 2))
