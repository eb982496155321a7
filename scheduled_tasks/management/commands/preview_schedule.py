"""Print the next fire times of a schedule (interval, cron or one-off), without creating a task."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from scheduled_tasks import schedules
from scheduled_tasks.validation import cron_problem

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
        "Print the next fire times of a schedule, one per line, as ISO 8601 with the UTC offset "
        "of the given time zone: every N units from an anchor (--every/--unit/--anchor), a "
        "5-field cron expression (--cron) or a one-off time (--at; prints it, or nothing when "
        "it is not after --after). Naive dates are wall-clock time in --tz. Bad input exits 2."
    )
    # Pure time maths: no database, so the project's checks have nothing to say here.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        units = ", ".join(unit.value for unit in schedules.Unit)
        kind = parser.add_mutually_exclusive_group(required=True)
        kind.add_argument("--every", metavar="N", help="Units between runs (with --unit).")
        kind.add_argument(
            "--cron",
            metavar="EXPR",
            help='A 5-field cron expression, e.g. "30 8 * * MON-FRI", evaluated in --tz.',
        )
        kind.add_argument(
            "--at", metavar="ISO", help="A one-off run at this time (naive = wall time in --tz)."
        )
        parser.add_argument("--unit", help=f"With --every: one of {units}.")
        parser.add_argument(
            "--anchor",
            help="With --every: the first run (ISO 8601; naive = wall time in --tz). Default: now.",
        )
        parser.add_argument("--tz", help="IANA time zone. Default: settings.TIME_ZONE.")
        parser.add_argument(
            "--after", help="List runs strictly after this moment (ISO 8601). Default: now."
        )
        parser.add_argument(
            "--count", default="5", metavar="K", help=f"How many runs (1-{MAX_COUNT}). Default: 5."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["every"] is not None
        if not interval:
            extra = [opt for opt in ("unit", "anchor") if options[opt] is not None]
            if extra:
                given = "--cron" if options["cron"] is not None else "--at"
                names = " and ".join(f"--{opt}" for opt in extra)
                verb = "is" if len(extra) == 1 else "are"
                raise _usage_error(f"{names} {verb} only for --every, not for {given}")
        elif options["unit"] is None:
            raise _usage_error("--unit is required with --every")
        count = _parse_int("--count", options["count"])
        if not 1 <= count <= MAX_COUNT:
            raise _usage_error(f"--count must be between 1 and {MAX_COUNT}, not {count}")
        try:
            zone_name = settings.TIME_ZONE if options["tz"] is None else options["tz"]
            zone = schedules.parse_zone(zone_name)
        except schedules.ScheduleError as exc:
            raise _usage_error(f"--tz: {exc}") from None

        now = timezone.now()
        after = (
            _parse_moment("--after", options["after"], zone)
            if options["after"] is not None
            else now
        )
        try:
            if interval:
                every = _parse_int("--every", options["every"])
                anchor = (
                    _parse_moment("--anchor", options["anchor"], zone)
                    if options["anchor"] is not None
                    else now.replace(microsecond=0)
                )
                schedule: schedules.Schedule = schedules.IntervalSchedule.build(
                    every, options["unit"], anchor, zone
                )
            elif options["cron"] is not None:
                problem = cron_problem(options["cron"], zone)
                if problem:
                    raise schedules.ScheduleError(problem)
                schedule = schedules.CronSchedule.build(options["cron"], zone)
            else:
                schedule = schedules.OneOffSchedule.build(
                    _parse_moment("--at", options["at"], zone), zone
                )
            times = schedules.fire_times(schedule, after, count)
        except schedules.ScheduleError as exc:
            raise _usage_error(f"invalid schedule: {exc}") from None

        for moment in times:
            self.stdout.write(moment.astimezone(zone).isoformat())
