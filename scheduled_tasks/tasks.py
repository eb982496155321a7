"""The Celery task a worker runs for the ``celery`` backend (found by the Celery app's
``autodiscover_tasks``), and the worker processes' heartbeats. A message carries only the
execution's id: the row holds the rest.

Each worker process (a child of the prefork pool: the one that runs executions) writes a
``RunnerHeartbeat`` of kind ``worker`` every ``HEARTBEAT_SECONDS`` while it lives, and records
its clean stop, so the dashboard, ``/health/`` and ``scheduler_status`` show the workers."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_process_init, worker_process_shutdown

from scheduled_tasks import worker
from scheduled_tasks.backends.celery import TASK_NAME

log = logging.getLogger("scheduled_tasks.runner")
_monitor: Any = None


@shared_task(name=TASK_NAME, ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_execution(execution_id: int) -> str:
    """Take the claimed execution and run it here (``worker.run_execution``)."""
    if isinstance(execution_id, bool) or not isinstance(execution_id, int) or execution_id < 1:
        # A message we did not send (the broker is not trusted to hold only ours).
        return "ignored: not an execution id"
    return worker.run_execution(execution_id)


@worker_process_init.connect
def start_heartbeat(**kwargs: Any) -> None:
    """A new worker process: beat while it lives (the alert rules stay the scheduler's)."""
    global _monitor
    from scheduled_tasks import conf
    from scheduled_tasks.alerts.monitor import RunnerMonitor
    from scheduled_tasks.models import RunnerHeartbeat

    _monitor = RunnerMonitor(
        worker.identity(),
        RunnerHeartbeat.Mode.WORKER,
        concurrency=1,
        rules=False,
        heartbeat_seconds=conf.get("HEARTBEAT_SECONDS"),
    )
    _monitor.start()


@worker_process_shutdown.connect
def stop_heartbeat(**kwargs: Any) -> None:
    if _monitor is not None:
        _monitor.stop(wait=1.0)
