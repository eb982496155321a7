"""Print the next fire times of an interval schedule, without creating a task."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from scheduled_tasks import schedules

MAX_COUNT = 1000
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def _usage_error(message: str) -> CommandError:
    # Exit status 2, like argparse's own errors, so scripts can tell bad input from failures.
    return CommandError(message, returncode=2)


def _parse_int(option: str, raw: object) -> int:
    text = str(raw).strip()
    if isinstance(raw, bool) or not _WHOLE_NUMBER.fullmatch(text):
        raise _usage_error(f"{option} must be a whole number, not {raw!r}")
    return int(text)


def _parse_moment(option: str, raw: object, zone: tzinfo) -> datetime:
    if isinstance(raw, datetime):
        moment = raw
    else:
        try:
            moment = datetime.fromisoformat(str(raw).strip())
        except ValueError:
            raise _usage_error(
                f"{option} must be an ISO 8601 date or date-time such as 2026-01-05T09:00 or "
                f"2026-01-05T09:00+01:00, not {raw!r}"
            ) from None
    if moment.tzinfo is None:
        return schedules.resolve_wall_time(moment, zone)
    return moment


class Command(BaseCommand):
    help = (
        "Print the next fire times of an every-N-units schedule, one per line, as ISO 8601 "
        "in the given time zone. Naive dates are wall-clock time in that zone."
    )
    # Pure time maths: no database, so the project's checks have nothing to say here.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        units = ", ".join(unit.value for unit in schedules.Unit)
        parser.add_argument("--every", required=True, metavar="N", help="Units between runs.")
        parser.add_argument("--unit", required=True, help=f"One of: {units}.")
        parser.add_argument(
            "--anchor", help="The first run (ISO 8601; naive = wall time in --tz). Default: now."
        )
        parser.add_argument("--tz", help="IANA time zone. Default: settings.TIME_ZONE.")
        parser.add_argument(
            "--after", help="List runs strictly after this moment (ISO 8601). Default: now."
        )
        parser.add_argument(
            "--count", default="5", metavar="K", help=f"How many runs (1-{MAX_COUNT}). Default: 5."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every = _parse_int("--every", options["every"])
        count = _parse_int("--count", options["count"])
        if not 1 <= count <= MAX_COUNT:
            raise _usage_error(f"--count must be between 1 and {MAX_COUNT}, not {count}")
        try:
            zone_name = settings.TIME_ZONE if options["tz"] is None else options["tz"]
            zone = schedules.parse_zone(zone_name)
        except schedules.ScheduleError as exc:
            raise _usage_error(f"--tz: {exc}") from None

        now = timezone.now()
        anchor = (
            _parse_moment("--anchor", options["anchor"], zone)
            if options["anchor"] is not None
            else now.replace(microsecond=0)
        )
        after = (
            _parse_moment("--after", options["after"], zone)
            if options["after"] is not None
            else now
        )

        try:
            schedule = schedules.IntervalSchedule.build(every, options["unit"], anchor, zone)
            times = schedules.fire_times(schedule, after, count)
        except schedules.ScheduleError as exc:
            raise _usage_error(f"invalid schedule: {exc}") from None

        for moment in times:
            self.stdout.write(moment.astimezone(zone).isoformat())
