"""The ``celery`` backend: claimed executions run on Celery workers.

The scheduler (daemon, cron pass, embedded scheduler, "Run now") claims due work as
``pending`` under its lease and sends one message per execution, task
``scheduled_tasks.run_execution`` with the execution's id, to the task's queue
(``ScheduledTask.queue``, else ``SCHEDULED_TASKS["CELERY_QUEUE"]``) at a priority taken from
the task's. A worker (``celery -A ticketproo worker``) takes the claim with a compare-and-set
and runs it in the sandbox (``scheduled_tasks.worker``).

Why nothing is lost or run twice (the row is the truth, messages are hints):

- a message delivered twice (``acks_late`` redelivery, a broker that lost its ack): the
  second ``take`` finds the run no longer pending and does nothing;
- a message lost (a broker restart without persistence, a send that failed): the claim's
  lease runs out, the next tick hands it back and claims and sends it again;
- a worker killed mid-run: its lease is no longer renewed; the next tick's reaper records the
  run ``abandoned`` and schedules its retry per the task (the message, redelivered with
  ``reject_on_worker_lost``, finds it no longer pending);
- no worker up: the messages wait in the broker and the claims are re-sent every
  ``LEASE_SECONDS`` (a worker drops the extra copies); the scheduler never runs them itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.utils.module_loading import import_string

from scheduled_tasks import conf
from scheduled_tasks.backends.base import Backend, BackendError

TASK_NAME = "scheduled_tasks.run_execution"
# Celery message priorities: 0..9 with the broker's priority support (RabbitMQ: 9 is the
# highest, needs ``x-max-priority``; Redis: kombu maps the same 0..9 onto its steps).
PRIORITY_LEVELS = 10
# How long a send may wait for an unreachable broker before giving up (the claim is sent
# again later): a tick must not hang on a broker that is down.
SEND_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}
# How long a health check waits for the broker.
BROKER_CHECK_SECONDS = 3


def message_priority(task_priority: int) -> int:
    """A task's priority (-100..100, higher first) as a Celery priority (0..9, higher
    first)."""
    clamped = max(-100, min(100, int(task_priority)))
    return round((clamped + 100) * (PRIORITY_LEVELS - 1) / 200)


def celery_app() -> Any:
    """The configured Celery app (``SCHEDULED_TASKS["CELERY_APP"]``, else Celery's current)."""
    path = conf.get("CELERY_APP")
    if path:
        return import_string(path)
    from celery import current_app

    return current_app


class CeleryBackend(Backend):
    name = "celery"
    executes_here = False

    def submit(self, execution_ids: Sequence[int]) -> None:
        from scheduled_tasks.models import Execution

        if not execution_ids:
            return
        app = celery_app()
        default_queue = conf.get("CELERY_QUEUE")
        rows = Execution.objects.filter(pk__in=list(execution_ids)).values_list(
            "pk", "task__queue", "task__priority"
        )
        try:
            with app.producer_or_acquire() as producer:
                for pk, queue, priority in rows:
                    app.send_task(
                        TASK_NAME,
                        args=[pk],
                        queue=queue or default_queue,
                        priority=message_priority(priority),
                        producer=producer,
                        retry=True,
                        retry_policy=SEND_RETRY_POLICY,
                    )
        except Exception as exc:  # kombu's connection errors vary by transport
            raise BackendError(f"the broker did not take the messages: {exc}") from exc

    def check(self) -> list[str]:
        try:
            import celery  # noqa: F401
        except ImportError:
            return ["Celery is not installed (pip install 'celery[redis]')."]
        try:
            app = celery_app()
        except ImportError as exc:
            return [f"SCHEDULED_TASKS['CELERY_APP'] does not import: {exc}"]
        if not app.conf.broker_url:
            return ["the Celery app has no broker_url (set CELERY_BROKER_URL)."]
        return []

    def status(self, now: datetime) -> dict[str, object]:
        """The broker answers and a worker process beat lately (else nothing runs)."""
        from scheduled_tasks.models import RunnerHeartbeat

        broker: dict[str, object] = {"ok": False, "error": None}
        try:
            with celery_app().connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=BROKER_CHECK_SECONDS)
            broker["ok"] = True
        except Exception as exc:  # the kind of error only: its text may hold the URL
            broker["error"] = type(exc).__name__
        fresh = now - timedelta(seconds=2 * conf.get("HEARTBEAT_SECONDS") + 5)
        workers = RunnerHeartbeat.objects.filter(
            kind=RunnerHeartbeat.Mode.WORKER, stopped_at__isnull=True, last_seen_at__gte=fresh
        ).count()
        return {
            "name": self.name,
            "ok": bool(broker["ok"] and workers),
            "broker": broker,
            "workers_alive": workers,
            "queue": conf.get("CELERY_QUEUE"),
        }
