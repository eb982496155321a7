"""Cancelling a run (issue #12): a pending or running execution ends ``cancelled``, and the
record says who cancelled it and when.

The record decides, as everywhere: a compare-and-set moves it from ``pending`` or ``running``
to ``cancelled``. A pending run is then never started (``leases.start`` and
``claims.claim_pending`` only start a pending one). A running run's runner notices within about
a second that its record is no longer ``running`` (``Pool``'s look at its runs, ``run_claim``'s
cancel check) and kills the sandbox child; the result it then records finds the run cancelled
and writes nothing (``records.finish``), so neither the outcome nor a retry follows.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils.formats import date_format
from django.utils.timezone import localtime

from scheduled_tasks.models import Execution

Status = Execution.Status

# Each compare-and-set that misses means the run moved on (pending -> running -> an end):
# a few looks settle it whatever runners do meanwhile.
_ATTEMPTS = 4


class NotCancellable(Exception):
    """The run has ended already (or does not exist); the message is for people."""


def cancel_execution(
    execution_id: int, *, user: AbstractBaseUser | None, now: datetime
) -> Execution:
    """End a pending or running run as ``cancelled`` by ``user`` at ``now``; return the record
    (with its task and ``cancelled_by``). Raises :class:`NotCancellable` for a run that ended.

    A pending run is cancelled with the retries of its chain still waiting after it; a running
    one gets its duration up to ``now`` and is stopped by its runner.
    """
    for _ in range(_ATTEMPTS):
        execution = Execution.objects.filter(pk=execution_id).first()
        if execution is None:
            raise NotCancellable(f"Run #{execution_id} does not exist.")
        if execution.status not in (Status.PENDING, Status.RUNNING):
            label = execution.get_status_display().lower()
            raise NotCancellable(f"Run #{execution_id} has already ended ({label}).")
        values: dict[str, object] = {
            "status": Status.CANCELLED,
            "finished_at": now,
            "error": cancelled_text(user, now),
            "cancelled_by": user,
            "lease_expires_at": None,
        }
        if execution.status == Status.RUNNING and execution.started_at is not None:
            values["duration_seconds"] = round(
                max((now - execution.started_at).total_seconds(), 0.0), 6
            )
        changed = Execution.objects.filter(pk=execution_id, status=execution.status).update(
            **values
        )
        if changed:
            if execution.status == Status.PENDING:
                _cancel_later_attempts(execution, values)
            return Execution.objects.select_related("task", "cancelled_by").get(pk=execution_id)
    raise NotCancellable(f"Run #{execution_id} is changing state; try again.")


def cancelled_text(user: AbstractBaseUser | None, now: datetime) -> str:
    """What a cancelled run's record says in place of an error."""
    when = date_format(localtime(now), "Y-m-d H:i:s T")
    who = user.get_username() if user is not None else ""
    return f"Cancelled by {who} at {when}." if who else f"Cancelled at {when}."


def _cancel_later_attempts(execution: Execution, values: dict[str, object]) -> int:
    """The chain ends with a cancelled attempt: any later attempt still waiting is cancelled
    too (normally there is none: a retry is made when the attempt before it ends)."""
    return Execution.objects.filter(
        retry_of_id=execution.retry_of_id or execution.pk,
        attempt__gt=execution.attempt,
        status=Status.PENDING,
    ).update(**values)
