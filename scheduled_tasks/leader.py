"""A leader lock on the ``SchedulerLease`` table: one holder per name at a time.

The embedded scheduler runs in every web worker; only the worker holding the lease schedules.
Every change is a single conditional statement, so two processes can never both believe they
took the same lease:

- ``acquire`` first tries a compare-and-set UPDATE that succeeds only if the lease is already
  ours or has expired, then an INSERT for a lease that does not exist yet (the unique name
  makes a racing second INSERT fail with ``IntegrityError``: that process lost).
- ``renew`` extends the lease only while we are still its holder.
- ``release`` deletes the row only if we hold it.

Times come from the callers' clocks (``now``). On one host that is one clock; across hosts the
clocks must agree to well within the lease period (NTP), as with any lease.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When

from scheduled_tasks.models import SchedulerLease

__all__ = ["acquire", "holder_of", "release", "renew"]


def acquire(name: str, holder: str, now: datetime, ttl: float) -> bool:
    """Take (or keep) the lease ``name`` for ``ttl`` seconds. True if ``holder`` now has it."""
    expires = now + timedelta(seconds=ttl)
    taken = (
        SchedulerLease.objects.filter(name=name)
        .filter(Q(holder=holder) | Q(expires_at__lt=now))
        .update(
            holder=holder,
            # Keep the original acquisition time when we merely extend our own lease. SET
            # expressions see the row as it was, so ``holder`` here is the previous holder.
            acquired_at=Case(When(holder=holder, then=F("acquired_at")), default=Value(now)),
            renewed_at=now,
            expires_at=expires,
        )
    )
    if taken:
        return True
    try:
        with transaction.atomic():
            SchedulerLease.objects.create(
                name=name, holder=holder, acquired_at=now, renewed_at=now, expires_at=expires
            )
    except IntegrityError:
        return False  # someone else holds it (or inserted it a moment before us)
    return True


def renew(name: str, holder: str, now: datetime, ttl: float) -> bool:
    """Extend a lease we hold. False if it is no longer ours (it expired and was taken)."""
    return bool(
        SchedulerLease.objects.filter(name=name, holder=holder).update(
            renewed_at=now, expires_at=now + timedelta(seconds=ttl)
        )
    )


def release(name: str, holder: str) -> bool:
    """Give the lease up so another process can take it at once. False if it was not ours."""
    deleted, _ = SchedulerLease.objects.filter(name=name, holder=holder).delete()
    return bool(deleted)


def holder_of(name: str, now: datetime) -> str | None:
    """Who holds the lease at ``now``, or None if nobody does (absent or expired)."""
    return (
        SchedulerLease.objects.filter(name=name, expires_at__gte=now)
        .values_list("holder", flat=True)
        .first()
    )
