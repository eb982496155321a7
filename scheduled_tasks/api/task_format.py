"""The task JSON format (docs/import-export.md): reading an entry, with every problem found,
and writing a task as an entry. The one implementation behind the API's task serializer and
import/export; the checks are the web form's (``scheduled_tasks.validation``).

Plain functions, no DRF: :class:`scheduled_tasks.api.serializers.TaskSerializer` wraps them.
A problem is a ``(field, message)`` pair; ``field`` is a dotted path such as ``schedule.unit``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone as dj_timezone

from scheduled_tasks import registry, schedules
from scheduled_tasks.models import RUN_SETTINGS, ScheduledTask
from scheduled_tasks.schedules import kinds
from scheduled_tasks.schedules.kinds import json_type_name as _type_name
from scheduled_tasks.validation import code_problems, contains_nul, field_limits, zone_problem

REQUIRED_KEYS = ("name", "schedule")
# Exactly one of these says what the task runs.
WHAT_KEYS = ("code", "function")
SETTING_KEYS = RUN_SETTINGS
OPTIONAL_KEYS = ("description", "time_zone", "active", *SETTING_KEYS)
KNOWN_KEYS = frozenset((*REQUIRED_KEYS, *WHAT_KEYS, *OPTIONAL_KEYS))
FUNCTION_KEYS = ("name", "params")
# Integer settings that may be null (null means: no limit / the default from settings).
NULLABLE_SETTINGS = frozenset({"timeout_seconds", "grace_seconds"})
CATCH_UP_VALUES = tuple(value for value, _ in ScheduledTask._meta.get_field("catch_up").choices)
NAME_MAX_LENGTH: int = ScheduledTask._meta.get_field("name").max_length  # type: ignore[assignment]
# PostgreSQL text columns cannot store NUL; refuse it here rather than fail mid-transaction.
_NUL_MESSAGE = "must not contain a NUL character"
_ISO_EXAMPLE = "2026-01-05T09:00:00+01:00"

Problem = tuple[str, str]  # (field path, message)


def _default(name: str) -> Any:
    return ScheduledTask._meta.get_field(name).get_default()


@dataclass(frozen=True)
class TaskEntry:
    """One valid entry of the format, ready to be applied to a task."""

    name: str
    description: str
    code: str
    function_name: str
    function_params: dict[str, Any]
    kind: schedules.ScheduleKind
    schedule: schedules.Schedule
    time_zone: str
    is_active: bool
    settings: dict[str, Any]  # SETTING_KEYS -> value


# --- writing -------------------------------------------------------------------------------------


def _task_zone(task: ScheduledTask) -> tzinfo:
    try:
        return schedules.parse_zone(task.time_zone)
    except schedules.ScheduleError:
        return dj_timezone.get_default_timezone()


def _export_schedule(task: ScheduledTask, zone: tzinfo) -> dict[str, Any]:
    # A row whose kind no longer exists is written as the default kind, from its columns.
    kind = kinds.lookup(task.schedule_kind) or kinds.default()
    return {"kind": kind.value, **kind.write_json(task, zone)}


def write_entry(task: ScheduledTask) -> dict[str, Any]:
    """One task as a JSON-ready dict; times are shown in the task's zone, with their offset."""
    zone = _task_zone(task)
    entry: dict[str, Any] = {"name": task.name, "description": task.description}
    if task.function_name:
        entry["function"] = {"name": task.function_name, "params": task.function_params or {}}
    else:
        entry["code"] = task.code
    entry["schedule"] = _export_schedule(task, zone)
    entry["time_zone"] = task.time_zone
    entry["active"] = task.is_active
    for key in SETTING_KEYS:
        entry[key] = getattr(task, key)
    return entry


# --- reading -------------------------------------------------------------------------------------


def read_entry(raw: object, *, now: datetime) -> tuple[TaskEntry | None, list[Problem]]:
    """Check one entry: ``(entry, [])`` when it is valid, else ``(None, problems)`` in the
    order of the documented keys. ``now`` judges one-off times and "never runs again"."""
    if not isinstance(raw, dict):
        return None, [("", f"must be an object, not {_type_name(raw)}")]
    reader = _EntryReader(raw, now)
    entry = reader.read()
    if reader.problems:
        return None, reader.problems
    return entry, []


class _EntryReader:
    """Reads one entry, collecting every problem (field path, message) on the way."""

    def __init__(self, raw: dict[str, Any], now: datetime) -> None:
        self.raw = raw
        self.now = now
        self.problems: list[Problem] = []

    def problem(self, field_name: str, message: str) -> None:
        self.problems.append((field_name, message))

    def read(self) -> TaskEntry | None:
        for key in REQUIRED_KEYS:
            if key not in self.raw:
                self.problem(key, "missing (required)")
        for key in self.raw:
            if key not in KNOWN_KEYS:
                self.problem(key, "unknown key")
        name = self._name()
        description = self._description()
        what = self._what()
        zone_name, zone = self._time_zone()
        # Whether a one-off in the past is refused depends on "active"; its own problems are
        # reported after the schedule's, in the order of the documented keys.
        active = self.raw.get("active", True)
        when = self._schedule(zone, active if isinstance(active, bool) else True)
        is_active = self._active()
        settings = self._settings()
        if self.problems or name is None or what is None or when is None:
            return None
        code, function_name, function_params = what
        kind, schedule = when
        return TaskEntry(
            name=name,
            description=description,
            code=code,
            function_name=function_name,
            function_params=function_params,
            kind=kind,
            schedule=schedule,
            time_zone=zone_name,
            is_active=is_active,
            settings=settings,
        )

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

    # --- what to run: code or a registered function ---

    def _what(self) -> tuple[str, str, dict[str, Any]] | None:
        has_code, has_function = "code" in self.raw, "function" in self.raw
        if not has_code and not has_function:
            self.problem("code", 'missing (required): give "code" or "function"')
            return None
        if has_code and has_function:
            self.problem("function", 'give either "code" or "function", not both')
            return None
        if has_code:
            code = self._code()
            return None if code is None else (code, "", {})
        function = self._function()
        return None if function is None else ("", *function)

    def _code(self) -> str | None:
        code = self.raw["code"]
        if not isinstance(code, str):
            self.problem("code", f"must be a string, not {_type_name(code)}")
            return None
        found = code_problems(code)
        for message in found:
            self.problem("code", message)
        return None if found else code

    def _function(self) -> tuple[str, dict[str, Any]] | None:
        raw = self.raw["function"]
        if not isinstance(raw, dict):
            self.problem("function", f"must be an object, not {_type_name(raw)}")
            return None
        before = len(self.problems)
        if "name" not in raw:
            self.problem("function.name", "missing (required)")
        for key in raw:
            if key not in FUNCTION_KEYS:
                self.problem(f"function.{key}", "unknown key")
        name = raw.get("name")
        params = raw.get("params", {})
        if "name" in raw and not isinstance(name, str):
            self.problem("function.name", f"must be a string, not {_type_name(name)}")
        elif isinstance(name, str):
            try:
                registry.get(name)
            except registry.UnknownFunction as exc:
                self.problem("function.name", str(exc))
        if not isinstance(params, dict):
            self.problem("function.params", f"must be an object, not {_type_name(params)}")
        if len(self.problems) > before:
            return None
        for message in registry.param_problems(name, params):  # type: ignore[arg-type]
            self.problem("function.params", message)
        if contains_nul(params):
            self.problem("function.params", _NUL_MESSAGE)
        if len(self.problems) > before:
            return None
        return name, params  # type: ignore[return-value]

    # --- when: the zone and the schedule ---

    def _time_zone(self) -> tuple[str, tzinfo | None]:
        name = self.raw.get("time_zone", dj_timezone.get_default_timezone_name())
        problem = zone_problem(name)
        if problem:
            self.problem("time_zone", problem)
            return "", None
        return name, schedules.parse_zone(name)

    def _schedule(
        self, zone: tzinfo | None, is_active: bool
    ) -> tuple[schedules.ScheduleKind, schedules.Schedule] | None:
        if "schedule" not in self.raw:
            return None
        raw = self.raw["schedule"]
        if not isinstance(raw, dict):
            self.problem("schedule", f"must be an object, not {_type_name(raw)}")
            return None
        value = raw.get("kind", kinds.default().value)
        kind = kinds.lookup(value)
        if kind is None:
            valid = ", ".join(k.value for k in kinds.registered())
            self.problem("schedule.kind", f"unknown schedule kind {value!r}; use one of: {valid}")
            return None
        before = len(self.problems)
        for key in kind.json_keys:
            if key not in raw:
                self.problem(f"schedule.{key}", "missing (required)")
        for key in raw:
            if key == "kind" or key in kind.json_keys:
                continue
            if key in kinds.json_keys():
                self.problem(f"schedule.{key}", f"not used by a schedule of kind {kind.value!r}")
            else:
                self.problem(f"schedule.{key}", "unknown key")
        schedule = kind.read_json(raw, _ScheduleInput(self), zone, is_active)
        if len(self.problems) > before or schedule is None:
            return None
        try:
            following = schedules.next_fire_time(schedule, self.now, inclusive=True)
        except schedules.ScheduleError as exc:
            self.problem("schedule", str(exc))
            return None
        # A one-off that already ran (inactive) is the one schedule allowed to have no run left.
        if following is None and is_active and not kind.is_one_off:
            self.problem("schedule", "never runs after the moment of import")
            return None
        return kind, schedule

    def _moment(self, field_name: str, raw: object, zone: tzinfo | None) -> datetime | None:
        """An ISO 8601 date-time; without an offset it is wall-clock time in the task's zone."""
        if not isinstance(raw, str):
            self.problem(field_name, f"must be a string, not {_type_name(raw)}")
            return None
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            self.problem(field_name, f"{raw!r} is not an ISO 8601 date-time such as {_ISO_EXAMPLE}")
            return None
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
        if zone is None:
            return None
        return schedules.resolve_wall_time(moment, zone)

    # --- settings ---

    def _active(self) -> bool:
        active = self.raw.get("active", True)
        if not isinstance(active, bool):
            self.problem("active", f"must be true or false, not {_type_name(active)}")
            return True
        return active

    def _settings(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key in SETTING_KEYS:
            if key == "catch_up":
                values[key] = self._catch_up()
            elif key == "queue":
                values[key] = self._queue()
            else:
                values[key] = self._int_setting(key)
        return values

    def _catch_up(self) -> str:
        value = self.raw.get("catch_up", _default("catch_up"))
        if value not in CATCH_UP_VALUES or not isinstance(value, str):
            valid = ", ".join(f'"{v}"' for v in CATCH_UP_VALUES)
            self.problem("catch_up", f"must be one of {valid}, not {json.dumps(value)}")
            return _default("catch_up")
        return value

    def _queue(self) -> str:
        value = self.raw.get("queue", "")
        if not isinstance(value, str):
            self.problem("queue", f"must be a string, not {_type_name(value)}")
            return ""
        field = ScheduledTask._meta.get_field("queue")
        try:
            field.clean(value, None)
        except ValidationError as exc:
            self.problem("queue", " ".join(exc.messages))
            return ""
        return value

    def _int_setting(self, key: str) -> int | None:
        nullable = key in NULLABLE_SETTINGS
        value = self.raw.get(key, None if nullable else _default(key))
        if value is None and nullable:
            return None
        low, high = field_limits(key)
        if isinstance(value, bool) or not isinstance(value, int):
            kind = "a whole number or null" if nullable else "a whole number"
            self.problem(key, f"must be {kind}, not {_type_name(value)}")
        elif not low <= value <= high:
            self.problem(key, f"must be between {low} and {high}, not {value}")
        else:
            return value
        return None


class _ScheduleInput:
    """The ``schedule`` object of an entry as a kind reads it (``kinds.JsonInput``): its
    problems are reported under ``schedule.<key>``."""

    def __init__(self, checker: _EntryReader) -> None:
        self.checker = checker
        self.now = checker.now

    def problem(self, key: str, message: str) -> None:
        self.checker.problem(f"schedule.{key}", message)

    def problem_count(self) -> int:
        return len(self.checker.problems)

    def moment(self, key: str, raw: object, zone: tzinfo | None) -> datetime | None:
        return self.checker._moment(f"schedule.{key}", raw, zone)


def apply_entry(task: ScheduledTask, entry: TaskEntry, now: datetime) -> None:
    """Copy a valid entry onto a task (new or existing); the schedule kind's columns are
    set, the other kinds' cleared (those that cannot be empty, such as an interval's
    every/unit/anchor, are kept)."""
    task.description = entry.description
    task.code = entry.code
    task.function_name = entry.function_name
    task.function_params = entry.function_params
    task.schedule_kind = entry.kind.value
    task.time_zone = entry.time_zone
    if task.pk is None:
        # The start time cannot be empty: the moment of import, unless the schedule sets it
        # (not the model default, which reads the clock).
        task.anchor = now
    values = {**kinds.cleared_for(entry.kind), **entry.kind.model_values(entry.schedule)}
    for name, value in values.items():
        setattr(task, name, value)
    task.is_active = entry.is_active
    for key, value in entry.settings.items():
        setattr(task, key, value)
