"""Retries: a failed, timed-out or abandoned run comes back later, with exponential backoff,
as a new execution linked to the first."""

from __future__ import annotations

from datetime import datetime, timedelta

from scheduled_tasks.models import Execution, ScheduledTask

Status = Execution.Status


def schedule_retry(execution: Execution, task: ScheduledTask, now: datetime) -> Execution | None:
    """After a failed, timed-out or abandoned run: a pending retry with exponential backoff,
    or None when the task's retries are used up."""
    if execution.status not in Execution.RETRYABLE_STATUSES:
        return None
    if execution.attempt > task.max_retries:
        return None
    delay = task.retry_backoff_seconds * 2 ** (execution.attempt - 1)
    return Execution.objects.create(
        task_id=task.pk,
        status=Status.PENDING,
        trigger=Execution.Trigger.RETRY,
        attempt=execution.attempt + 1,
        retry_of_id=execution.retry_of_id or execution.pk,
        not_before=now + timedelta(seconds=delay),
        created_at=now,
        # The version of the run it retries until it starts (a claim then sets what runs).
        version_id=execution.version_id,
    )


def cancel_retries_of(execution: Execution, now: datetime) -> int:
    """Cancel the not-yet-started retry that follows ``execution``."""
    return Execution.objects.filter(
        retry_of_id=execution.retry_of_id or execution.pk,
        attempt=execution.attempt + 1,
        status=Status.PENDING,
        lease_expires_at__isnull=True,
    ).update(
        status=Status.CANCELLED,
        finished_at=now,
        error=f"Not needed: execution {execution.pk} completed after all.",
    )
