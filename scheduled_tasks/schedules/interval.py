"""Every N minutes / hours / days / weeks / months from an anchor.

Runs fall on ``anchor + k * interval`` for k = 0, 1, 2, ... computed from the anchor each time
(never by repeated addition, so month ends do not drift: Jan 31 -> Feb 28 -> Mar 31 -> Apr 30).

* minutes and hours count real elapsed time (UTC arithmetic);
* days, weeks and months keep the anchor's wall-clock time in the schedule's zone. A wall-clock
  time inside a spring-forward gap fires once at the end of the gap; one inside a repeated
  autumn hour fires once, at its first occurrence (cronie semantics).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from dateutil.relativedelta import relativedelta

from scheduled_tasks.schedules.base import (
    ScheduleError,
    as_utc,
    parse_zone,
    resolve_wall_time,
    zone_name,
)


class Unit(enum.StrEnum):
    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"
    WEEKS = "weeks"
    MONTHS = "months"


UNIT_CHOICES: list[tuple[str, str]] = [(u.value, u.value.capitalize()) for u in Unit]
MAX_EVERY = 100_000
# Per unit, at most about a century between runs (datetime ends at year 9999).
MAX_EVERY_BY_UNIT = {
    Unit.MINUTES: MAX_EVERY,
    Unit.HOURS: MAX_EVERY,
    Unit.DAYS: 36_500,
    Unit.WEEKS: 5_200,
    Unit.MONTHS: 1_200,
}


@dataclass(frozen=True)
class IntervalSchedule:
    every: int
    unit: Unit
    anchor: datetime  # aware
    tz: tzinfo

    @classmethod
    def build(cls, every: int, unit: str, anchor: datetime, tz: str | tzinfo) -> IntervalSchedule:
        """Validate raw values and return a schedule, or raise :class:`ScheduleError`."""
        if isinstance(every, bool) or not isinstance(every, int):
            raise ScheduleError(f"the frequency must be a whole number, not {every!r}")
        if every < 1:
            raise ScheduleError(f"the frequency must be at least 1, not {every}")
        try:
            unit_value = Unit(unit)
        except ValueError:
            valid = ", ".join(u.value for u in Unit)
            raise ScheduleError(f"unknown unit {unit!r}; use one of: {valid}") from None
        limit = MAX_EVERY_BY_UNIT[unit_value]
        if every > limit:
            raise ScheduleError(
                f"the frequency must be at most {limit} for {unit_value.value}, not {every}"
            )
        zone = parse_zone(tz) if isinstance(tz, str) else tz
        if anchor.tzinfo is None:
            anchor = resolve_wall_time(anchor, zone)
        return cls(every=every, unit=unit_value, anchor=anchor.astimezone(UTC), tz=zone)

    @property
    def counts_real_time(self) -> bool:
        return self.unit in (Unit.MINUTES, Unit.HOURS)

    def next_after(self, after: datetime, *, inclusive: bool = False) -> datetime:
        return next_fire_time(self, after, inclusive=inclusive)

    def slots_in(self, start: datetime, end: datetime) -> tuple[int, datetime | None]:
        """How many runs fall in ``[start, end]`` and the latest, without walking them."""
        first = _first_index_at_or_after(self, as_utc(start, "start"))
        end = as_utc(end, "end")
        if fire_time(self, first) > end:
            return 0, None
        last = _first_index_at_or_after(self, end)
        if fire_time(self, last) > end:
            last -= 1
        return last - first + 1, fire_time(self, last)

    def describe(self) -> str:
        return describe(self)


def _fixed_step(schedule: IntervalSchedule) -> timedelta:
    if schedule.unit is Unit.MINUTES:
        return timedelta(minutes=schedule.every)
    return timedelta(hours=schedule.every)


def _wall_offset(schedule: IntervalSchedule, k: int) -> relativedelta:
    n = k * schedule.every
    if schedule.unit is Unit.DAYS:
        return relativedelta(days=n)
    if schedule.unit is Unit.WEEKS:
        return relativedelta(weeks=n)
    return relativedelta(months=n)


def fire_time(schedule: IntervalSchedule, k: int) -> datetime:
    """The k-th run of the schedule (k = 0 is the anchor), in UTC."""
    if k == 0:
        # The anchor is an instant; re-resolving its wall time would move an anchor in the
        # second copy of a repeated hour to the first copy.
        return schedule.anchor
    try:
        if schedule.counts_real_time:
            return schedule.anchor + k * _fixed_step(schedule)
        anchor_wall = schedule.anchor.astimezone(schedule.tz).replace(tzinfo=None)
        return resolve_wall_time(anchor_wall + _wall_offset(schedule, k), schedule.tz)
    except (OverflowError, ValueError):
        raise ScheduleError("the schedule has no further runs before the year 9999") from None


def _first_index_estimate(schedule: IntervalSchedule, after: datetime) -> int:
    """A k whose fire time is not after ``after`` (or 0), to start the search near the answer."""
    if after <= schedule.anchor:
        return 0
    if schedule.counts_real_time:
        return int((after - schedule.anchor) // _fixed_step(schedule))
    anchor_wall = schedule.anchor.astimezone(schedule.tz).replace(tzinfo=None)
    after_wall = after.astimezone(schedule.tz).replace(tzinfo=None)
    if schedule.unit is Unit.MONTHS:
        months = (after_wall.year - anchor_wall.year) * 12 + after_wall.month - anchor_wall.month
        return max(0, months // schedule.every - 1)
    days = (after_wall - anchor_wall).days
    per = schedule.every * (7 if schedule.unit is Unit.WEEKS else 1)
    return max(0, days // per - 1)


def next_fire_time(
    schedule: IntervalSchedule, after: datetime, *, inclusive: bool = False
) -> datetime:
    """The first run strictly after ``after`` (or at it, with ``inclusive``), in UTC."""
    after = as_utc(after)
    k = _first_index_estimate(schedule, after)
    # The estimate may undershoot by a step or two (DST, month lengths): walk forward.
    while True:
        candidate = fire_time(schedule, k)
        if candidate > after or (inclusive and candidate == after):
            return candidate
        k += 1


def _first_index_at_or_after(schedule: IntervalSchedule, moment: datetime) -> int:
    k = _first_index_estimate(schedule, moment)
    while fire_time(schedule, k) < moment:
        k += 1
    return k


_UNIT_SINGULAR = {
    Unit.MINUTES: "minute",
    Unit.HOURS: "hour",
    Unit.DAYS: "day",
    Unit.WEEKS: "week",
    Unit.MONTHS: "month",
}


def describe(schedule: IntervalSchedule) -> str:
    """The schedule in plain words, e.g. "Every 2 weeks on Monday at 09:00 (Europe/Madrid)"."""
    unit = _UNIT_SINGULAR[schedule.unit]
    head = f"Every {unit}" if schedule.every == 1 else f"Every {schedule.every} {unit}s"
    local = schedule.anchor.astimezone(schedule.tz)
    zone = zone_name(schedule.tz)
    if schedule.unit is Unit.MINUTES:
        return head
    if schedule.unit is Unit.HOURS:
        return f"{head} at minute {local.minute:02d}"
    at = f"at {local:%H:%M}"
    if schedule.unit is Unit.DAYS:
        return f"{head} {at} ({zone})"
    if schedule.unit is Unit.WEEKS:
        return f"{head} on {local:%A} {at} ({zone})"
    day = local.day
    tail = " (or the month's last day)" if day > 28 else ""
    return f"{head} on day {day}{tail} {at} ({zone})"
