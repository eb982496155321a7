"""Recording the end of a run."""

from __future__ import annotations

from datetime import datetime

from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.sandbox import SnippetResult


def finish(execution: Execution, result: SnippetResult, now: datetime) -> Execution:
    """Store a run's outcome and mirror its status on the task for the list pages."""
    execution.status = result.status
    execution.finished_at = now
    execution.duration_seconds = round(result.duration, 6)
    execution.output = result.output
    execution.output_truncated = result.output_truncated
    execution.error = result.error
    execution.lease_expires_at = None
    execution.save(
        update_fields=[
            "status",
            "finished_at",
            "duration_seconds",
            "output",
            "output_truncated",
            "error",
            "lease_expires_at",
        ]
    )
    # Only the latest run speaks for the task; an older run finishing late must not.
    newer = Execution.objects.filter(task_id=execution.task_id, created_at__gt=execution.created_at)
    if not newer.exists():
        ScheduledTask.objects.filter(pk=execution.task_id).update(last_status=result.status)
    return execution
