"""What a schedule kind is: the base class every entry of the table of kinds
(:mod:`scheduled_tasks.schedules.kinds`) fills in, and the small protocols through which a
kind reads a form, an import entry or the ``preview_schedule`` command line.

Readers say how a problem is reported; the kind says what to check and with which message.
Nothing here imports Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, ClassVar, Protocol

from scheduled_tasks.schedules.base import Schedule, ScheduleError
from scheduled_tasks.schedules.cron import CronSchedule


class UnknownKind(ScheduleError):
    """A ``schedule_kind`` value no kind declares."""

    # A template asking ``task.kind`` of a row edited by hand shows nothing instead of failing.
    silent_variable_failure = True


# --- small helpers shared by the kinds and their callers ------------------------------------


def sentence(message: str) -> str:
    """A domain message ("unknown unit 'x'") as a sentence for a form ("Unknown unit 'x'.")."""
    message = message.strip()
    if not message:
        return message
    head = message[0].upper() + message[1:]
    return head + ("" if message.endswith((".", "!", "?")) else ".")


def json_type_name(value: object) -> str:
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


def cron_problem(expression: str, zone: str | tzinfo) -> str | None:
    """Why a 5-field cron expression cannot be used (``0 0 31 2 *`` never runs), or None."""
    try:
        CronSchedule.build(expression, zone)
    except ScheduleError as exc:
        return str(exc)
    return None


# --- what a kind reads its input through ----------------------------------------------------


class FormInput(Protocol):
    """The schedule part of the task form, as a kind sees it (``forms.ScheduleForm``)."""

    cleaned_data: dict[str, Any]
    now: datetime | None  # the moment the page was asked for, when known

    def has_error(self, name: str) -> bool: ...
    def add_error(self, field: str | None, error: Any) -> None: ...
    def missing(self, name: str, message: str) -> None: ...
    def resolve(self, name: str, value: datetime, zone: tzinfo | None) -> datetime | None:
        """A typed wall-clock time as an instant (UTC), or None with an error on ``name``."""
        ...


class JsonInput(Protocol):
    """The ``schedule`` object of one import entry; ``key`` is a key of that object."""

    now: datetime

    def problem(self, key: str, message: str) -> None: ...
    def problem_count(self) -> int: ...
    def moment(self, key: str, raw: object, zone: tzinfo | None) -> datetime | None:
        """An ISO 8601 date-time (naive = wall time in ``zone``) in UTC, or None with a
        problem."""
        ...


class CliInput(Protocol):
    """The options of ``preview_schedule``; errors raise (a usage error, exit status 2)."""

    now: datetime
    zone: tzinfo

    def value(self, name: str) -> Any: ...
    def given(self, name: str) -> bool: ...
    def whole_number(self, name: str) -> int: ...
    def moment(self, name: str) -> datetime: ...


@dataclass(frozen=True)
class CliOption:
    """One option of ``preview_schedule`` (``name`` is its dest: ``--name``)."""

    name: str
    help: str
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


# --- the kind --------------------------------------------------------------------------------


class ScheduleKind:
    """One kind of schedule. Subclasses set the class attributes and the abstract methods;
    the defaults describe a repeating schedule."""

    value: ClassVar[str]
    label: ClassVar[str]
    schedule_class: ClassVar[type]
    model_fields: ClassVar[tuple[str, ...]]
    # Values of this kind's columns on a task of another kind; a column not listed cannot be
    # empty and keeps what it holds.
    cleared: ClassVar[Mapping[str, Any]] = {}
    json_keys: ClassVar[tuple[str, ...]]
    is_one_off: ClassVar[bool] = False
    form_template: ClassVar[str]
    detail_template: ClassVar[str]
    # The option that picks this kind on the command line, the others only it reads, and
    # those of them it cannot do without.
    cli: ClassVar[CliOption]
    cli_extras: ClassVar[tuple[CliOption, ...]] = ()
    cli_required: ClassVar[tuple[str, ...]] = ()
    cli_summary: ClassVar[str]
    # The live preview's note when the schedule has no run left.
    ended_note: ClassVar[str] = "This schedule has no further runs."

    def __repr__(self) -> str:
        return f"<schedule kind {self.value!r}>"

    @property
    def form_fields(self) -> tuple[str, ...]:
        """The task form's fields of this kind: named as the columns."""
        return self.model_fields

    def build(self, values: Mapping[str, Any], tz: str | tzinfo) -> Schedule:
        """The schedule from stored values (``model_fields`` -> value), or ScheduleError."""
        raise NotImplementedError

    def model_values(self, schedule: Any) -> dict[str, Any]:
        """The column values that store ``schedule`` (one built by this kind)."""
        raise NotImplementedError

    def clean_form(self, form: FormInput, zone: tzinfo | None) -> Schedule | None:
        """Check this kind's form fields; the schedule, or None with errors on the form (also
        None, without an error, when the zone is wrong: that field has its own error)."""
        raise NotImplementedError

    def active_problem(self, schedule: Any, now: datetime) -> tuple[str, str] | None:
        """``(field, message)`` when an *active* task cannot have this schedule at ``now``."""
        return None

    def read_json(
        self, raw: Mapping[str, Any], reader: JsonInput, zone: tzinfo | None, is_active: bool
    ) -> Schedule | None:
        """The schedule of an import entry, or None with problems told to ``reader`` (missing
        and foreign keys are reported already; a missing key just gives None here)."""
        raise NotImplementedError

    def write_json(self, task: Any, zone: tzinfo) -> dict[str, Any]:
        """This kind's keys of the export format, read from a task's columns (times in
        ``zone``); works on a task whose stored schedule does not build."""
        raise NotImplementedError

    def from_cli(self, options: CliInput) -> Schedule:
        """The schedule from ``preview_schedule``'s options; ScheduleError when invalid."""
        raise NotImplementedError

    def ended_reason(self, schedule: Any) -> str | None:
        """Why an active task of this schedule would never run, when more can be said than
        "its schedule has no further runs"."""
        return None
