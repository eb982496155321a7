"""A tick for a backend whose workers run the work elsewhere (``executes_here`` False, e.g.
Celery): reap, claim what is due as ``pending`` under this runner's lease, and hand it to the
backend. Nothing runs here: with no worker up, due work waits queued, claimed again and sent
again each time its claim's lease (``LEASE_SECONDS``) runs out, until a worker takes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from scheduled_tasks import claims, leases
from scheduled_tasks.backends import Backend, BackendError
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.querysets import any_work

if TYPE_CHECKING:
    from scheduled_tasks.runner import TickReport

log = logging.getLogger("scheduled_tasks.runner")

Clock = Callable[[], datetime]


def dispatch(
    now: datetime,
    backend: Backend,
    *,
    clock: Clock,
    runner: str,
    should_stop: Callable[[], bool] = lambda: False,
) -> TickReport:
    """Claim every slot and retry due at ``now`` (the tick's batch) and submit each claimed
    execution to ``backend``, a claim batch at a time. A batch the backend refuses (broker
    unreachable) stays claimed: its lease runs out and a later tick claims and submits it
    again. Returns a ``TickReport`` whose ``dispatched`` lists what was handed over."""
    # Imported here: the runner calls this module from its tick.
    from scheduled_tasks.runner import CLAIM_BATCH, TickReport, due_work

    if not any_work(
        Execution.objects.stale(now),
        ScheduledTask.objects.due(now),
        Execution.objects.due_retries(now),
    ):
        return TickReport()
    report = TickReport(abandoned=leases.reap_abandoned(now))
    work = due_work(now)
    index = 0
    while index < len(work) and not should_stop():
        item = work[index]
        if item.retry_id is not None:
            index += 1
            claim = claims.claim_pending(item.retry_id, clock, runner=runner, start=False)
            if claim is not None:
                _submit(backend, [claim.execution], report)
            continue
        batch = []
        while index < len(work) and work[index].slot is not None and len(batch) < CLAIM_BATCH:
            batch.append(claims.Slot(work[index].task_id, work[index].slot))
            index += 1
        result = claims.claim_slots(batch, clock, runner=runner, start=False)
        if result.busy:
            report.busy.extend(ScheduledTask.objects.filter(pk__in=result.busy))
        runnable = []
        for claim in result.claims:
            (runnable if claim.runs else report.skipped).append(claim.execution)
        _submit(backend, runnable, report)
    return report


def _submit(backend: Backend, executions: list[Execution], report: TickReport) -> None:
    if not executions:
        return
    try:
        backend.submit([execution.pk for execution in executions])
    except BackendError as exc:
        # Claimed, not sent: handed back when the lease runs out, then sent again.
        log.error(
            "could not hand %d execution(s) to the %s backend (sent again once their claim "
            "expires): %s",
            len(executions),
            backend.name,
            exc,
        )
        report.undelivered.extend(executions)
        return
    report.dispatched.extend(executions)
    for execution in executions:
        log.info(
            "execution %s queued for the %s backend: task %s (trigger=%s, slot=%s)",
            execution.pk,
            backend.name,
            execution.task_id,
            execution.trigger,
            execution.scheduled_for.isoformat() if execution.scheduled_for else "-",
        )
