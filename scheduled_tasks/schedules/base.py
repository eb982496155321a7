"""What every schedule kind shares: errors, zones, and turning wall-clock time into instants.

Every instant a schedule returns is in UTC: Python compares and subtracts two datetimes of the
*same* zone by wall time, ignoring the fold, so 02:30 CEST and 02:30 CET would look equal.
Convert only for display.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ScheduleError(ValueError):
    """A schedule that cannot be evaluated; the message is meant for the user."""


class Schedule(Protocol):
    """What every kind's schedule object offers (see ``kinds.py`` for the kinds)."""

    @property
    def tz(self) -> tzinfo: ...

    def next_after(self, after: datetime, *, inclusive: bool = False) -> datetime | None:
        """The first run after ``after`` (or at it, with ``inclusive``) in UTC, or None."""
        ...

    def describe(self) -> str:
        """The schedule in plain words."""
        ...


def parse_zone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name`` or raise :class:`ScheduleError`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


def zone_name(tz: tzinfo) -> str:
    return getattr(tz, "key", None) or str(tz)


def is_imaginary(wall: datetime, tz: tzinfo) -> bool:
    """Whether the naive wall time ``wall`` is skipped by a spring-forward gap in ``tz``."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    return first.astimezone(tz).replace(tzinfo=None) != wall.replace(tzinfo=None)


def resolve_wall_time(wall: datetime, tz: tzinfo) -> datetime:
    """The instant at which a naive wall-clock time happens in ``tz``.

    A time skipped by a spring-forward gap resolves to the end of the gap; a repeated time
    resolves to its first occurrence. The result is in UTC.
    """
    wall = wall.replace(tzinfo=None)
    if not is_imaginary(wall, tz):
        return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    return _end_of_gap(wall, tz)


def wall_instants(wall: datetime, tz: tzinfo) -> list[datetime]:
    """Every real instant showing the naive ``wall`` time in ``tz``: none in a gap, two in a
    repeated hour, otherwise one (UTC, ascending)."""
    wall = wall.replace(tzinfo=None)
    if is_imaginary(wall, tz):
        return []
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return [first] if first == second else sorted({first, second})


def _end_of_gap(wall: datetime, tz: tzinfo) -> datetime:
    # In a gap, fold=1 applies the offset after the change (an instant before the transition)
    # and fold=0 the offset before it (an instant after); bisect between them to the second.
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if lo > hi:
        lo, hi = hi, lo
    after_offset = hi.astimezone(tz).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(tz).utcoffset() == after_offset:
            hi = mid
        else:
            lo = mid
    return hi


def as_utc(moment: datetime, name: str = "after") -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime")
    return moment.astimezone(UTC)
