"""Leases: how a runner holds what it runs, and what happens when it stops holding it.

A claimed run is ``pending`` under its runner's lease until started (``running``). The runner
renews the leases of everything it holds while a run lasts. A running run whose lease ran out
belongs to a runner that died: it is marked ``abandoned`` (and retried per its task); a claimed
run that was never started is handed back to any runner, so no slot is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Q, QuerySet

from scheduled_tasks import conf, last_outcome
from scheduled_tasks.models import Execution
from scheduled_tasks.retries import schedule_retry

if TYPE_CHECKING:
    from scheduled_tasks.claims import Claim

Status = Execution.Status


def lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=conf.get("LEASE_SECONDS"))


def start(claim: Claim, now: datetime, *, runner: str | None = None) -> bool:
    """Begin a claimed run; False if it was handed back meanwhile (our lease had run out)."""
    execution = claim.execution
    if execution.status == Status.RUNNING:
        return True
    changed = Execution.objects.filter(
        pk=execution.pk, status=Status.PENDING, runner=execution.runner
    ).update(status=Status.RUNNING, started_at=now, lease_expires_at=lease_until(now))
    if changed:
        execution.status, execution.started_at = Status.RUNNING, now
    return bool(changed)


def take(execution_id: int, now: datetime, *, runner: str) -> Execution | None:
    """A worker begins a run a dispatcher claimed for it (``pending`` under a lease): the
    compare-and-set that makes a message delivered twice run once. Returns the execution,
    now ``running`` under ``runner``'s lease, with its task; None if it is no longer a pending
    claim (started by another worker, ended, cancelled, or handed back after its lease ran
    out: the dispatcher then sends it again)."""
    changed = Execution.objects.filter(
        pk=execution_id, status=Status.PENDING, lease_expires_at__isnull=False
    ).update(
        status=Status.RUNNING, started_at=now, lease_expires_at=lease_until(now), runner=runner
    )
    if not changed:
        return None
    return Execution.objects.select_related("task").get(pk=execution_id)


def release(claims: Iterable[Claim], now: datetime) -> int:
    """Hand claimed runs that were never started back to any runner (on shutdown)."""
    ids = [c.execution.pk for c in claims if c.execution.status == Status.PENDING]
    return _hand_back(Execution.objects.filter(pk__in=ids, status=Status.PENDING), now)


def _hand_back(queryset: QuerySet[Execution], now: datetime) -> int:
    return queryset.update(runner="", lease_expires_at=None, not_before=now)


def renew_lease(execution_id: int, now: datetime) -> bool:
    """Extend the lease of a run still in progress; False if it was taken away (reaped)."""
    return bool(
        Execution.objects.filter(pk=execution_id, status=Status.RUNNING).update(
            lease_expires_at=lease_until(now)
        )
    )


def still_running(execution_ids: Iterable[int]) -> set[int]:
    """Which of these runs their records still show ``running``: a runner's look (at most
    once a second) for runs cancelled by a person or reaped by another runner, which it
    stops. One query on primary keys."""
    ids = list(execution_ids)
    if not ids:
        return set()
    return set(
        Execution.objects.filter(pk__in=ids, status=Status.RUNNING).values_list("pk", flat=True)
    )


def renew_leases(runner: str, now: datetime) -> int:
    """Extend the leases of everything ``runner`` holds (its run and its claimed queue)."""
    return Execution.objects.filter(
        runner=runner, status__in=[Status.PENDING, Status.RUNNING], lease_expires_at__isnull=False
    ).update(lease_expires_at=lease_until(now))


def reap_abandoned(now: datetime) -> int:
    """Runs whose lease expired belong to a runner that died: running ones are marked
    abandoned (and retried per the task), claimed ones never started are handed back."""
    # The tasks only when something is stale: an idle tick sends one small query here.
    stale = list(Execution.objects.stale(now).prefetch_related("task"))
    unstarted = [e.pk for e in stale if e.status == Status.PENDING]
    if unstarted:
        _hand_back(Execution.objects.filter(pk__in=unstarted, status=Status.PENDING), now)
    reaped = 0
    for execution in (e for e in stale if e.status == Status.RUNNING):
        with transaction.atomic():
            changed = Execution.objects.filter(
                Q(lease_expires_at__lte=now), pk=execution.pk, status=Status.RUNNING
            ).update(
                status=Status.ABANDONED,
                finished_at=now,
                lease_expires_at=None,
                error="The runner stopped before this run finished (its lease expired).",
            )
            if not changed:
                continue
            reaped += 1
            # The task's last status follows: it points at its latest run, this one or newer.
            last_outcome.run_ended(execution.pk, execution.task_id, Status.ABANDONED)
            execution.status = Status.ABANDONED
            schedule_retry(execution, execution.task, now)
    return reaped
