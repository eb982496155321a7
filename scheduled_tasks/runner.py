"""One unit of scheduling work: due -> claim -> execute -> record.

Every caller (the command, the daemon, the embedded thread, "Run now", tests) goes through
these functions. They take the time as an argument (or a ``clock`` for the moments inside a
long tick) and do no printing of their own: callers format the returned reports.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from scheduled_tasks import claims, leases, records, retries, schedules, services
from scheduled_tasks.claims import TaskBusy
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.sandbox import SnippetResult, run_function, run_snippet

__all__ = ["DuePlan", "TaskBusy", "TickReport", "next_due_at", "plan", "run_task_now", "tick"]

log = logging.getLogger("scheduled_tasks.runner")

Clock = Callable[[], datetime]
Executor = Callable[..., SnippetResult]
Hook = Callable[[ScheduledTask], None] | None
FinishHook = Callable[[Execution], None] | None
StopCheck = Callable[[], bool]

# How many due items one tick looks at; the rest wait for the next tick.
TICK_BATCH = 500
# Slots claimed per transaction: fewer commits per tick, while other runners still find work.
CLAIM_BATCH = 50


@dataclass
class TickReport:
    executions: list[Execution] = field(default_factory=list)
    skipped: list[Execution] = field(default_factory=list)  # missed slots recorded, not run
    busy: list[ScheduledTask] = field(default_factory=list)  # at their max_instances
    abandoned: int = 0

    @property
    def failed(self) -> list[Execution]:
        return [e for e in self.executions if e.status != Execution.Status.COMPLETED]


@dataclass(frozen=True)
class DuePlan:
    task: ScheduledTask
    due_since: datetime
    slots: int
    running: bool  # would wait: already at its max_instances


@dataclass(frozen=True)
class _Work:
    priority: int
    due: datetime
    task_id: int
    slot: datetime | None = None  # a schedule slot (next_run_at as seen) ...
    retry_id: int | None = None  # ... or a pending retry


def run_claim(
    claim: claims.Claim,
    *,
    clock: Clock = timezone.now,
    snippet_executor: Executor = run_snippet,
    function_executor: Executor = run_function,
    on_start: Hook = None,
    on_finish: FinishHook = None,
) -> Execution:
    """Execute a claimed run in the sandbox, record it, schedule its retry if it failed."""
    execution, task = claim.execution, claim.task
    if on_start is not None:
        on_start(task)
    log.info(
        "execution %s started: task %s %r (trigger=%s, attempt=%s, slot=%s, slots=%s)",
        execution.pk,
        task.pk,
        task.name,
        execution.trigger,
        execution.attempt,
        execution.scheduled_for.isoformat() if execution.scheduled_for else "-",
        execution.slots_covered,
    )

    lost = False

    def heartbeat() -> None:
        nonlocal lost
        moment = clock()
        if not leases.renew_lease(execution.pk, moment):
            lost = True
            log.warning("execution %s lost its lease (reaped as abandoned)", execution.pk)
        leases.renew_leases(execution.runner, moment)  # the claimed runs waiting behind it

    def cancel() -> str | None:
        # Another runner reaped this run (we were frozen past the lease): stop it, so the
        # retry the reaper scheduled is the only one doing the work.
        return "the run lost its lease to another runner and was stopped" if lost else None

    options = {
        "timeout": services.effective_timeout(task),
        "label": f"task-{task.pk}",
        "execution_id": execution.pk,
        "heartbeat": heartbeat,
        "cancel": cancel,
    }
    try:
        if task.runs_function:
            result = function_executor(
                task.function_name, dict(task.function_params or {}), now=clock(), **options
            )
        else:
            result = snippet_executor(task.code, **options)
    except Exception as exc:  # the sandbox itself failed (e.g. fork refused): record, go on
        log.exception("execution %s could not be run", execution.pk)
        result = SnippetResult(
            Execution.Status.FAILED, "", f"could not start the sandbox: {exc}", 0.0
        )
    finished_at = clock()
    retry = None
    previous = records.finish(execution, result, finished_at)
    if previous == Execution.Status.RUNNING:
        retry = retries.schedule_retry(execution, task, finished_at)
    elif previous == Execution.Status.ABANDONED:
        # Reaped while it went on: the reaper already scheduled any retry; a run that
        # completed after all makes that retry unnecessary.
        log.warning("execution %s finished after it was reaped: %s", execution.pk, result.status)
        if result.ok:
            retries.cancel_retries_of(execution, finished_at)
    else:
        log.warning("execution %s was stopped: it lost its lease to another runner", execution.pk)
        execution.refresh_from_db()
    error_tail = result.error.strip().splitlines()[-1] if result.error.strip() else ""
    log.log(
        logging.INFO if result.ok else logging.WARNING,
        "execution %s finished: task %s %r status=%s duration=%.3fs%s%s%s",
        execution.pk,
        task.pk,
        task.name,
        execution.status,
        result.duration,
        " (output truncated)" if result.output_truncated else "",
        f" error={error_tail!r}" if error_tail else "",
        f" retry={retry.pk} at {retry.not_before.isoformat()}" if retry else "",
    )
    if on_finish is not None:
        on_finish(execution)
    return execution


def _due_work(now: datetime) -> list[_Work]:
    slots = ScheduledTask.objects.due(now).values_list("pk", "next_run_at", "priority")
    retries = Execution.objects.due_retries(now).values_list(
        "pk", "task_id", "not_before", "task__priority"
    )
    work = [_Work(prio, due, pk, slot=due) for pk, due, prio in slots[:TICK_BATCH]]
    work += [_Work(prio, due, task_id, retry_id=pk) for pk, task_id, due, prio in retries]
    # Higher priority first; among equals, whatever has waited longest.
    work.sort(key=lambda w: (-w.priority, w.due, w.task_id))
    return work[:TICK_BATCH]


def tick(
    now: datetime,
    *,
    clock: Clock = timezone.now,
    snippet_executor: Executor = run_snippet,
    function_executor: Executor = run_function,
    runner: str | None = None,
    on_start: Hook = None,
    on_finish: FinishHook = None,
    should_stop: StopCheck = lambda: False,
) -> TickReport:
    """Run every task due at ``now`` once. A failing snippet never stops the others.

    Due slots are claimed in batches (one transaction each) and run one after another;
    ``should_stop`` is checked before each run: once it answers True (SIGTERM), the run in
    progress finishes, claimed runs not yet started are handed back and the tick returns.
    """
    runner = runner or claims.runner_identity()
    report = TickReport(abandoned=leases.reap_abandoned(now))
    work = _due_work(now)
    queue: deque[claims.Claim] = deque()
    index = 0
    while index < len(work) or queue:
        if should_stop():
            leases.release(queue, clock())
            break
        if queue:
            claim = queue.popleft()
            if leases.start(claim, clock(), runner=runner):
                report.executions.append(
                    run_claim(
                        claim,
                        clock=clock,
                        snippet_executor=snippet_executor,
                        function_executor=function_executor,
                        on_start=on_start,
                        on_finish=on_finish,
                    )
                )
            continue
        item = work[index]
        if item.retry_id is not None:
            index += 1
            pending = claims.claim_pending(item.retry_id, clock, runner=runner)
            if pending is not None:
                queue.append(pending)
            continue
        batch = []
        while index < len(work) and work[index].slot is not None and len(batch) < CLAIM_BATCH:
            batch.append(claims.Slot(work[index].task_id, work[index].slot))  # type: ignore[arg-type]
            index += 1
        result = claims.claim_slots(batch, clock, runner=runner)
        report.busy.extend(ScheduledTask.objects.filter(pk__in=result.busy))
        for claim in result.claims:
            if claim.runs:
                queue.append(claim)
            else:
                _log_not_run(claim)
                report.skipped.append(claim.execution)
    return report


def _log_not_run(claim: claims.Claim) -> None:
    execution = claim.execution
    if execution.status == Execution.Status.SKIPPED:
        log.info(
            "task %s %r: %s missed slot(s) skipped (grace period passed)",
            claim.task.pk,
            claim.task.name,
            execution.slots_skipped,
        )


def next_due_at(now: datetime) -> datetime | None:
    """The earliest moment something becomes due (for the daemon's sleep), or None."""
    from django.db.models import Min

    slot = ScheduledTask.objects.filter(is_active=True).aggregate(m=Min("next_run_at"))["m"]
    retry = Execution.objects.filter(status=Execution.Status.PENDING).aggregate(
        m=Min("not_before")
    )["m"]
    candidates = [moment for moment in (slot, retry) if moment is not None]
    return min(candidates) if candidates else None


def plan(now: datetime) -> list[DuePlan]:
    """What a tick at ``now`` would run and why, changing nothing (``--dry-run``)."""
    due = list(ScheduledTask.objects.due(now))
    live: dict[int, int] = {}
    for task_id in (
        Execution.objects.live(now).filter(task__in=due).values_list("task_id", flat=True)
    ):
        live[task_id] = live.get(task_id, 0) + 1
    return [
        DuePlan(
            task=task,
            due_since=task.next_run_at,
            slots=max(1, schedules.slots_between(task.schedule, task.next_run_at, now)),
            running=live.get(task.pk, 0) >= task.max_instances,
        )
        for task in due
    ]


def run_task_now(
    task: ScheduledTask,
    *,
    now: datetime,
    trigger: str = Execution.Trigger.MANUAL,
    clock: Clock = timezone.now,
    snippet_executor: Executor = run_snippet,
    function_executor: Executor = run_function,
    runner: str | None = None,
    on_start: Hook = None,
) -> Execution:
    """Run one task immediately, outside its schedule. Raises :class:`TaskBusy`."""
    claim = claims.claim_manual(task, now, trigger=trigger, runner=runner)
    return run_claim(
        claim,
        clock=clock,
        snippet_executor=snippet_executor,
        function_executor=function_executor,
        on_start=on_start,
    )
