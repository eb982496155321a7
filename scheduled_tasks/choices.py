"""Choice constants that are not (yet) declared on a model.

``Execution.Status`` and ``Execution.Trigger`` live on ``Execution`` in ``models.py``; the
catch-up policy of a task lives here until ``ScheduledTask.catch_up`` declares
``choices=CatchUp.choices`` itself (same values and labels, so no migration changes).
"""

from __future__ import annotations

from django.db import models


class CatchUp(models.TextChoices):
    """What a task does with the slots it missed while no scheduler ran."""

    RUN_ONCE = "run_once", "Run once for all missed slots"
    SKIP = "skip", "Skip missed slots, run only the latest"


def status_label(status: str) -> str:
    """The label of an execution status, for ``ScheduledTask.last_status`` (a field without
    choices, so without ``get_last_status_display``); unknown values are shown as they are."""
    from scheduled_tasks.models import Execution  # models will import this module

    return Execution.Status(status).label if status in Execution.Status.values else status
