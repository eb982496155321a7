"""Recording the end of a run."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.sandbox import SnippetResult


def finish(execution: Execution, result: SnippetResult, now: datetime) -> str | None:
    """Store a run's outcome and mirror its status on the task for the list pages.

    Returns the status the record had: ``"running"``, or ``"abandoned"`` when another runner
    reaped the run while it went on (its runner was frozen past the lease) — the real outcome
    then replaces that verdict. None when nothing was written (the run was stopped because it
    lost its lease: the reaper's verdict stands).
    """
    values = {
        "status": result.status,
        "finished_at": now,
        "duration_seconds": round(result.duration, 6),
        "output": result.output,
        "output_truncated": result.output_truncated,
        "error": result.error,
        "lease_expires_at": None,
    }
    previous = None
    candidates = [Execution.Status.RUNNING]
    if result.status != Execution.Status.CANCELLED:
        candidates.append(Execution.Status.ABANDONED)
    # One transaction: the run and its task's status change together (and commit once).
    with transaction.atomic():
        for status in candidates:
            if Execution.objects.filter(pk=execution.pk, status=status).update(**values):
                previous = status
                break
        if previous is None:
            return None
        # Only the latest run speaks for the task; an older run finishing late must not.
        ScheduledTask.objects.filter(pk=execution.task_id).exclude(
            executions__created_at__gt=execution.created_at
        ).update(last_status=result.status)
    for field, value in values.items():
        setattr(execution, field, value)
    return str(previous)


def record_test_run(
    task: ScheduledTask, result: SnippetResult, started: datetime, finished: datetime
) -> Execution:
    """Keep a test run of edited (maybe unsaved) code in the task's history; the schedule and
    the task's last status are left alone."""
    return Execution.objects.create(
        task=task,
        status=result.status,
        trigger=Execution.Trigger.TEST,
        started_at=started,
        finished_at=finished,
        created_at=started,
        duration_seconds=round(result.duration, 6),
        output=result.output,
        output_truncated=result.output_truncated,
        error=result.error,
    )
