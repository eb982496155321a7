"""Exactly-once claiming of due work, enforced by the database.

A slot is ``(task, scheduled_for)``. A runner takes it with a compare-and-set on the task's
``next_run_at`` inside one transaction that also creates the execution row; the unique
constraint on ``(task, scheduled_for)`` refuses any second record of the same slot. On SQLite
the transaction is ``BEGIN IMMEDIATE`` (settings), which serialises writers; on PostgreSQL the
task row is locked with ``FOR UPDATE SKIP LOCKED`` so concurrent runners pass over each other.

A runner holds a lease on each run and renews it while the run lasts (``renew_lease``); a run
whose lease ran out belongs to a runner that died and is marked abandoned (``reap_abandoned``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet

from scheduled_tasks import conf, schedules
from scheduled_tasks.models import Execution, ScheduledTask

Status = Execution.Status


class TaskBusy(Exception):
    """The task already runs as often as it may at once; the message is for people."""


@dataclass(frozen=True)
class Claim:
    execution: Execution
    task: ScheduledTask

    @property
    def runs(self) -> bool:
        """False when the claim only recorded skipped slots."""
        return self.execution.status == Status.RUNNING


def runner_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def timeout_for(task: ScheduledTask) -> int:
    return task.timeout_seconds or conf.get("DEFAULT_TIMEOUT_SECONDS")


def lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=conf.get("LEASE_SECONDS"))


def _locked(queryset: QuerySet[ScheduledTask]) -> QuerySet[ScheduledTask]:
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    return queryset


def _has_room(task: ScheduledTask, now: datetime) -> bool:
    return Execution.objects.live(now).filter(task_id=task.pk).count() < task.max_instances


@dataclass(frozen=True)
class CatchUp:
    """How a claim at ``now`` treats the slots missed since ``seen``."""

    run: bool
    covered: int
    skipped: int


def catch_up_decision(
    task: ScheduledTask, schedule: schedules.Schedule, seen: datetime, now: datetime
) -> CatchUp:
    """Pure policy: run once for all missed slots (default), or skip all but the latest; a
    grace period skips slots that are too late altogether."""
    missed = max(1, schedules.slots_between(schedule, seen, now))
    latest = schedules.last_slot_between(schedule, seen, now) or seen
    if task.grace_seconds is not None and (now - latest).total_seconds() > task.grace_seconds:
        return CatchUp(run=False, covered=0, skipped=missed)
    if task.catch_up == "skip":
        return CatchUp(run=True, covered=1, skipped=missed - 1)
    return CatchUp(run=True, covered=missed, skipped=0)


def claim_slot(
    task_id: int, seen_next_run_at: datetime, now: datetime, *, runner: str | None = None
) -> Claim | None:
    """Claim the slot ``seen_next_run_at`` of a task, or None if it is not ours to run.

    None also while the task already runs ``max_instances`` times: the slot stays due and runs
    (collapsed with any later ones) once the task has room.
    """
    try:
        with transaction.atomic():
            task = (
                _locked(ScheduledTask.objects.filter(pk=task_id, is_active=True))
                .filter(next_run_at=seen_next_run_at)
                .first()
            )
            if task is None or not _has_room(task, now):
                return None
            schedule = task.schedule
            decision = catch_up_decision(task, schedule, seen_next_run_at, now)
            following = schedules.next_fire_time(schedule, now)
            changes: dict[str, object] = {"next_run_at": following}
            if following is None:
                changes["is_active"] = False  # a one-off (or a finished cron) is done
            if decision.run:
                changes.update(last_run_at=now, last_status=Status.RUNNING)
            else:
                changes.update(last_status=Status.SKIPPED)
            changed = ScheduledTask.objects.filter(pk=task_id, next_run_at=seen_next_run_at).update(
                **changes
            )
            if changed != 1:
                return None
            execution = Execution.objects.create(
                task=task,
                status=Status.RUNNING if decision.run else Status.SKIPPED,
                trigger=Execution.Trigger.SCHEDULE,
                scheduled_for=seen_next_run_at,
                slots_covered=decision.covered,
                slots_skipped=decision.skipped,
                started_at=now if decision.run else None,
                finished_at=None if decision.run else now,
                created_at=now,
                lease_expires_at=lease_until(now) if decision.run else None,
                runner=runner or runner_identity(),
            )
    except IntegrityError:
        return None  # the slot was recorded by another runner
    for field, value in changes.items():
        setattr(task, field, value)
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
            raise TaskBusy(f"Task {task.pk} is being claimed by another runner; try again.")
        if not _has_room(locked, now):
            raise TaskBusy(f"Task “{locked.name}” is already running; try again when it ends.")
        ScheduledTask.objects.filter(pk=task.pk).update(last_run_at=now, last_status=Status.RUNNING)
        execution = Execution.objects.create(
            task=locked,
            status=Status.RUNNING,
            trigger=trigger,
            started_at=now,
            created_at=now,
            lease_expires_at=lease_until(now),
            runner=runner or runner_identity(),
        )
    return Claim(execution=execution, task=locked)


def claim_retry(execution_id: int, now: datetime, *, runner: str | None = None) -> Claim | None:
    """Start a pending retry whose time has come, or None if someone else took it."""
    with transaction.atomic():
        pending = Execution.objects.filter(pk=execution_id, status=Status.PENDING).first()
        if pending is None:
            return None
        task = _locked(ScheduledTask.objects.filter(pk=pending.task_id)).first()
        if task is None or not _has_room(task, now):
            return None
        changed = Execution.objects.filter(pk=execution_id, status=Status.PENDING).update(
            status=Status.RUNNING,
            started_at=now,
            lease_expires_at=lease_until(now),
            runner=runner or runner_identity(),
        )
        if changed != 1:
            return None
        ScheduledTask.objects.filter(pk=task.pk).update(last_run_at=now, last_status=Status.RUNNING)
    pending.refresh_from_db()
    return Claim(execution=pending, task=task)


def schedule_retry(execution: Execution, task: ScheduledTask, now: datetime) -> Execution | None:
    """After a failed, timed-out or abandoned run: a pending retry with exponential backoff,
    or None when the task's retries are used up."""
    if execution.status not in Execution.RETRYABLE_STATUSES:
        return None
    if execution.attempt > task.max_retries:
        return None
    delay = task.retry_backoff_seconds * 2 ** (execution.attempt - 1)
    return Execution.objects.create(
        task_id=task.pk,
        status=Status.PENDING,
        trigger=Execution.Trigger.RETRY,
        attempt=execution.attempt + 1,
        retry_of_id=execution.retry_of_id or execution.pk,
        not_before=now + timedelta(seconds=delay),
        created_at=now,
    )


def renew_lease(execution_id: int, now: datetime) -> bool:
    """Extend the lease of a run still in progress; False if it was taken away (reaped)."""
    return bool(
        Execution.objects.filter(pk=execution_id, status=Status.RUNNING).update(
            lease_expires_at=lease_until(now)
        )
    )


def reap_abandoned(now: datetime) -> int:
    """Mark running executions whose lease expired (their runner died) as abandoned, and
    schedule their retries."""
    stale = list(Execution.objects.stale(now).select_related("task"))
    reaped = 0
    for execution in stale:
        with transaction.atomic():
            changed = Execution.objects.filter(pk=execution.pk, status=Status.RUNNING).update(
                status=Status.ABANDONED,
                finished_at=now,
                lease_expires_at=None,
                error="The runner stopped before this run finished (its lease expired).",
            )
            if not changed:
                continue
            reaped += 1
            execution.status = Status.ABANDONED
            ScheduledTask.objects.filter(pk=execution.task_id, last_status=Status.RUNNING).update(
                last_status=Status.ABANDONED
            )
            schedule_retry(execution, execution.task, now)
    return reaped
