"""One unit of scheduling work: due -> claim -> execute -> record.

Every caller (the command, the daemon, the embedded thread, "Run now", tests) goes through
these functions. They take the time as an argument (or a ``clock`` for the moments inside a
long tick) and do no printing of their own: callers format the returned reports.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from scheduled_tasks import (
    backends,
    claims,
    conf,
    leases,
    loglines,
    partial_output,
    records,
    retries,
    schedules,
    services,
)
from scheduled_tasks.claims import TaskBusy
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.pool import (
    CANCEL_CHECK_SECONDS,
    NOT_RUNNING,
    POLL_SECONDS,
    Pool,
    follows_children,
)
from scheduled_tasks.querysets import any_work
from scheduled_tasks.sandbox import (
    SandboxRun,
    SnippetResult,
    run_function,
    run_snippet,
    start_function,
    start_snippet,
)
from scheduled_tasks.sandbox.childrun import Watch, follow

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
    # A backend whose workers run the work elsewhere (``dispatch``): what was handed to it,
    # and what was claimed but could not be (sent again once its claim expires).
    dispatched: list[Execution] = field(default_factory=list)
    undelivered: list[Execution] = field(default_factory=list)

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
    """Execute a claimed run in the sandbox (here, to its end), record it, schedule its retry
    if it failed."""
    execution, task = claim.execution, claim.task
    lines = loglines.LogLines(execution.pk, clock)
    options = {**begin_run(claim, on_start), "on_log": lines.add}
    lost = False
    next_check = time.monotonic() + CANCEL_CHECK_SECONDS
    output: partial_output.PartialOutput | None = None

    def heartbeat() -> None:
        nonlocal lost
        moment = clock()
        if not leases.renew_lease(execution.pk, moment):
            lost = True
            log.warning("execution %s lost its lease (reaped as abandoned)", execution.pk)
        leases.renew_leases(execution.runner, moment)  # the claimed runs waiting behind it

    def cancel() -> str | None:
        # Asked on every look at the run: the lines it logged meanwhile are stored (at most
        # every STORE_EVERY_SECONDS). Another runner reaped this run (we were frozen past the
        # lease): stop it, so the retry the reaper scheduled is the only one doing the work.
        # A person cancelled it (its record is no longer running, looked at once a second):
        # stop it too; its result then writes nothing.
        nonlocal next_check
        loglines.store([lines])
        if output is not None:  # what it printed so far, at most every second
            output.store()
        if lost:
            return LOST_LEASE
        moment = time.monotonic()
        if moment >= next_check:
            next_check = moment + CANCEL_CHECK_SECONDS
            if not leases.still_running([execution.pk]):
                log.info("execution %s: %s", execution.pk, NOT_RUNNING)
                return NOT_RUNNING
        return None

    try:
        if follows_children(snippet_executor, function_executor):
            # The real sandbox: started and followed here, so its output so far is stored.
            run = call_sandbox(task, start_snippet, start_function, clock(), **options)
            output = partial_output.of_run(execution.pk, run)
            result = follow_run(run, heartbeat, cancel)
        else:  # executors that run to the end when called
            result = call_sandbox(
                task,
                snippet_executor,
                function_executor,
                clock(),
                heartbeat=heartbeat,
                cancel=cancel,
                **options,
            )
    except Exception as exc:  # the sandbox itself failed (e.g. fork refused): record, go on
        result = could_not_start(execution, exc)
    # The lines first: a page that shows the run ended shows all of them.
    loglines.store([lines], everything=True)
    return finish_run(claim, result, clock(), on_finish)


def follow_run(
    run: SandboxRun, heartbeat: Callable[[], object], cancel: Callable[[], str | None]
) -> SnippetResult:
    """Follow a started sandbox run to its end, as ``run_snippet`` does: ``heartbeat`` every
    third of the lease, ``cancel`` asked on every look (at least every half second)."""
    follow(run.child, Watch(heartbeat, conf.get("LEASE_SECONDS") / 3, cancel))
    return run.result()


def call_sandbox(
    task: ScheduledTask,
    snippet: Callable[..., Any],
    function: Callable[..., Any],
    now: datetime,
    **options: Any,
) -> Any:
    """Hand a task's run to ``snippet(code, ...)`` or, for a registered function,
    ``function(name, params, now=..., ...)``: the sandbox's run_* or start_* pair."""
    if task.runs_function:
        return function(task.function_name, dict(task.function_params or {}), now=now, **options)
    return snippet(task.code, **options)


# Why a run is stopped when another runner reaped it (we were frozen past the lease).
LOST_LEASE = "the run lost its lease to another runner and was stopped"


def begin_run(claim: claims.Claim, on_start: Hook = None) -> dict[str, Any]:
    """Log a run's start; the sandbox options it runs with (timeout, label, execution id)."""
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
    return {
        "timeout": services.effective_timeout(task),
        "label": f"task-{task.pk}",
        "execution_id": execution.pk,
    }


def could_not_start(execution: Execution, exc: BaseException) -> SnippetResult:
    """The result of a run the sandbox could not start (e.g. fork refused)."""
    log.exception("execution %s could not be run", execution.pk, exc_info=exc)
    return SnippetResult(Execution.Status.FAILED, "", f"could not start the sandbox: {exc}", 0.0)


def finish_run(
    claim: claims.Claim, result: SnippetResult, finished_at: datetime, on_finish: FinishHook = None
) -> Execution:
    """Record a run's result, schedule its retry if it failed, log it."""
    execution, task = claim.execution, claim.task
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
        # Not written: the record says cancelled (by a person) or abandoned (reaped).
        execution.refresh_from_db()
        if execution.status == Execution.Status.CANCELLED:
            log.warning("execution %s was cancelled: %s", execution.pk, execution.error)
        else:
            log.warning(
                "execution %s was stopped: it lost its lease to another runner", execution.pk
            )
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


def due_work(now: datetime) -> list[_Work]:
    """What is due at ``now`` (slots and retries, at most ``TICK_BATCH``), the most urgent
    first."""
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
    concurrency: int | None = None,
    forced: Callable[[], str] = lambda: "",
) -> TickReport:
    """Run every task due at ``now`` once, up to ``concurrency`` runs at once (default
    ``SCHEDULED_TASKS["CONCURRENCY"]``). A failing snippet never stops the others.

    A slot is claimed only when a slot of the pool is free to start it (with executors that
    run to the end when called, due slots are claimed in batches and run in turn). While runs
    go on, work that comes due is looked for every second and started as slots free up; the
    tick returns once its runs have ended and nothing more is due. ``should_stop`` is checked
    before each start: once it answers True (SIGTERM) nothing new starts, the runs in
    progress finish, claimed runs not yet started are handed back. ``forced`` answers a
    reason to kill the runs in progress now (the shutdown timeout passed): they are recorded
    abandoned.
    """
    runner = runner or claims.runner_identity()
    backend = backends.current()
    if not backend.executes_here:
        from scheduled_tasks.dispatch import dispatch

        return dispatch(now, backend, clock=clock, runner=runner, should_stop=should_stop)
    if not any_work(
        Execution.objects.stale(now),
        ScheduledTask.objects.due(now),
        Execution.objects.due_retries(now),
    ):
        return TickReport()  # the idle tick: one indexed statement
    pool = Pool(
        conf.concurrency(concurrency),
        clock,
        snippet_executor,
        function_executor,
        on_start,
        on_finish,
    )
    report = TickReport(abandoned=leases.reap_abandoned(now))
    work = deque(due_work(now))
    look_again = time.monotonic() + LOOK_AGAIN_SECONDS
    try:
        while True:
            reason = forced()
            if reason:
                report.executions += pool.abandon_all(reason)
                break
            # Spares for the next runs are forked here, once the runs that ended are recorded
            # and before the next claim: a fork (milliseconds) holds up any result that comes
            # meanwhile, so not right after a start, while its run's result is on its way.
            pool.idle()
            _fill(pool, work, report, clock, runner, should_stop)
            waiting = bool(pool.busy and pool.free and not work and not should_stop())
            timeout = 0.0
            if pool.busy:
                timeout = POLL_SECONDS
                if waiting:
                    timeout = min(timeout, max(look_again - time.monotonic(), 0.0))
            report.executions += pool.wait(timeout)
            if not pool.busy and (not work or should_stop()):
                break
            if waiting and time.monotonic() >= look_again:
                look_again = time.monotonic() + _look_for_work(work, clock())
    except BaseException as exc:
        # A failing tick (the database gone, a bug) leaves no child running unseen: each is
        # killed and, where the database lets us, recorded abandoned (else the lease reaper
        # records it once the lease expires); then the error goes on to the caller.
        pool.abandon_all(f"The runner's tick failed ({type(exc).__name__}): the run was killed.")
        raise
    pool.idle()
    return report


def _look_for_work(work: deque[_Work], moment: datetime) -> float:
    """While runs go on and a slot is free: add what is due at ``moment`` to ``work``; return
    the seconds until the next look (when the next thing comes due, at most a second: a task
    created or edited meanwhile comes due without notice)."""
    work.extend(due_work(moment))
    if work:
        return LOOK_AGAIN_SECONDS
    due_at = next_due_at(moment)
    if due_at is None or due_at <= moment:  # nothing, or due but its task is busy elsewhere
        return LOOK_AGAIN_SECONDS
    return min((due_at - moment).total_seconds(), LOOK_AGAIN_SECONDS)


# While runs go on, how often a tick looks for work that came due meanwhile.
LOOK_AGAIN_SECONDS = 1.0


def _fill(
    pool: Pool,
    work: deque[_Work],
    report: TickReport,
    clock: Clock,
    runner: str,
    should_stop: StopCheck,
) -> None:
    """Claim and start due work, highest priority first, while the pool has a free slot."""
    while work and pool.free and not should_stop():
        item = work.popleft()
        if item.retry_id is not None:
            claim = claims.claim_pending(item.retry_id, clock, runner=runner)
            if claim is not None:
                _start([claim], pool, clock, runner, should_stop)
            continue
        # Claim what can start now; executors that run to the end claim a batch at once.
        limit = min(pool.free, CLAIM_BATCH) if pool.concurrent else CLAIM_BATCH
        batch = [claims.Slot(item.task_id, item.slot)]  # type: ignore[arg-type]
        while work and work[0].slot is not None and len(batch) < limit:
            following = work.popleft()
            batch.append(claims.Slot(following.task_id, following.slot))  # type: ignore[arg-type]
        # A pool starts what it claims at once: claimed as running, one write less per run.
        result = claims.claim_slots(batch, clock, runner=runner, start=pool.concurrent)
        if result.busy:
            known = {task.pk for task in report.busy}
            report.busy.extend(
                ScheduledTask.objects.filter(pk__in=[pk for pk in result.busy if pk not in known])
            )
        runnable = []
        for claim in result.claims:
            if claim.runs:
                runnable.append(claim)
            else:
                _log_not_run(claim)
                report.skipped.append(claim.execution)
        _start(runnable, pool, clock, runner, should_stop)


def _start(
    queue: list[claims.Claim], pool: Pool, clock: Clock, runner: str, should_stop: StopCheck
) -> None:
    for index, claim in enumerate(queue):
        # A pool claimed no more than it has free slots: it starts them all. Runs in turn
        # look before each whether to stop, and hand back the rest.
        if not pool.concurrent and should_stop():
            leases.release(queue[index:], clock())
            return
        if leases.start(claim, clock(), runner=runner):
            pool.start(claim)


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
    # Pending runs nobody holds: a run claimed for a worker (a backend's queue) is not due
    # here again until its claim expires (the reaper's look, at least every interval).
    retry = Execution.objects.filter(
        status=Execution.Status.PENDING, lease_expires_at__isnull=True
    ).aggregate(m=Min("not_before"))["m"]
    candidates = [moment for moment in (slot, retry) if moment is not None]
    return min(candidates) if candidates else None


def queued_since(since: datetime, now: datetime) -> bool:
    """Whether a run nobody holds became due after ``since`` and by ``now`` (a "Run now"
    queued meanwhile): one indexed EXISTS, for the daemon's idle look."""
    return Execution.objects.due_retries(now).filter(not_before__gt=since).exists()


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
    """Run one task immediately, outside its schedule (with a backend whose workers run
    the work, hand it to them: the execution is returned ``pending``). Raises
    :class:`TaskBusy`."""
    backend = backends.current()
    if not backend.executes_here:
        claim = claims.claim_manual(task, now, trigger=trigger, runner=runner, start=False)
        backend.submit([claim.execution.pk])
        return claim.execution
    claim = claims.claim_manual(task, now, trigger=trigger, runner=runner)
    return run_claim(
        claim,
        clock=clock,
        snippet_executor=snippet_executor,
        function_executor=function_executor,
        on_start=on_start,
    )
