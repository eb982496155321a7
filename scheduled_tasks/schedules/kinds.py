"""The table of schedule kinds: each kind (interval, cron, once) is declared here once.

A kind says everything the rest of the app needs to know about it, so forms, import/export,
services, claims, pages and the ``preview_schedule`` command read this table instead of
branching on kinds (the shape of django-celery-beat's ``model_schedules``):

* ``value``, ``label``, ``schedule_class``: what is stored in ``ScheduledTask.schedule_kind``,
  how it is shown, and the pure schedule object it builds;
* ``model_fields``: the task columns it reads (the form fields have the same names) and
  ``cleared``: what its columns hold on a task of another kind;
* ``json_keys``: its keys in the import/export format (docs/import-export.md);
* ``is_one_off``: it runs once and then the task is done (claims, services, pages);
* ``form_template`` / ``detail_template``: its part of the task form and of the task page;
* ``cli``: its options of ``preview_schedule``;
* methods that build the schedule from stored values, read it from a form, a JSON object or
  the command line, and write it back to stored values and JSON.

The contract (:class:`ScheduleKind`, the input protocols) is in ``kind_api.py``. Nothing here
imports Django.

Adding a kind: a subclass here, put in ``_TABLE``; its two templates under
``templates/scheduled_tasks/kinds/``; an example in ``tests/test_schedule_kinds.py``; and, if
it needs new columns, the model fields and a migration (the kind's choice is recorded by one
too).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from scheduled_tasks.schedules.base import Schedule, ScheduleError, zone_name
from scheduled_tasks.schedules.cron import CronSchedule
from scheduled_tasks.schedules.interval import MAX_EVERY_BY_UNIT, IntervalSchedule, Unit
from scheduled_tasks.schedules.kind_api import (
    CliInput,
    CliOption,
    FormInput,
    JsonInput,
    ScheduleKind,
    UnknownKind,
    cron_problem,
    json_type_name,
    sentence,
)
from scheduled_tasks.schedules.once import OneOffSchedule

__all__ = [
    "CRON",
    "CRON_EXAMPLE",
    "INTERVAL",
    "ONCE",
    "CliInput",
    "CliOption",
    "FormInput",
    "JsonInput",
    "ScheduleKind",
    "UnknownKind",
    "choices",
    "cleared_for",
    "cron_problem",
    "default",
    "for_schedule",
    "get",
    "json_keys",
    "json_type_name",
    "lookup",
    "model_fields",
    "register",
    "registered",
    "sentence",
    "unregister",
]

CRON_EXAMPLE = "30 8 * * MON-FRI"


# --- the kinds -------------------------------------------------------------------------------


class IntervalKind(ScheduleKind):
    value = "interval"
    label = "Every N units"
    schedule_class = IntervalSchedule
    model_fields = ("every", "unit", "anchor")
    json_keys = ("every", "unit", "anchor")
    form_template = "scheduled_tasks/kinds/interval_form.html"
    detail_template = "scheduled_tasks/kinds/interval_detail.html"
    cli = CliOption("every", "Units between runs (with --unit).", metavar="N")
    cli_extras = (
        CliOption("unit", f"With --every: one of {', '.join(u.value for u in Unit)}."),
        CliOption(
            "anchor",
            "With --every: the first run (ISO 8601; naive = wall time in --tz). Default: now.",
        ),
    )
    cli_required = ("unit",)
    cli_summary = "every N units from an anchor (--every/--unit/--anchor)"

    def build(self, values: Mapping[str, Any], tz: str | tzinfo) -> Schedule:
        if values.get("anchor") is None:
            raise ScheduleError("an interval schedule needs a start time")
        return IntervalSchedule.build(values.get("every"), values.get("unit"), values["anchor"], tz)  # type: ignore[arg-type]

    def model_values(self, schedule: IntervalSchedule) -> dict[str, Any]:
        return {"every": schedule.every, "unit": schedule.unit.value, "anchor": schedule.anchor}

    def clean_form(self, form: FormInput, zone: tzinfo | None) -> Schedule | None:
        cleaned = form.cleaned_data
        every, unit, typed = (cleaned.get(k) for k in ("every", "unit", "anchor"))
        if every is None:
            form.missing("every", "Enter how many units between runs.")
        if not unit:
            form.missing("unit", "Choose a unit.")
        if typed is None:
            form.missing("anchor", "This field is required.")
        if every is None or not unit or typed is None:
            return None
        limit = MAX_EVERY_BY_UNIT.get(unit)
        if limit is not None and every > limit:
            # Said next to the field: "every" alone is fine, it is too large for this unit.
            form.add_error("every", f"The frequency must be at most {limit:,} for {unit}.")
            return None
        anchor = form.resolve("anchor", typed, zone)
        if anchor is None:
            return None
        cleaned["anchor"] = anchor
        if zone is None:
            return None
        try:
            schedule = IntervalSchedule.build(every, unit, anchor, zone)
            # Where the view will put the task on its grid must be representable.
            schedule.next_after(form.now or anchor, inclusive=True)
        except ScheduleError as exc:
            form.add_error(None, f"The schedule is invalid: {sentence(str(exc))}")
            return None
        return schedule

    def read_json(
        self, raw: Mapping[str, Any], reader: JsonInput, zone: tzinfo | None, is_active: bool
    ) -> Schedule | None:
        before = reader.problem_count()
        # Check unit and every apart, so both can be reported; every against the entry's own
        # unit when that one is valid (the largest frequency depends on the unit).
        unit_ok = isinstance(raw.get("unit"), str) and raw["unit"] in {u.value for u in Unit}
        if "every" in raw:
            unit = raw["unit"] if unit_ok else Unit.MINUTES.value
            self._check_part(reader, "every", raw["every"], unit)
        if "unit" in raw:
            self._check_part(reader, "unit", 1, raw["unit"])
        anchor = reader.moment("anchor", raw["anchor"], zone) if "anchor" in raw else None
        complete = "every" in raw and "unit" in raw and anchor is not None
        if reader.problem_count() > before or not complete or zone is None:
            return None
        return IntervalSchedule.build(raw["every"], raw["unit"], anchor, zone)  # type: ignore[arg-type]

    @staticmethod
    def _check_part(reader: JsonInput, key: str, every: object, unit: object) -> None:
        try:
            IntervalSchedule.build(every, unit, reader.now, UTC)  # type: ignore[arg-type]
        except ScheduleError as exc:
            reader.problem(key, str(exc))

    def write_json(self, task: Any, zone: tzinfo) -> dict[str, Any]:
        anchor = task.anchor.astimezone(zone).isoformat()
        return {"every": task.every, "unit": task.unit, "anchor": anchor}

    def from_cli(self, options: CliInput) -> Schedule:
        every = options.whole_number("every")
        anchor = (
            options.moment("anchor")
            if options.given("anchor")
            else options.now.replace(microsecond=0)
        )
        return IntervalSchedule.build(every, options.value("unit"), anchor, options.zone)


class CronKind(ScheduleKind):
    value = "cron"
    label = "Cron expression"
    schedule_class = CronSchedule
    model_fields = ("cron_expression",)
    cleared = {"cron_expression": ""}
    json_keys = ("cron",)
    form_template = "scheduled_tasks/kinds/cron_form.html"
    detail_template = "scheduled_tasks/kinds/cron_detail.html"
    cli = CliOption(
        "cron",
        'A 5-field cron expression, e.g. "30 8 * * MON-FRI", evaluated in --tz.',
        metavar="EXPR",
    )
    cli_summary = "a 5-field cron expression (--cron)"

    def build(self, values: Mapping[str, Any], tz: str | tzinfo) -> Schedule:
        return CronSchedule.build(values.get("cron_expression") or "", tz)

    def model_values(self, schedule: CronSchedule) -> dict[str, Any]:
        return {"cron_expression": schedule.expression}

    def clean_form(self, form: FormInput, zone: tzinfo | None) -> Schedule | None:
        cleaned = form.cleaned_data
        expression = cleaned.get("cron_expression") or ""
        if not expression:
            if not form.has_error("cron_expression"):
                form.missing("cron_expression", f"Enter a cron expression, such as {CRON_EXAMPLE}.")
            return None
        problem = cron_problem(expression, zone or UTC)
        if problem:
            form.add_error("cron_expression", sentence(problem))
            return None
        cleaned["cron_expression"] = " ".join(expression.split())
        return CronSchedule.build(expression, zone) if zone else None

    def read_json(
        self, raw: Mapping[str, Any], reader: JsonInput, zone: tzinfo | None, is_active: bool
    ) -> Schedule | None:
        if "cron" not in raw:
            return None
        expression = raw["cron"]
        if not isinstance(expression, str):
            reader.problem("cron", f"must be a string, not {json_type_name(expression)}")
            return None
        problem = cron_problem(expression, zone or UTC)
        if problem:
            reader.problem("cron", problem)
            return None
        return None if zone is None else CronSchedule.build(expression, zone)

    def write_json(self, task: Any, zone: tzinfo) -> dict[str, Any]:
        return {"cron": task.cron_expression}

    def from_cli(self, options: CliInput) -> Schedule:
        return CronSchedule.build(options.value("cron"), options.zone)


class OnceKind(ScheduleKind):
    value = "once"
    label = "Once, at a date and time"
    schedule_class = OneOffSchedule
    model_fields = ("run_at",)
    cleared = {"run_at": None}
    json_keys = ("at",)
    is_one_off = True
    form_template = "scheduled_tasks/kinds/once_form.html"
    detail_template = "scheduled_tasks/kinds/once_detail.html"
    cli = CliOption("at", "A one-off run at this time (naive = wall time in --tz).", metavar="ISO")
    cli_summary = "a one-off time (--at; prints it, or nothing when it is not after --after)"
    ended_note = "This time has passed: an active one-off task must run in the future."

    def build(self, values: Mapping[str, Any], tz: str | tzinfo) -> Schedule:
        if values.get("run_at") is None:
            raise ScheduleError("a one-off schedule needs a date and time")
        return OneOffSchedule.build(values["run_at"], tz)

    def model_values(self, schedule: OneOffSchedule) -> dict[str, Any]:
        return {"run_at": schedule.at}

    def clean_form(self, form: FormInput, zone: tzinfo | None) -> Schedule | None:
        typed = form.cleaned_data.get("run_at")
        if typed is None:
            form.missing("run_at", "Enter the date and time of the run.")
            return None
        at = form.resolve("run_at", typed, zone)
        if at is None:
            return None
        form.cleaned_data["run_at"] = at
        return OneOffSchedule.build(at, zone) if zone else None

    def active_problem(self, schedule: OneOffSchedule, now: datetime) -> tuple[str, str] | None:
        if schedule.at >= now:
            return None
        local_now = now.astimezone(schedule.tz)
        return "run_at", (
            f"This time is in the past (it is now {local_now:%Y-%m-%d %H:%M} in "
            f"{zone_name(schedule.tz)}). Pick a later time, or untick “Active”."
        )

    def read_json(
        self, raw: Mapping[str, Any], reader: JsonInput, zone: tzinfo | None, is_active: bool
    ) -> Schedule | None:
        if "at" not in raw:
            return None
        at = reader.moment("at", raw["at"], zone)
        if at is None or zone is None:
            return None
        if is_active and at < reader.now:
            reader.problem(
                "at",
                f"{raw['at']} is in the past (the import runs at "
                f"{reader.now.astimezone(zone).isoformat(timespec='seconds')}); an active one-off "
                'task must run in the future (or set "active": false)',
            )
            return None
        return OneOffSchedule.build(at, zone)

    def write_json(self, task: Any, zone: tzinfo) -> dict[str, Any]:
        return {"at": task.run_at.astimezone(zone).isoformat() if task.run_at else None}

    def from_cli(self, options: CliInput) -> Schedule:
        return OneOffSchedule.build(options.moment("at"), options.zone)

    def ended_reason(self, schedule: OneOffSchedule) -> str | None:
        at = schedule.at.astimezone(schedule.tz)
        return (
            f"it is a one-off whose time ({at:%Y-%m-%d %H:%M} {zone_name(schedule.tz)}) has "
            "passed, so it would never run"
        )


# --- the table -------------------------------------------------------------------------------

INTERVAL = IntervalKind()
CRON = CronKind()
ONCE = OnceKind()

# In the order forms and messages list them; the first is the default.
_TABLE: dict[str, ScheduleKind] = {kind.value: kind for kind in (INTERVAL, CRON, ONCE)}


def register(kind: ScheduleKind) -> ScheduleKind:
    """Add ``kind`` to the table (after the others)."""
    if kind.value in _TABLE:
        raise ValueError(f"schedule kind {kind.value!r} is already registered")
    _TABLE[kind.value] = kind
    return kind


def unregister(value: str) -> None:
    """Take a kind out of the table (tests that register a kind of their own)."""
    del _TABLE[value]


def registered() -> tuple[ScheduleKind, ...]:
    """Every kind, in table order."""
    return tuple(_TABLE.values())


def default() -> ScheduleKind:
    """The kind of a task or import entry that names none."""
    return next(iter(_TABLE.values()))


def lookup(value: object) -> ScheduleKind | None:
    """The kind stored as ``value``, or None."""
    return _TABLE.get(value) if isinstance(value, str) else None


def get(value: object) -> ScheduleKind:
    """The kind stored as ``value``, or :class:`UnknownKind` saying which exist."""
    kind = lookup(value)
    if kind is None:
        valid = ", ".join(_TABLE)
        raise UnknownKind(f"unknown schedule kind {value!r}; use one of: {valid}")
    return kind


def for_schedule(schedule: object) -> ScheduleKind:
    """The kind that built ``schedule`` (matched on its exact class)."""
    for kind in _TABLE.values():
        if type(schedule) is kind.schedule_class:
            return kind
    raise UnknownKind(f"no schedule kind builds {type(schedule).__name__}")


def choices() -> list[tuple[str, str]]:
    """``(value, label)`` of every kind, for choice fields."""
    return [(kind.value, kind.label) for kind in _TABLE.values()]


def model_fields() -> tuple[str, ...]:
    """Every task column some kind reads, each once, in table order."""
    return tuple(dict.fromkeys(name for kind in _TABLE.values() for name in kind.model_fields))


def json_keys() -> frozenset[str]:
    """Every key some kind uses in the ``schedule`` object of the export format."""
    return frozenset(key for kind in _TABLE.values() for key in kind.json_keys)


def cleared_for(kind: ScheduleKind) -> dict[str, Any]:
    """What the other kinds' columns are set to on a task of ``kind`` (so a task holds exactly
    one schedule); columns ``kind`` reads are left out."""
    values: dict[str, Any] = {}
    for other in _TABLE.values():
        if other is not kind:
            values.update(other.cleared)
    return {name: value for name, value in values.items() if name not in kind.model_fields}
