"""Five-field cron expressions in a time zone, evaluated by ``cronsim``.

Daylight-saving rules are cronie's (Debian cron):

* a job at a fixed time (neither the minute nor the hour field starts with ``*``) follows the
  wall clock: a time inside a spring-forward gap runs once at the end of the gap, a time inside
  a repeated autumn hour runs once, at its first occurrence;
* a job whose minute or hour field starts with ``*`` (hourly or more often) follows real time:
  nothing runs for wall times that do not exist, and the repeated hour runs again.

Day-of-month and day-of-week combine as in cron: when both are restricted, either may match.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from cronsim import CronSim, CronSimError

from scheduled_tasks.schedules.base import (
    ScheduleError,
    as_utc,
    parse_zone,
    resolve_wall_time,
    wall_instants,
    zone_name,
)

# Far enough back that a wall time before ``after`` can never map to an instant after it.
_LOOKBACK = timedelta(hours=3)


def _valid_on_any_day(fields: list[str]) -> bool:
    try:
        CronSim(" ".join([*fields[:3], "*", fields[4]]), datetime(2000, 1, 1))
    except (CronSimError, ValueError, IndexError, KeyError):
        return False
    return True


def _offset_changes_near(moment: datetime, tz: tzinfo) -> bool:
    offsets = {(moment + delta).astimezone(tz).utcoffset() for delta in (-_LOOKBACK, _LOOKBACK)}
    return len(offsets | {moment.astimezone(tz).utcoffset()}) > 1


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    tz: tzinfo

    @classmethod
    def build(cls, expression: str, tz: str | tzinfo) -> CronSchedule:
        """Validate a 5-field expression (steps, ranges, lists, names) or raise ScheduleError."""
        if not isinstance(expression, str) or not expression.strip():
            raise ScheduleError("the cron expression is empty")
        normalized = " ".join(expression.split())
        fields = normalized.split(" ")
        if len(fields) != 5:
            raise ScheduleError(
                f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
                f"not {len(fields)}: {expression!r}"
            )
        zone = parse_zone(tz) if isinstance(tz, str) else tz
        try:
            CronSim(normalized, datetime(2000, 1, 1))
        except CronSimError as exc:
            if str(exc) == "Bad day-of-month" and _valid_on_any_day(fields):
                # Every field is fine on its own; the day just never comes (0 0 31 2 *).
                raise ScheduleError(
                    f"the cron expression {normalized!r} never runs: day {fields[2]} of the "
                    f"month never falls in month {fields[3]}"
                ) from None
            raise ScheduleError(f"invalid cron expression {expression!r}: {exc}") from None
        except (ValueError, IndexError, KeyError):
            raise ScheduleError(f"invalid cron expression {expression!r}") from None
        return cls(expression=normalized, tz=zone)

    @property
    def follows_wall_clock(self) -> bool:
        minute, hour = self.expression.split(" ")[:2]
        return not minute.startswith("*") and not hour.startswith("*")

    def _walls(self, start: datetime) -> Iterator[datetime]:
        # cronsim gives up (StopIteration) after 50 years without a match.
        return CronSim(self.expression, start.replace(tzinfo=None))

    def next_after(self, after: datetime, *, inclusive: bool = False) -> datetime | None:
        """The first run after ``after`` (UTC), or None if it never fires again."""
        after = as_utc(after)

        def later(moment: datetime) -> bool:
            return moment > after or (inclusive and moment == after)

        start = after.astimezone(self.tz) - timedelta(minutes=1)  # cronsim yields > start
        # Away from a transition, wall times and instants go up together; next to one, a wall
        # time before ``after`` can be a later instant (the repeated hour), so look around.
        margin = _LOOKBACK if _offset_changes_near(after, self.tz) else timedelta(0)
        start -= margin
        if self.follows_wall_clock:
            # Wall times map to instants in order (gap -> its end, repeat -> first occurrence).
            for wall in self._walls(start):
                moment = resolve_wall_time(wall, self.tz)
                if later(moment):
                    return moment
            return None
        best: datetime | None = None
        for wall in self._walls(start):
            if best is not None and wall > best.astimezone(self.tz).replace(tzinfo=None) + margin:
                break  # no later wall time can be an earlier instant
            for moment in wall_instants(wall, self.tz):
                if later(moment) and (best is None or moment < best):
                    best = moment
        return best

    def describe(self) -> str:
        try:
            from cron_descriptor import get_description

            words = get_description(self.expression)
        except Exception:  # a description is a nicety; the expression itself is valid
            words = f"cron {self.expression}"
        return f"{words} ({zone_name(self.tz)})"
