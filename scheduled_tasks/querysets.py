"""Named queries shared by the runner and the pages.

The runner's queries are written so that an index serves them on a database nobody has
analysed (no planner statistics, as after ``migrate`` and inserts); tests/test_query_plans.py
checks every one with ``EXPLAIN`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import models

# The earliest moment a slot can hold: the lower bound of the due query (see ``due``).
EARLIEST_SLOT = datetime(1, 1, 1, tzinfo=UTC)


class ScheduledTaskQuerySet(models.QuerySet):
    def due(self, now: datetime) -> ScheduledTaskQuerySet:
        """Active tasks whose next slot has come; higher priority first, then the oldest slot.

        Served by the partial index ``sched_task_active_due`` (``next_run_at`` of active
        tasks): ``is_active=True`` is spelled so that the SQL condition is the index's own
        (``WHERE "is_active"``). The lower bound selects nothing more (every slot is later)
        but makes the condition a closed range (``BETWEEN``), which PostgreSQL estimates
        without statistics at 0.5 % of the rows instead of a third of them, and so reads
        the index rather than the whole table.
        """
        return self.filter(is_active=True, next_run_at__range=(EARLIEST_SLOT, now)).order_by(
            "-priority", "next_run_at", "pk"
        )


class ExecutionQuerySet(models.QuerySet):
    # The status comes first in the execution indexes (``sched_exec_status``,
    # ``sched_exec_pending``): an equality or IN on it, then a range on the time, is an index
    # search on both databases without statistics.

    def _held(self) -> list[str]:
        # (``self.model`` is Execution: models.py imports this module, not the other way.)
        return [self.model.Status.PENDING, self.model.Status.RUNNING]

    def running(self) -> ExecutionQuerySet:
        return self.filter(status=self.model.Status.RUNNING)

    def live(self, now: datetime) -> ExecutionQuerySet:
        """Runs in progress or claimed by a runner that still holds the lease."""
        return self.filter(status__in=self._held(), lease_expires_at__gt=now)

    def due_retries(self, now: datetime) -> ExecutionQuerySet:
        """Pending runs nobody holds whose time has come: retries past their backoff, and
        claims a runner handed back."""
        return self.filter(
            status=self.model.Status.PENDING, not_before__lte=now, lease_expires_at__isnull=True
        ).order_by("not_before", "pk")

    def stale(self, now: datetime) -> ExecutionQuerySet:
        """Runs in progress or claimed whose lease expired: their runner died. Unordered:
        each is reaped on its own (and an idle tick need not sort)."""
        return self.filter(status__in=self._held(), lease_expires_at__lte=now).order_by()


def any_work(*querysets: models.QuerySet) -> bool:
    """Whether any of ``querysets`` has a row, asked in one statement: an idle tick's stale,
    due and retry queries cost one round trip instead of three (PostgreSQL over a network)."""
    from django.db import connections, router

    if not querysets:
        return False
    model = querysets[0].model
    parts, params = [], []
    for queryset in querysets:
        sql, part_params = queryset.order_by().values("pk")[:1].query.sql_with_params()
        parts.append(f"EXISTS ({sql})")
        params.extend(part_params)
    with connections[router.db_for_read(model)].cursor() as cursor:
        cursor.execute("SELECT " + " OR ".join(parts), params)
        row = cursor.fetchone()
    return bool(row and row[0])
