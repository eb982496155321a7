"""Exactly-once claiming of due work, enforced by the database.

A slot is ``(task, scheduled_for)``. A runner claims due slots in one transaction per batch:
it locks the task rows (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises
writers with ``BEGIN IMMEDIATE``), checks that each task still shows the slot it saw and has
room (``max_instances``), creates the execution rows, moves ``next_run_at`` to the following
slot and points the task at its new record (``last_execution``: the task's last status is that
record's, so recording a result writes the execution row alone). A unique constraint on
``(task, scheduled_for)`` refuses any second record of a slot. Every claim (a slot, "Run now",
a retry starting) moves the pointer, under the task row's lock; nothing else does.

A claimed execution is ``pending`` under the runner's lease until the runner starts it; see
``leases.py`` for starting, renewing and reaping, ``retries.py`` for retries.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count, QuerySet

from scheduled_tasks import choices, last_outcome, schedules
from scheduled_tasks.leases import lease_until
from scheduled_tasks.models import Execution, ScheduledTask

log = logging.getLogger("scheduled_tasks.claims")

Status = Execution.Status
Clock = Callable[[], datetime]

# Columns a claim plans with (before any lock): never the code or the description.
_CLAIM_FIELDS = (
    "id", "name", "is_active", "next_run_at", "schedule_kind", *schedules.kinds.model_fields(),
    "time_zone", "catch_up", "grace_seconds", "max_instances",
    "updated_at", "last_run_at", "last_execution",
)  # fmt: skip


class TaskBusy(Exception):
    """The task already runs as often as it may at once; the message is for people."""


@dataclass(frozen=True)
class Claim:
    execution: Execution
    task: ScheduledTask

    @property
    def runs(self) -> bool:
        """False when the claim only recorded skipped slots (or a broken schedule)."""
        return self.execution.status in (Status.PENDING, Status.RUNNING)


@dataclass(frozen=True)
class Slot:
    task_id: int
    seen: datetime  # next_run_at as the runner saw it


@dataclass
class BatchResult:
    claims: list[Claim]
    busy: list[int]  # task ids at their max_instances


def runner_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _locked(queryset: QuerySet[ScheduledTask]) -> QuerySet[ScheduledTask]:
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    return queryset


def _live_counts(task_ids: Iterable[int], now: datetime) -> dict[int, int]:
    rows = (
        Execution.objects.live(now)
        .filter(task_id__in=list(task_ids))
        .values("task_id")
        .annotate(n=Count("id"))
    )
    return {row["task_id"]: row["n"] for row in rows}


@dataclass(frozen=True)
class CatchUp:
    """How a claim treats the slots missed since the one it saw."""

    run: bool
    covered: int
    skipped: int
    slot: datetime  # the slot the execution records


def catch_up_decision(
    task: ScheduledTask, schedule: schedules.Schedule, seen: datetime, now: datetime
) -> CatchUp:
    """Pure policy: run once for all missed slots (default), or skip all but the latest; a
    grace period skips slots that are too late altogether."""
    count, latest = schedules.missed_slots(schedule, seen, now)
    missed, latest = max(1, count), latest or seen
    if task.grace_seconds is not None and (now - latest).total_seconds() > task.grace_seconds:
        return CatchUp(run=False, covered=0, skipped=missed, slot=seen)
    if task.catch_up == choices.CatchUp.SKIP:
        return CatchUp(run=True, covered=1, skipped=missed - 1, slot=latest)
    return CatchUp(run=True, covered=missed, skipped=0, slot=seen)


@dataclass(frozen=True)
class _Plan:
    """A slot's fate, worked out before any lock is taken (it may walk many missed slots)."""

    slot: Slot
    updated_at: datetime
    decision: CatchUp | None
    following: datetime | None
    problem: str = ""


def _plan(task: ScheduledTask, slot: Slot, now: datetime) -> _Plan:
    try:
        schedule = task.schedule
        decision = catch_up_decision(task, schedule, slot.seen, now)
        following = schedules.next_fire_time(schedule, now)
    except schedules.ScheduleError as exc:
        return _Plan(slot, task.updated_at, None, None, problem=str(exc))
    return _Plan(slot, task.updated_at, decision, following)


def claim_slots(
    slots: list[Slot], clock: Clock, *, runner: str | None = None, start: bool = False
) -> BatchResult:
    """Claim due slots in one transaction: executions ``pending`` under this runner's lease
    (``running`` with ``start``), skipped-slot records, or a record of a broken schedule.

    A slot another runner got first, or whose task changed since it was seen, is left alone.
    """
    runner = runner or runner_identity()
    if not slots:
        return BatchResult([], [])
    planned_at = clock()
    seen_tasks = ScheduledTask.objects.only(*_CLAIM_FIELDS).in_bulk([s.task_id for s in slots])
    plans = [_plan(seen_tasks[s.task_id], s, planned_at) for s in slots if s.task_id in seen_tasks]
    result = BatchResult([], [])
    with transaction.atomic():
        ids = [p.slot.task_id for p in plans]
        # Whole rows: the runs need the code, timeout and function (no read after the commit).
        tasks = _locked(ScheduledTask.objects.filter(pk__in=ids)).in_bulk()
        live = _live_counts(tasks, clock())
        now = clock()  # after the lock and the look at running runs: when the claim is made
        recorded = set(
            Execution.objects.filter(
                trigger=Execution.Trigger.SCHEDULE,
                task_id__in=list(tasks),
                scheduled_for__in=[p.slot.seen for p in plans]
                + [p.decision.slot for p in plans if p.decision],
            ).values_list("task_id", "scheduled_for")
        )
        changed: list[ScheduledTask] = []
        new: list[tuple[ScheduledTask, Execution]] = []
        for plan in plans:
            task = tasks.get(plan.slot.task_id)
            if (
                task is None  # locked by another runner, or gone
                or not task.is_active
                or task.next_run_at != plan.slot.seen  # claimed by someone else
                or task.updated_at != plan.updated_at  # edited since we planned
            ):
                continue
            outcome = _apply(task, plan, now, runner, live, recorded, start)
            if outcome == "busy":
                result.busy.append(task.pk)
                continue
            changed.append(task)
            if outcome is not None:
                new.append((task, outcome))
        if new:
            # The records first (ids back from the INSERT: RETURNING on PostgreSQL and SQLite
            # >= 3.35), so the one UPDATE of the tasks also points each at its new record.
            Execution.objects.bulk_create([execution for _, execution in new])
            for task, execution in new:
                task.last_execution_id = execution.pk
                task.last_failed = last_outcome.is_failing(execution.status)
        _save_claimed(changed)
    for task, execution in new:
        result.claims.append(Claim(execution=execution, task=task))
    return result


_CLAIMED_FIELDS = ("next_run_at", "is_active", "last_run_at", "last_execution", "last_failed")


def _save_claimed(tasks: list[ScheduledTask]) -> None:
    """Write each claimed task's new state: one parameterised UPDATE run for all of them.

    (``bulk_update`` builds a CASE expression per field and object in Python, which costs more
    than the claim itself; the rows are locked by us, so a plain UPDATE by id is safe.)
    """
    if not tasks:
        return
    meta = ScheduledTask._meta
    fields = [meta.get_field(name) for name in _CLAIMED_FIELDS]
    quote = connection.ops.quote_name
    sql = "UPDATE {} SET {} WHERE {} = %s".format(  # noqa: S608 - names from _meta, values bound
        quote(meta.db_table),
        ", ".join(f"{quote(f.column)} = %s" for f in fields),
        quote(meta.pk.column),
    )
    rows = [
        [f.get_db_prep_save(getattr(task, f.attname), connection) for f in fields] + [task.pk]
        for task in tasks
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _apply(
    task: ScheduledTask,
    plan: _Plan,
    now: datetime,
    runner: str,
    live: dict[int, int],
    recorded: set[tuple[int, datetime]],
    start: bool,
) -> Execution | str | None:
    """Change ``task`` in memory for its claim; return the execution to create, "busy", or
    None when the slot only needs moving past."""
    base = {"task": task, "trigger": Execution.Trigger.SCHEDULE, "created_at": now}
    if plan.decision is None:
        # A stored schedule that no longer builds (a zone this server lacks, a row edited by
        # hand): stop the task, say why, and let every other task go on.
        log.error("task %s %r deactivated: %s", task.pk, task.name, plan.problem)
        task.is_active, task.next_run_at = False, None
        return Execution(
            **base,
            status=Status.FAILED,
            scheduled_for=None,
            finished_at=now,
            error=f"The task's schedule cannot be evaluated ({plan.problem}); the task was "
            "deactivated. Fix the schedule and activate it again.",
        )
    decision = plan.decision
    if decision.run and live.get(task.pk, 0) >= task.max_instances:
        return "busy"
    task.next_run_at = plan.following
    if plan.following is None:
        task.is_active = False  # a one-off (or a cron date that never comes again) is done
    if (task.pk, decision.slot) in recorded:
        # Already recorded (the schedule was edited back onto a slot that ran): move past it.
        log.warning("task %s slot %s was already recorded", task.pk, decision.slot.isoformat())
        return None
    if not decision.run:
        return Execution(
            **base,
            status=Status.SKIPPED,
            scheduled_for=decision.slot,
            slots_covered=0,
            slots_skipped=decision.skipped,
            finished_at=now,
            runner=runner,
        )
    live[task.pk] = live.get(task.pk, 0) + 1
    task.last_run_at = now
    return Execution(
        **base,
        status=Status.RUNNING if start else Status.PENDING,
        scheduled_for=decision.slot,
        slots_covered=decision.covered,
        slots_skipped=decision.skipped,
        started_at=now if start else None,
        lease_expires_at=lease_until(now),
        runner=runner,
        version_id=task.current_version_id,  # the locked row's: what this run will run
    )


def claim_manual(
    task: ScheduledTask,
    now: datetime,
    *,
    trigger: str = Execution.Trigger.MANUAL,
    runner: str | None = None,
    start: bool = True,
) -> Claim:
    """Start a run outside the schedule ("Run now", ``--task-id``): ``running`` under this
    runner's lease, or with ``start=False`` ``pending`` under it (for a worker to start, see
    ``backends``). Raises :class:`TaskBusy`."""
    with transaction.atomic():
        locked = _locked(ScheduledTask.objects.filter(pk=task.pk)).first()
        if locked is None:
            raise TaskBusy(f"Task {task.pk} is being claimed by another runner; try again.")
        if _live_counts([locked.pk], now).get(locked.pk, 0) >= locked.max_instances:
            raise TaskBusy(f"Task “{locked.name}” is already running; try again when it ends.")
        execution = Execution.objects.create(
            task=locked,
            status=Status.RUNNING if start else Status.PENDING,
            trigger=trigger,
            started_at=now if start else None,
            not_before=None if start else now,
            created_at=now,
            lease_expires_at=lease_until(now),
            runner=runner or runner_identity(),
            version_id=locked.current_version_id,
        )
        ScheduledTask.objects.filter(pk=task.pk).update(
            last_run_at=now, last_execution=execution, last_failed=False
        )
        locked.last_run_at, locked.last_execution, locked.last_failed = now, execution, False
    return Claim(execution=execution, task=locked)


def claim_pending(
    execution_id: int, now: datetime | Clock, *, runner: str | None = None, start: bool = True
) -> Claim | None:
    """Start a pending execution whose time has come (a retry, or a claim handed back), or
    None if someone else took it or its task has no room. With ``start=False`` it stays
    ``pending``, now under this runner's lease (for a worker to start, see ``backends``)."""
    clock = now if callable(now) else (lambda: now)
    with transaction.atomic():
        pending = Execution.objects.filter(pk=execution_id, status=Status.PENDING).first()
        if pending is None:
            return None
        task = _locked(ScheduledTask.objects.filter(pk=pending.task_id)).first()
        if task is None:
            return None
        checked_at = clock()
        if (
            not task.is_active
            and not task.is_one_off
            and pending.trigger != Execution.Trigger.MANUAL
        ):
            # Deactivated since: its retries do not run (a one-off deactivates itself, so
            # its retries still do). A run someone asked for (the API's run_now) runs, as
            # "Run now" on the page does.
            Execution.objects.filter(pk=execution_id, status=Status.PENDING).update(
                status=Status.CANCELLED, finished_at=checked_at, error="The task was deactivated."
            )
            return None
        if _live_counts([task.pk], checked_at).get(task.pk, 0) >= task.max_instances:
            return None
        moment = clock()  # after the look at running runs: when the run starts
        started = {"status": Status.RUNNING, "started_at": moment} if start else {}
        # Nobody's claim (no lease): a run another runner holds is not taken from it.
        changed = Execution.objects.filter(
            pk=execution_id, status=Status.PENDING, not_before__lte=moment, lease_expires_at=None
        ).update(
            **started,
            lease_expires_at=lease_until(moment),
            runner=runner or runner_identity(),
            # What runs is the task's code as it is now (a retry's code may have been edited
            # since the run it retries).
            version_id=task.current_version_id,
        )
        if changed != 1:
            return None
        ScheduledTask.objects.filter(pk=task.pk).update(
            last_run_at=moment, last_execution=pending, last_failed=False
        )
    pending.refresh_from_db()
    task.last_run_at, task.last_execution, task.last_failed = moment, pending, False
    return Claim(execution=pending, task=task)
