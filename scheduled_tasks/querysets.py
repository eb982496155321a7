"""Named queries shared by the runner and the pages."""

from __future__ import annotations

from datetime import datetime

from django.db import models


class ScheduledTaskQuerySet(models.QuerySet):
    def due(self, now: datetime) -> ScheduledTaskQuerySet:
        """Active tasks whose next slot has come, oldest slot first (uses the due index)."""
        return self.filter(is_active=True, next_run_at__lte=now).order_by("next_run_at", "pk")


class ExecutionQuerySet(models.QuerySet):
    def running(self) -> ExecutionQuerySet:
        return self.filter(status="running")

    def live(self, now: datetime) -> ExecutionQuerySet:
        """Running executions whose runner still holds the lease."""
        return self.filter(status="running", lease_expires_at__gt=now)

    def stale(self, now: datetime) -> ExecutionQuerySet:
        """Running executions whose lease expired: their runner died."""
        return self.filter(status="running", lease_expires_at__lte=now)
