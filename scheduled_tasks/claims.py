"""Exactly-once claiming of due slots, enforced by the database.

A slot is ``(task, scheduled_for)``. A runner takes it with a compare-and-set on the task's
``next_run_at`` inside one transaction that also creates the execution row; the unique
constraint on ``(task, scheduled_for)`` refuses any second record of the same slot. On SQLite
the transaction is ``BEGIN IMMEDIATE`` (settings), which serialises writers; on PostgreSQL the
task row is locked with ``FOR UPDATE SKIP LOCKED`` so concurrent runners pass over each other.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction

from scheduled_tasks import conf, schedules
from scheduled_tasks.models import Execution, ScheduledTask


class TaskBusy(Exception):
    """The task already has a live running execution; the message is for people."""


@dataclass(frozen=True)
class Claim:
    execution: Execution
    task: ScheduledTask


def runner_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def timeout_for(task: ScheduledTask) -> int:
    return task.timeout_seconds or conf.get("DEFAULT_TIMEOUT_SECONDS")


def lease_until(task: ScheduledTask, now: datetime) -> datetime:
    """A run cannot outlive its timeout, so a lease of timeout + grace needs no renewal."""
    return now + timedelta(seconds=timeout_for(task) + conf.get("LEASE_GRACE_SECONDS"))


def _locked(queryset):  # type: ignore[no-untyped-def]
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    return queryset


def _has_live_execution(task_id: int, now: datetime) -> bool:
    return Execution.objects.live(now).filter(task_id=task_id).exists()


def claim_slot(
    task_id: int, seen_next_run_at: datetime, now: datetime, *, runner: str | None = None
) -> Claim | None:
    """Claim the slot ``seen_next_run_at`` of a task, or None if someone else has it.

    Also None while the task is still running from an earlier slot: the slot stays due and
    runs (collapsed with any later ones) once the task is free.
    """
    try:
        with transaction.atomic():
            task = (
                _locked(ScheduledTask.objects.filter(pk=task_id, is_active=True))
                .filter(next_run_at=seen_next_run_at)
                .first()
            )
            if task is None or _has_live_execution(task_id, now):
                return None
            schedule = task.schedule
            following = schedules.next_fire_time(schedule, now)
            covered = max(1, schedules.slots_between(schedule, seen_next_run_at, now))
            changed = ScheduledTask.objects.filter(pk=task_id, next_run_at=seen_next_run_at).update(
                next_run_at=following, last_run_at=now, last_status=Execution.Status.RUNNING
            )
            if changed != 1:
                return None
            execution = Execution.objects.create(
                task=task,
                status=Execution.Status.RUNNING,
                trigger=Execution.Trigger.SCHEDULE,
                scheduled_for=seen_next_run_at,
                slots_covered=covered,
                started_at=now,
                created_at=now,
                lease_expires_at=lease_until(task, now),
                runner=runner or runner_identity(),
            )
    except IntegrityError:
        return None  # the slot was recorded by another runner
    task.next_run_at = following
    return Claim(execution=execution, task=task)


def claim_manual(
    task: ScheduledTask,
    now: datetime,
    *,
    trigger: str = Execution.Trigger.MANUAL,
    runner: str | None = None,
) -> Claim:
    """Start a run outside the schedule ("Run now", ``--task-id``). Raises :class:`TaskBusy`."""
    with transaction.atomic():
        locked = _locked(ScheduledTask.objects.filter(pk=task.pk)).first()
        if locked is None:
            raise ScheduledTask.DoesNotExist(f"task {task.pk} no longer exists")
        if _has_live_execution(task.pk, now):
            raise TaskBusy(f"Task “{locked.name}” is already running; try again when it ends.")
        ScheduledTask.objects.filter(pk=task.pk).update(
            last_run_at=now, last_status=Execution.Status.RUNNING
        )
        execution = Execution.objects.create(
            task=locked,
            status=Execution.Status.RUNNING,
            trigger=trigger,
            started_at=now,
            created_at=now,
            lease_expires_at=lease_until(locked, now),
            runner=runner or runner_identity(),
        )
    return Claim(execution=execution, task=locked)


def reap_abandoned(now: datetime) -> int:
    """Mark running executions whose lease expired (their runner died) as abandoned."""
    stale = list(Execution.objects.stale(now).values_list("pk", "task_id"))
    if not stale:
        return 0
    ids = [pk for pk, _ in stale]
    count = Execution.objects.filter(pk__in=ids, status=Execution.Status.RUNNING).update(
        status=Execution.Status.ABANDONED,
        finished_at=now,
        lease_expires_at=None,
        error="The runner stopped before this run finished (its lease expired).",
    )
    ScheduledTask.objects.filter(
        pk__in={task_id for _, task_id in stale}, last_status=Execution.Status.RUNNING
    ).update(last_status=Execution.Status.ABANDONED)
    return count
