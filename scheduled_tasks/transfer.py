"""Export and import of scheduled tasks as JSON-ready data (the file format: docs/import-export.md).

No I/O here: the commands read and write files, these functions turn tasks into plain lists and
dicts and back. An import validates every entry before it touches the database and then applies
all of them in one transaction, or none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone as dj_timezone

from scheduled_tasks import schedules
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.validation import code_problems

REQUIRED_KEYS = ("name", "code", "schedule")
OPTIONAL_KEYS = ("description", "active", "timeout_seconds")
SCHEDULE_KEYS = ("every", "unit", "anchor")
NAME_MAX_LENGTH: int = ScheduledTask._meta.get_field("name").max_length  # type: ignore[assignment]
MAX_TIMEOUT_SECONDS = 24 * 3600
# PostgreSQL text columns cannot store NUL; refuse it here rather than fail mid-transaction.
_NUL_MESSAGE = "must not contain a NUL character"


@dataclass(frozen=True)
class ImportProblem:
    """One reason an import file is refused: where (entry, name, field) and what."""

    message: str
    position: int | None = None  # 1-based entry number; None for the file as a whole
    name: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        if self.position is None:
            where = "file"
        else:
            where = f"entry {self.position}"
            if self.name:
                shown = self.name if len(self.name) <= 60 else self.name[:57] + "..."
                where += f" ({json.dumps(shown, ensure_ascii=False)})"
        if self.field:
            where += f", {self.field}"
        return f"{where}: {self.message}"


class ImportValidationError(Exception):
    """The file has problems; nothing was imported."""

    def __init__(self, problems: list[ImportProblem]) -> None:
        self.problems = problems
        count = len(problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} found; nothing was imported")


@dataclass(frozen=True)
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        if self.dry_run:
            return (
                f"dry run: would create {len(self.created)}, update {len(self.updated)}; "
                "nothing was saved"
            )
        return f"created {len(self.created)}, updated {len(self.updated)}"


@dataclass(frozen=True)
class ImportEntry:
    """One validated entry of an import file, ready to be saved."""

    name: str
    description: str
    code: str
    schedule: schedules.IntervalSchedule
    is_active: bool
    timeout_seconds: int | None


# --- export --------------------------------------------------------------------------------------


def export_task(task: ScheduledTask) -> dict[str, Any]:
    """One task as a JSON-ready dict; the anchor is shown in the server's zone, with its offset."""
    zone = dj_timezone.get_default_timezone()
    return {
        "name": task.name,
        "description": task.description,
        "code": task.code,
        "schedule": {
            "every": task.every,
            "unit": task.unit,
            "anchor": task.anchor.astimezone(zone).isoformat(),
        },
        "active": task.is_active,
        "timeout_seconds": task.timeout_seconds,
    }


def export_tasks(tasks: Iterable[ScheduledTask]) -> list[dict[str, Any]]:
    """The tasks as a JSON-ready list sorted by name."""
    return sorted((export_task(task) for task in tasks), key=lambda entry: entry["name"])


# --- import --------------------------------------------------------------------------------------


def _type_name(value: object) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _EntryChecker:
    """Collects the problems of one entry, each tagged with the entry's position and name."""

    def __init__(self, position: int, raw: dict[str, Any], now: datetime, zone: tzinfo) -> None:
        self.position = position
        self.raw = raw
        self.now = now
        self.zone = zone
        name = raw.get("name")
        self.name = name if isinstance(name, str) and name.strip() else None
        self.problems: list[ImportProblem] = []

    def problem(self, field_name: str | None, message: str) -> None:
        self.problems.append(ImportProblem(message, self.position, self.name, field_name))

    def check(self) -> ImportEntry | None:
        for key in REQUIRED_KEYS:
            if key not in self.raw:
                self.problem(key, "missing (required)")
        for key in self.raw:
            if key not in REQUIRED_KEYS and key not in OPTIONAL_KEYS:
                self.problem(key, "unknown key")
        name = self._name()
        description = self._description()
        code = self._code()
        schedule = self._schedule()
        is_active = self._active()
        timeout = self._timeout()
        if self.problems or name is None or code is None or schedule is None:
            return None
        return ImportEntry(name, description, code, schedule, is_active, timeout)

    def _name(self) -> str | None:
        if "name" not in self.raw:
            return None
        name = self.raw["name"]
        if not isinstance(name, str):
            self.problem("name", f"must be a string, not {_type_name(name)}")
        elif not name.strip():
            self.problem("name", "must not be empty")
        elif name != name.strip():
            self.problem("name", "must not start or end with whitespace")
        elif "\x00" in name:
            self.problem("name", _NUL_MESSAGE)
        elif len(name) > NAME_MAX_LENGTH:
            self.problem("name", f"is {len(name)} characters; the limit is {NAME_MAX_LENGTH}")
        else:
            return name
        return None

    def _description(self) -> str:
        description = self.raw.get("description", "")
        if not isinstance(description, str):
            self.problem("description", f"must be a string, not {_type_name(description)}")
            return ""
        if "\x00" in description:
            self.problem("description", _NUL_MESSAGE)
        return description

    def _code(self) -> str | None:
        if "code" not in self.raw:
            return None
        code = self.raw["code"]
        if not isinstance(code, str):
            self.problem("code", f"must be a string, not {_type_name(code)}")
            return None
        found = code_problems(code)
        for message in found:
            self.problem("code", message)
        return None if found else code

    def _schedule(self) -> schedules.IntervalSchedule | None:
        if "schedule" not in self.raw:
            return None
        raw = self.raw["schedule"]
        if not isinstance(raw, dict):
            self.problem("schedule", f"must be an object, not {_type_name(raw)}")
            return None
        before = len(self.problems)
        for key in SCHEDULE_KEYS:
            if key not in raw:
                self.problem(f"schedule.{key}", "missing (required)")
        for key in raw:
            if key not in SCHEDULE_KEYS:
                self.problem(f"schedule.{key}", "unknown key")
        # Check unit and every apart, so both can be reported; every against the entry's own
        # unit when that one is valid (the largest frequency depends on the unit).
        unit_ok = isinstance(raw.get("unit"), str) and raw["unit"] in {
            u.value for u in schedules.Unit
        }
        if "every" in raw:
            unit = raw["unit"] if unit_ok else schedules.Unit.MINUTES.value
            self._schedule_part("schedule.every", raw["every"], unit)
        if "unit" in raw:
            self._schedule_part("schedule.unit", 1, raw["unit"])
        anchor = self._anchor(raw["anchor"]) if "anchor" in raw else None
        if len(self.problems) > before or anchor is None:
            return None
        schedule = schedules.IntervalSchedule.build(raw["every"], raw["unit"], anchor, self.zone)
        try:
            schedules.next_fire_time(schedule, self.now, inclusive=True)
        except schedules.ScheduleError as exc:
            self.problem("schedule", str(exc))
            return None
        return schedule

    def _schedule_part(self, field_name: str, every: object, unit: object) -> bool:
        try:
            schedules.IntervalSchedule.build(every, unit, self.now, self.zone)  # type: ignore[arg-type]
        except schedules.ScheduleError as exc:
            self.problem(field_name, str(exc))
            return False
        return True

    def _anchor(self, raw: object) -> datetime | None:
        if not isinstance(raw, str):
            self.problem("schedule.anchor", f"must be a string, not {_type_name(raw)}")
            return None
        try:
            anchor = datetime.fromisoformat(raw)
        except ValueError:
            self.problem(
                "schedule.anchor",
                f"{raw!r} is not an ISO 8601 date-time such as 2026-01-05T09:00:00+01:00",
            )
            return None
        if anchor.tzinfo is None:
            return schedules.resolve_wall_time(anchor, self.zone)
        return anchor

    def _active(self) -> bool:
        active = self.raw.get("active", True)
        if not isinstance(active, bool):
            self.problem("active", f"must be true or false, not {_type_name(active)}")
            return True
        return active

    def _timeout(self) -> int | None:
        timeout = self.raw.get("timeout_seconds")
        if timeout is None:
            return None
        if isinstance(timeout, bool) or not isinstance(timeout, int):
            self.problem(
                "timeout_seconds", f"must be a whole number or null, not {_type_name(timeout)}"
            )
        elif not 1 <= timeout <= MAX_TIMEOUT_SECONDS:
            self.problem(
                "timeout_seconds", f"must be between 1 and {MAX_TIMEOUT_SECONDS}, not {timeout}"
            )
        else:
            return timeout
        return None


def validate_entries(entries: object, *, now: datetime) -> list[ImportEntry]:
    """Check a whole parsed file; raise :class:`ImportValidationError` listing every problem."""
    if not isinstance(entries, list):
        raise ImportValidationError(
            [ImportProblem(f"must be a JSON list of tasks, not {_type_name(entries)}")]
        )
    zone = dj_timezone.get_default_timezone()
    problems: list[ImportProblem] = []
    valid: list[ImportEntry] = []
    first_position: dict[str, int] = {}
    for position, raw in enumerate(entries, start=1):
        if not isinstance(raw, dict):
            problems.append(ImportProblem(f"must be an object, not {_type_name(raw)}", position))
            continue
        checker = _EntryChecker(position, raw, now, zone)
        entry = checker.check()
        problems.extend(checker.problems)
        name = raw.get("name")
        if isinstance(name, str) and name.strip():
            if name in first_position:
                message = f"duplicate name: entry {first_position[name]} has it too"
                problems.append(ImportProblem(message, position, name, "name"))
            else:
                first_position[name] = position
        if entry is not None:
            valid.append(entry)
    if problems:
        raise ImportValidationError(problems)
    return valid


def import_tasks(
    entries: object,
    *,
    now: datetime,
    user: AbstractBaseUser | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Create or update (matched by name) the tasks of a parsed import file, all or nothing.

    Raises :class:`ImportValidationError` with every problem found before anything is saved.
    With ``dry_run`` the file is validated and the report says what would happen.
    """
    valid = validate_entries(entries, now=now)
    names = [entry.name for entry in valid]
    if dry_run:
        existing_names = set(ScheduledTask.objects.in_bulk(names, field_name="name"))
        return ImportReport(
            created=[name for name in names if name not in existing_names],
            updated=[name for name in names if name in existing_names],
            dry_run=True,
        )

    created: list[str] = []
    updated: list[str] = []
    with transaction.atomic():
        existing = ScheduledTask.objects.select_for_update().in_bulk(names, field_name="name")
        for entry in valid:
            task = existing.get(entry.name)
            if task is None:
                task = ScheduledTask(name=entry.name, created_by=user)
                created.append(entry.name)
            else:
                updated.append(entry.name)
            task.description = entry.description
            task.code = entry.code
            task.every = entry.schedule.every
            task.unit = entry.schedule.unit.value
            task.anchor = entry.schedule.anchor
            task.is_active = entry.is_active
            task.timeout_seconds = entry.timeout_seconds
            if user is not None:
                task.updated_by = user
            task.reschedule(now)
            task.save()
    return ImportReport(created=created, updated=updated)
