"""A single run at a date and time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from scheduled_tasks.schedules.base import as_utc, parse_zone, resolve_wall_time, zone_name


@dataclass(frozen=True)
class OneOffSchedule:
    at: datetime  # UTC
    tz: tzinfo

    @classmethod
    def build(cls, at: datetime, tz: str | tzinfo) -> OneOffSchedule:
        zone = parse_zone(tz) if isinstance(tz, str) else tz
        moment = resolve_wall_time(at, zone) if at.tzinfo is None else as_utc(at, "at")
        return cls(at=moment, tz=zone)

    def next_after(self, after: datetime, *, inclusive: bool = False) -> datetime | None:
        after = as_utc(after)
        if self.at > after or (inclusive and self.at == after):
            return self.at
        return None

    def describe(self) -> str:
        local = self.at.astimezone(self.tz)
        return f"Once, at {local:%Y-%m-%d %H:%M} ({zone_name(self.tz)})"
