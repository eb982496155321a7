"""Pure time maths: when does a schedule fire?

Three kinds, one interface (``next_after(after, inclusive=False)`` and ``describe()``):

* :class:`IntervalSchedule` — every N minutes/hours/days/weeks/months from an anchor;
* :class:`CronSchedule` — a 5-field cron expression in a time zone;
* :class:`OneOffSchedule` — once, at a date and time.

Each kind is declared once in :mod:`scheduled_tasks.schedules.kinds` (its columns, form
fields, JSON keys, ...); the rest of the app reads that table.

Nothing here reads the clock: every function takes the moment it reasons about. Every instant
returned is in UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from scheduled_tasks.schedules import kinds
from scheduled_tasks.schedules.base import (
    Schedule,
    ScheduleError,
    as_utc,
    is_imaginary,
    parse_zone,
    resolve_wall_time,
    wall_instants,
    zone_name,
)
from scheduled_tasks.schedules.cron import CronSchedule
from scheduled_tasks.schedules.interval import (
    MAX_EVERY,
    MAX_EVERY_BY_UNIT,
    UNIT_CHOICES,
    IntervalSchedule,
    Unit,
    fire_time,
)
from scheduled_tasks.schedules.kinds import ScheduleKind
from scheduled_tasks.schedules.once import OneOffSchedule

__all__ = [
    "KIND_CHOICES",
    "MAX_EVERY",
    "MAX_EVERY_BY_UNIT",
    "UNIT_CHOICES",
    "CronSchedule",
    "IntervalSchedule",
    "OneOffSchedule",
    "Schedule",
    "ScheduleError",
    "ScheduleKind",
    "Unit",
    "as_utc",
    "build",
    "describe",
    "fire_time",
    "fire_times",
    "is_imaginary",
    "kinds",
    "missed_slots",
    "next_fire_time",
    "parse_zone",
    "resolve_wall_time",
    "slots_between",
    "wall_instants",
    "zone_name",
]

# The model field's choices: the built-in kinds, fixed when the model is defined (a migration
# records them). Forms read ``kinds.choices()``, which also lists kinds registered later.
KIND_CHOICES: list[tuple[str, str]] = kinds.choices()


def build(
    kind: str,
    *,
    tz: str | tzinfo,
    every: int | None = None,
    unit: str | None = None,
    anchor: datetime | None = None,
    cron: str | None = None,
    at: datetime | None = None,
) -> Schedule:
    """A schedule of ``kind`` from raw values, or :class:`ScheduleError` saying what is wrong.

    (A shorthand for tests and scripts; a task builds its own through ``kinds.get(...).build``
    from the columns its kind names.)"""
    values = {"every": every, "unit": unit, "anchor": anchor, "cron_expression": cron, "run_at": at}
    return kinds.get(kind).build(values, tz)


def next_fire_time(
    schedule: Schedule, after: datetime, *, inclusive: bool = False
) -> datetime | None:
    """The first run strictly after ``after`` (or at it, with ``inclusive``), in UTC; None when
    the schedule never fires again (a one-off in the past, a cron date that never comes)."""
    moment = schedule.next_after(after, inclusive=inclusive)
    # A guard for every kind: time only moves forward.
    if moment is not None and (moment < as_utc(after) or (not inclusive and moment == after)):
        raise ScheduleError(f"schedule went backwards: {moment.isoformat()} after {after}")
    return moment


def fire_times(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` runs strictly after ``after`` (fewer if the schedule ends)."""
    times: list[datetime] = []
    moment: datetime | None = after
    while len(times) < count:
        moment = next_fire_time(schedule, moment)
        if moment is None:
            break
        times.append(moment)
    return times


# Counting missed slots of a cron schedule stops here: after very long downtime of a very
# frequent schedule the exact number matters less than not spending seconds to count it.
MAX_COUNTED_SLOTS = 10_000


def slots_between(schedule: Schedule, start: datetime, end: datetime) -> int:
    """How many runs fall in ``[start, end]`` (for a cron schedule at most
    ``MAX_COUNTED_SLOTS``)."""
    return missed_slots(schedule, start, end)[0]


def missed_slots(schedule: Schedule, start: datetime, end: datetime) -> tuple[int, datetime | None]:
    """How many runs fall in ``[start, end]`` and the latest of them, in one pass.

    Interval schedules answer by arithmetic; others count up to ``MAX_COUNTED_SLOTS`` and then
    look for the latest run near ``end`` instead of walking every slot.
    """
    if isinstance(schedule, IntervalSchedule):
        return schedule.slots_in(start, end)
    end = as_utc(end, "end")
    count, last = 0, None
    moment = next_fire_time(schedule, start, inclusive=True)
    while moment is not None and moment <= end:
        count, last = count + 1, moment
        if count >= MAX_COUNTED_SLOTS:
            return count, _latest_before(schedule, last, end)
        moment = next_fire_time(schedule, moment)
    return count, last


def _latest_before(schedule: Schedule, known: datetime, end: datetime) -> datetime:
    """The latest run in ``[known, end]``: look back from ``end`` in growing windows."""
    window = timedelta(hours=1)
    while True:
        start = max(known, end - window)
        latest = None
        moment = next_fire_time(schedule, start, inclusive=True)
        while moment is not None and moment <= end:
            latest = moment
            moment = next_fire_time(schedule, moment)
        if latest is not None or start == known:
            return latest or known
        window *= 4


def describe(schedule: Schedule) -> str:
    """The schedule in plain words."""
    return schedule.describe()
