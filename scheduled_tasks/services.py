"""The one place that writes a task: the pages, the admin, import, the registered jobs and the
demo data all create, edit, activate, deactivate and delete tasks through these functions.

Each takes ``now`` from its caller (the view, admin hook or command reads the clock), puts
``next_run_at`` on the schedule's grid and refuses what would leave a task "active" that can
never run (a one-off whose time has passed, a schedule that has ended). The same input gives
the same result whichever way it came in.

The runner keeps its own bookkeeping columns (``RUNNER_FIELDS``) up to date when it claims
work (``claims``: the next slot, the last run and the pointer to it); nothing here writes
those, and nothing there writes anything else (``tests/test_services.py`` checks both).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet

from scheduled_tasks import conf, schedules
from scheduled_tasks.models import ScheduledTask, TaskVersion

# The runner's columns: moved by claims (next slot, a finished one-off turning inactive, the
# last run and the pointer to its record). A save from a page must not overwrite them with
# what it read earlier.
RUNNER_FIELDS = frozenset(
    {"next_run_at", "is_active", "last_run_at", "last_execution", "last_failed"}
)

# What saving an existing task writes: everything a person defines, the next slot that follows
# from it and who changed it when; never the creator nor the last run's outcome.
SAVED_FIELDS: tuple[str, ...] = tuple(
    f.name
    for f in ScheduledTask._meta.concrete_fields
    if not f.primary_key
    and f.name not in {"last_run_at", "last_execution", "last_failed", "created_by", "created_at"}
)
_ACTIVATION_FIELDS = ("is_active", "next_run_at", "updated_by", "updated_at")

Editor = AbstractBaseUser


class TaskWriteError(Exception):
    """A task write refused; nothing was saved. The message is for people and names the task."""

    def __init__(self, task: ScheduledTask, message: str) -> None:
        self.task = task
        super().__init__(message)


class CannotActivate(TaskWriteError):
    """An active task must have a next run: its schedule has ended or cannot be evaluated."""


@dataclass
class BulkResult:
    """What a bulk activation or deactivation did: the tasks changed and those refused."""

    changed: list[ScheduledTask] = field(default_factory=list)
    refused: list[TaskWriteError] = field(default_factory=list)


def effective_timeout(task: ScheduledTask | None) -> int:
    """The wall-clock limit of one run: the task's own, or ``DEFAULT_TIMEOUT_SECONDS``."""
    if task is None or task.timeout_seconds is None:
        return int(conf.get("DEFAULT_TIMEOUT_SECONDS"))
    return task.timeout_seconds


def next_run_for(task: ScheduledTask, now: datetime) -> datetime | None:
    """Where an active task's next run falls after a create, edit or activation at ``now``;
    None for an inactive task. Raises :class:`CannotActivate` when an active task has none."""
    if not task.is_active:
        return None
    try:
        following = task.first_run_after(now)
    except schedules.ScheduleError as exc:
        raise CannotActivate(
            task, f"Task “{task.name}” cannot be active: its schedule is invalid ({exc})."
        ) from None
    if following is None:
        raise CannotActivate(task, _ended_message(task, now))
    return following


def _ended_message(task: ScheduledTask, now: datetime) -> str:
    # The kind may say more (a one-off: when its time was); the schedule built, or we would
    # not be here.
    reason = task.kind.ended_reason(task.schedule) or "its schedule has no further runs"
    return (
        f"Task “{task.name}” was not activated: {reason}. Edit it and give it a time in the future."
    )


def save_task(
    task: ScheduledTask, *, now: datetime, user: Editor | None = None, note: str = ""
) -> ScheduledTask:
    """Create or update ``task`` as it stands in memory (checked by a form or an import).

    Puts ``next_run_at`` on the grid from ``now``; records ``user`` as creator (new task) and
    editor. A new task, or a change of its code, function or parameters, becomes a new
    :class:`TaskVersion` (by ``user`` at ``now``, with ``note``) that the task points at.
    An existing task's runner columns (last run, last status) are left as stored.
    Raises :class:`CannotActivate` for an active task that would never run; nothing is saved.
    """
    next_run_at = next_run_for(task, now)
    task.next_run_at = next_run_at
    if user is not None:
        if task.pk is None:
            task.created_by = user
        task.updated_by = user
    with transaction.atomic():
        if task.pk is None:
            task.save(force_insert=True)
            version = _new_version(task, 1, now=now, user=user, note=note)
            ScheduledTask.objects.filter(pk=task.pk).update(current_version=version)
        else:
            latest = task.versions.order_by("-number").first()
            if latest is not None and latest.same_content(task):
                task.current_version = latest
            else:
                number = 1 if latest is None else latest.number + 1
                _new_version(task, number, now=now, user=user, note=note)
            task.save(update_fields=SAVED_FIELDS)
    return task


def _new_version(
    task: ScheduledTask, number: int, *, now: datetime, user: Editor | None, note: str
) -> TaskVersion:
    version = TaskVersion.objects.create(
        task=task,
        number=number,
        code=task.code,
        function_name=task.function_name,
        function_params=task.function_params or {},
        note=note,
        created_at=now,
        created_by=user,
    )
    task.current_version = version
    return version


def restore_version(
    task: ScheduledTask, version: TaskVersion, *, now: datetime, user: Editor | None = None
) -> TaskVersion | None:
    """Make ``task`` run ``version``'s code (or function) again, as a new version "restored
    from vN"; None when the task already runs exactly that. The rest of the task is kept.
    Raises :class:`TaskWriteError` as :func:`save_task` does (nothing is saved)."""
    if version.task_id != task.pk:
        raise TaskWriteError(task, f"Version {version.number} is not a version of “{task.name}”.")
    before = task.current_version_id
    task.code = version.code
    task.function_name = version.function_name
    task.function_params = version.function_params or {}
    save_task(task, now=now, user=user, note=f"restored from v{version.number}")
    if task.current_version_id == before:
        return None
    return task.current_version


def set_active(
    task: ScheduledTask, active: bool, *, now: datetime, user: Editor | None = None
) -> bool:
    """Activate or deactivate ``task``; True if it changed, False if it already was so.

    Activating puts the next run on the grid from ``now`` and raises :class:`CannotActivate`
    (the task left as it was, in memory and stored) when the schedule has no further runs.
    """
    was_active = task.is_active
    if was_active == active and (not active or task.next_run_at is not None):
        return False
    next_run_at = None
    if active:
        # (An active task without a next run, left by older code, is activated afresh.)
        task.is_active = True
        try:
            next_run_at = next_run_for(task, now)
        except TaskWriteError:
            task.is_active = was_active
            raise
    task.is_active, task.next_run_at = active, next_run_at
    if user is not None:
        task.updated_by = user
    with transaction.atomic():
        task.save(update_fields=_ACTIVATION_FIELDS)
    return True


def set_active_many(
    tasks: Iterable[ScheduledTask], active: bool, *, now: datetime, user: Editor | None = None
) -> BulkResult:
    """:func:`set_active` for each task; refusals are collected, not raised (the admin's bulk
    actions report one message per refused task)."""
    result = BulkResult()
    for task in tasks:
        try:
            changed = set_active(task, active, now=now, user=user)
        except TaskWriteError as exc:
            result.refused.append(exc)
            continue
        if changed:
            result.changed.append(task)
    return result


def delete_task(task: ScheduledTask) -> None:
    """Delete ``task`` with its executions (a run in progress finishes, but is not recorded)."""
    with transaction.atomic():
        task.delete()


def delete_tasks(tasks: QuerySet[ScheduledTask]) -> int:
    """Delete the tasks of ``tasks`` with their executions; the number of tasks deleted."""
    with transaction.atomic():
        _, per_model = tasks.delete()
    return per_model.get(ScheduledTask._meta.label, 0)
