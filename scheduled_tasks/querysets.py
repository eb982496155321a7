"""Named queries shared by the runner and the pages."""

from __future__ import annotations

from datetime import datetime

from django.db import models


class ScheduledTaskQuerySet(models.QuerySet):
    def due(self, now: datetime) -> ScheduledTaskQuerySet:
        """Active tasks whose next slot has come (uses the due index); higher priority first,
        then the oldest slot."""
        return self.filter(is_active=True, next_run_at__lte=now).order_by(
            "-priority", "next_run_at", "pk"
        )


class ExecutionQuerySet(models.QuerySet):
    def running(self) -> ExecutionQuerySet:
        return self.filter(status="running")

    def live(self, now: datetime) -> ExecutionQuerySet:
        """Runs in progress or claimed by a runner that still holds the lease."""
        return self.filter(status__in=["pending", "running"], lease_expires_at__gt=now)

    def due_retries(self, now: datetime) -> ExecutionQuerySet:
        """Pending runs nobody holds whose time has come: retries past their backoff, and
        claims a runner handed back."""
        return self.filter(
            status="pending", not_before__lte=now, lease_expires_at__isnull=True
        ).order_by("not_before", "pk")

    def stale(self, now: datetime) -> ExecutionQuerySet:
        """Runs in progress or claimed whose lease expired: their runner died."""
        return self.filter(status__in=["pending", "running"], lease_expires_at__lte=now)
