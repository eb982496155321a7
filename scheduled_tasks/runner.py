"""One unit of scheduling work: due -> claim -> execute -> record.

Every caller (the command, "Run now" in the web UI, tests) goes through these functions. They
take the time as an argument (or a ``clock`` for the moments inside a long tick) and do no
printing of their own: callers format the returned reports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from scheduled_tasks import claims, records, schedules
from scheduled_tasks.claims import TaskBusy
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.sandbox import SnippetResult, run_snippet

__all__ = ["DuePlan", "TaskBusy", "TickReport", "plan", "run_task_now", "tick"]

log = logging.getLogger("scheduled_tasks.runner")

Clock = Callable[[], datetime]
Executor = Callable[..., SnippetResult]
Hook = Callable[[ScheduledTask], None] | None
FinishHook = Callable[[Execution], None] | None

# How many due tasks one tick looks at; the rest wait for the next tick.
TICK_BATCH = 500


@dataclass
class TickReport:
    executions: list[Execution] = field(default_factory=list)
    busy: list[ScheduledTask] = field(default_factory=list)  # still running from before
    abandoned: int = 0

    @property
    def failed(self) -> list[Execution]:
        return [e for e in self.executions if e.status != Execution.Status.COMPLETED]


@dataclass(frozen=True)
class DuePlan:
    task: ScheduledTask
    due_since: datetime
    slots: int
    running: bool  # would be skipped: still running from an earlier slot


def _execute(
    claim: claims.Claim,
    clock: Clock,
    executor: Executor,
    on_start: Hook = None,
    on_finish: FinishHook = None,
) -> Execution:
    execution, task = claim.execution, claim.task
    if on_start is not None:
        on_start(task)
    log.info(
        "execution %s started: task %s %r (trigger=%s, slot=%s, slots=%s)",
        execution.pk,
        task.pk,
        task.name,
        execution.trigger,
        execution.scheduled_for.isoformat() if execution.scheduled_for else "-",
        execution.slots_covered,
    )
    try:
        result = executor(task.code, timeout=claims.timeout_for(task), label=f"task-{task.pk}")
    except Exception as exc:  # the sandbox itself failed (e.g. fork refused): record, go on
        log.exception("execution %s could not be run", execution.pk)
        result = SnippetResult("failed", "", f"could not start the sandbox: {exc}", 0.0)
    records.finish(execution, result, clock())
    error_tail = result.error.strip().splitlines()[-1] if result.error.strip() else ""
    log.log(
        logging.INFO if result.ok else logging.WARNING,
        "execution %s finished: task %s %r status=%s duration=%.3fs%s%s",
        execution.pk,
        task.pk,
        task.name,
        execution.status,
        result.duration,
        " (output truncated)" if result.output_truncated else "",
        f" error={error_tail!r}" if error_tail else "",
    )
    if on_finish is not None:
        on_finish(execution)
    return execution


def tick(
    now: datetime,
    *,
    clock: Clock = timezone.now,
    executor: Executor = run_snippet,
    runner: str | None = None,
    on_start: Hook = None,
    on_finish: FinishHook = None,
) -> TickReport:
    """Run every task due at ``now`` once. A failing snippet never stops the others."""
    report = TickReport(abandoned=claims.reap_abandoned(now))
    due = list(ScheduledTask.objects.due(now).values_list("pk", "next_run_at")[:TICK_BATCH])
    for task_id, seen in due:
        claim = claims.claim_slot(task_id, seen, clock(), runner=runner)
        if claim is None:
            busy = ScheduledTask.objects.filter(pk=task_id, next_run_at=seen).first()
            if busy is not None:
                report.busy.append(busy)
            continue
        report.executions.append(_execute(claim, clock, executor, on_start, on_finish))
    return report


def plan(now: datetime) -> list[DuePlan]:
    """What a tick at ``now`` would run and why, changing nothing (``--dry-run``)."""
    due = list(ScheduledTask.objects.due(now))
    running = set(
        Execution.objects.live(now)
        .filter(task_id__in=[t.pk for t in due])
        .values_list("task_id", flat=True)
    )
    return [
        DuePlan(
            task=task,
            due_since=task.next_run_at,
            slots=max(1, schedules.slots_between(task.schedule, task.next_run_at, now)),
            running=task.pk in running,
        )
        for task in due
    ]


def run_task_now(
    task: ScheduledTask,
    *,
    now: datetime,
    trigger: str = Execution.Trigger.MANUAL,
    clock: Clock = timezone.now,
    executor: Executor = run_snippet,
    runner: str | None = None,
    on_start: Hook = None,
) -> Execution:
    """Run one task immediately, outside its schedule. Raises :class:`TaskBusy`."""
    claim = claims.claim_manual(task, now, trigger=trigger, runner=runner)
    return _execute(claim, clock, executor, on_start)
