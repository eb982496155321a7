"""Asking for a run now without running it here (the API's ``run_now``): a pending execution
that the next free runner starts, as it starts a retry whose time has come."""

from __future__ import annotations

from datetime import datetime

from scheduled_tasks.models import Execution, ScheduledTask


def request_run(task: ScheduledTask, *, now: datetime) -> Execution:
    """Queue a manual run of ``task`` from ``now`` on; it waits while the task runs as often
    as ``max_instances`` allows, and runs even when the task is inactive (as "Run now" does)."""
    return Execution.objects.create(
        task=task,
        status=Execution.Status.PENDING,
        trigger=Execution.Trigger.MANUAL,
        not_before=now,
        created_at=now,
        version_id=task.current_version_id,  # until it starts: the claim sets what runs
    )
