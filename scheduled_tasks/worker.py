"""Running one claimed execution by its id: what a Celery worker does with a message (and the
inline backend with an execution claimed ``pending``).

The execution row is the truth. A worker takes the claim with a compare-and-set
(``leases.take``: ``pending`` under a lease -> ``running`` under its own): of two deliveries of
one message, or two workers, exactly one gets it and the other does nothing. The run then goes
the runner's normal way (``runner.run_claim``: sandbox child, lease renewed every third of
``LEASE_SECONDS``, log lines, output so far, cancel looked for every second, record, retry),
then the alert rules look at it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from scheduled_tasks import claims, leases, runner

log = logging.getLogger("scheduled_tasks.runner")

# What run_execution says it did.
RAN = "ran"
NOT_PENDING = "not a pending claim"


def identity(kind: str = "worker") -> str:
    """``host:pid:kind``: the ``runner`` recorded on the runs this process takes."""
    return f"{socket.gethostname()}:{os.getpid()}:{kind}"


def run_execution(
    execution_id: int,
    *,
    runner_id: str | None = None,
    clock: Callable[[], datetime] = timezone.now,
    snippet_executor: runner.Executor | None = None,
    function_executor: runner.Executor | None = None,
) -> str:
    """Take the claimed execution ``execution_id`` and run it here to its end. Returns
    :data:`RAN`, or :data:`NOT_PENDING` when it was no longer a pending claim (already taken,
    ended, cancelled, or handed back: nothing to do)."""
    from scheduled_tasks import alerts

    taken = leases.take(execution_id, clock(), runner=runner_id or identity())
    if taken is None:
        log.info("execution %s: not started here (%s)", execution_id, NOT_PENDING)
        return NOT_PENDING
    executors = {}
    if snippet_executor is not None:
        executors["snippet_executor"] = snippet_executor
    if function_executor is not None:
        executors["function_executor"] = function_executor
    execution = runner.run_claim(
        claims.Claim(execution=taken, task=taken.task), clock=clock, **executors
    )
    try:
        alerts.after_run(execution, clock())
    except Exception:
        log.exception("alert check after execution %s failed", execution.pk)
    return RAN
