"""Print the next fire times of a schedule of any kind (interval, cron, one-off: the table in
``schedules/kinds.py``), without creating a task."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from scheduled_tasks import schedules
from scheduled_tasks.schedules import kinds

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


class _Options:
    """The parsed options as a kind reads them (``kinds.CliInput``)."""

    def __init__(self, options: dict[str, Any], zone: tzinfo, now: datetime) -> None:
        self.options, self.zone, self.now = options, zone, now

    def value(self, name: str) -> Any:
        return self.options[name]

    def given(self, name: str) -> bool:
        return self.options[name] is not None

    def whole_number(self, name: str) -> int:
        return _parse_int(f"--{name}", self.options[name])

    def moment(self, name: str) -> datetime:
        return _parse_moment(f"--{name}", self.options[name], self.zone)


def _summary() -> str:
    parts = [kind.cli_summary for kind in kinds.registered()]
    return ", ".join(parts[:-1]) + " or " + parts[-1] if len(parts) > 1 else parts[0]


class Command(BaseCommand):
    @property  # type: ignore[override]
    def help(self) -> str:  # read when the parser is made: every kind of the table is named
        return (
            "Print the next fire times of a schedule, one per line, as ISO 8601 with the UTC "
            f"offset of the given time zone: {_summary()}. Naive dates are wall-clock time in "
            "--tz. Bad input exits 2."
        )

    # Pure time maths: no database, so the project's checks have nothing to say here.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        # One option per kind picks the kind (the table of kinds declares them all).
        chosen = parser.add_mutually_exclusive_group(required=True)
        for kind in kinds.registered():
            chosen.add_argument(kind.cli.flag, metavar=kind.cli.metavar, help=kind.cli.help)
        for kind in kinds.registered():
            for option in kind.cli_extras:
                parser.add_argument(option.flag, metavar=option.metavar, help=option.help)
        parser.add_argument("--tz", help="IANA time zone. Default: settings.TIME_ZONE.")
        parser.add_argument(
            "--after", help="List runs strictly after this moment (ISO 8601). Default: now."
        )
        parser.add_argument(
            "--count", default="5", metavar="K", help=f"How many runs (1-{MAX_COUNT}). Default: 5."
        )

    def _chosen_kind(self, options: dict[str, Any]) -> kinds.ScheduleKind:
        kind = next(k for k in kinds.registered() if options.get(k.cli.name) is not None)
        for other in kinds.registered():
            extra = [o.flag for o in other.cli_extras if options.get(o.name) is not None]
            if other is not kind and extra:
                verb = "is" if len(extra) == 1 else "are"
                raise _usage_error(
                    f"{' and '.join(extra)} {verb} only for {other.cli.flag}, not for "
                    f"{kind.cli.flag}"
                )
        for name in kind.cli_required:
            if options.get(name) is None:
                raise _usage_error(f"--{name} is required with {kind.cli.flag}")
        return kind

    def handle(self, *args: Any, **options: Any) -> None:
        kind = self._chosen_kind(options)
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
            schedule = kind.from_cli(_Options(options, zone, now))
            times = schedules.fire_times(schedule, after, count)
        except schedules.ScheduleError as exc:
            raise _usage_error(f"invalid schedule: {exc}") from None

        for moment in times:
            self.stdout.write(moment.astimezone(zone).isoformat())
