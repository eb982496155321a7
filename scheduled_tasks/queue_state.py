"""Whether a task or a run is waiting, and for what, as the pages (and later the API) say it.

A runner claims a due slot only when one of its pool slots is free, so due work can sit
unclaimed while every slot is busy: that is "queued: waiting for a free slot". A pending retry
whose backoff has not passed is waiting for its time instead. Pure functions of the rows and
``now``; no query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from django.utils.formats import date_format
from django.utils.timezone import localtime

from scheduled_tasks.models import Execution, ScheduledTask

QUEUED_TEXT = "queued: waiting for a free slot"


@dataclass(frozen=True)
class QueueState:
    """``queued``: due, not yet claimed by a runner (since ``since``); ``retry``: a pending
    retry that starts at ``since`` or later."""

    kind: Literal["queued", "retry"]
    since: datetime

    @property
    def is_queued(self) -> bool:
        return self.kind == "queued"

    @property
    def text(self) -> str:
        if self.is_queued:
            return QUEUED_TEXT
        return f"retry at {date_format(localtime(self.since), 'Y-m-d H:i:s T')}"

    def __str__(self) -> str:
        return self.text


def task_queue_state(task: ScheduledTask, now: datetime) -> QueueState | None:
    """An active task whose slot has come and that is not running waits for a runner's free
    slot (since its slot time). A running task is shown as running, an inactive one never
    queues. Reads ``is_active``, ``next_run_at`` and ``last_status`` (the status of
    ``last_execution``: select_related it for a list) only."""
    if not task.is_active or task.next_run_at is None or task.next_run_at > now:
        return None
    if task.last_status == Execution.Status.RUNNING:
        return None
    return QueueState("queued", task.next_run_at)


def execution_queue_state(execution: Execution, now: datetime) -> QueueState | None:
    """A pending run past its ``not_before`` that no runner holds waits for a free slot; one
    before its ``not_before`` is a retry waiting for its time. Anything else is not waiting.
    Reads ``status``, ``not_before``, ``runner`` and ``created_at`` only."""
    if execution.status != Execution.Status.PENDING:
        return None
    if execution.not_before is not None and execution.not_before > now:
        return QueueState("retry", execution.not_before)
    if execution.runner:
        return None  # claimed: its runner is about to start it
    return QueueState("queued", execution.not_before or execution.created_at)
