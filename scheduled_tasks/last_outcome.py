"""``ScheduledTask.last_failed``: whether a task's latest run failed, timed out or was
abandoned, kept true to its ``last_execution`` so that "failing now" is read from a partial
index of a few rows rather than by looking up every task's latest run (ten thousand lookups on
the dashboard, the task list and their live counts).

Who writes it: a claim (a new latest run is pending or running: not failing, or a broken
schedule's failed record: failing), and the end of a run only when it could change it (a run
that failed, timed out or was abandoned; a run the reaper had marked abandoned that finished
after all). An ordinary completed run writes nothing more than its own row. Each write is
conditioned on the run still being the task's latest: an older run ending late cannot speak
for the task.
"""

from __future__ import annotations

from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.statistics import FAILED

FAILING = frozenset(FAILED)  # failed, timed out, abandoned: the figures' "failed"


def is_failing(status: str) -> bool:
    return status in FAILING


def run_ended(execution_id: int, task_id: int, status: str) -> None:
    """A run ended ``status``: if it is still its task's latest, the task is failing or not."""
    ScheduledTask.objects.filter(pk=task_id, last_execution_id=execution_id).update(
        last_failed=is_failing(status)
    )


def forget_deleted() -> int:
    """Tasks whose latest run was deleted (the clean-up of old history) no longer fail."""
    return ScheduledTask.objects.filter(last_failed=True, last_execution__isnull=True).update(
        last_failed=False
    )
