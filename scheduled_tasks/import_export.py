"""Export and import of scheduled tasks as JSON-ready data (the file format: docs/import-export.md).

No I/O here: the commands read and write files, these functions turn tasks into plain lists and
dicts and back through the API's task serializer (one implementation of the format). An import
validates every entry before it touches the database and then applies all of them in one
transaction, or none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from rest_framework.exceptions import ValidationError

from scheduled_tasks.api import task_format
from scheduled_tasks.api.serializers import TaskSerializer, flatten
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.schedules.kinds import json_type_name as _type_name


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


# --- export --------------------------------------------------------------------------------------


def export_task(task: ScheduledTask) -> dict[str, Any]:
    """One task as a JSON-ready dict; times are shown in the task's zone, with their offset."""
    return task_format.write_entry(task)


def export_tasks(tasks: Iterable[ScheduledTask]) -> list[dict[str, Any]]:
    """The tasks as a JSON-ready list sorted by name."""
    return sorted((export_task(task) for task in tasks), key=lambda entry: entry["name"])


# --- import --------------------------------------------------------------------------------------


def _serializer(raw: object, now: datetime) -> TaskSerializer:
    # Import matches tasks by name, so a name already taken is an update, not a problem.
    return TaskSerializer(data=raw, context={"now": now, "match_by_name": True})


def _name_of(raw: object) -> str | None:
    name = raw.get("name") if isinstance(raw, dict) else None
    return name if isinstance(name, str) and name.strip() else None


def validate_entries(entries: object, *, now: datetime) -> list[TaskSerializer]:
    """Check a whole parsed file: a valid serializer per entry, or
    :class:`ImportValidationError` listing every problem."""
    if not isinstance(entries, list):
        raise ImportValidationError(
            [ImportProblem(f"must be a JSON list of tasks, not {_type_name(entries)}")]
        )
    problems: list[ImportProblem] = []
    valid: list[TaskSerializer] = []
    first_position: dict[str, int] = {}
    for position, raw in enumerate(entries, start=1):
        name = _name_of(raw)
        serializer = _serializer(raw, now)
        if serializer.is_valid():
            valid.append(serializer)
        else:
            problems.extend(
                ImportProblem(message, position, name, path or None)
                for path, message in flatten(serializer.errors)
            )
        if name is not None:
            if name in first_position:
                message = f"duplicate name: entry {first_position[name]} has it too"
                problems.append(ImportProblem(message, position, name, "name"))
            else:
                first_position[name] = position
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
    names = [serializer.validated_data["entry"].name for serializer in valid]
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
        for position, (name, serializer) in enumerate(zip(names, valid, strict=True), start=1):
            serializer.instance = existing.get(name)
            (updated if serializer.instance is not None else created).append(name)
            try:
                serializer.save(user=user)
            except ValidationError as exc:
                # Validation refuses what saving would; should they ever disagree, the whole
                # import is still refused (leaving the atomic block rolls back).
                raise ImportValidationError(
                    [ImportProblem(message, position, name) for _, message in flatten(exc.detail)]
                ) from None
    return ImportReport(created=created, updated=updated)
