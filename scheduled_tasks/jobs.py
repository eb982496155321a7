"""The scheduler's own registered jobs, and the tasks that run them out of the box.

Imported at start-up by :func:`scheduled_tasks.discovery.autodiscover` (every installed app's
``jobs`` module is), which registers the functions below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from scheduled_tasks import conf, last_outcome, services
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.registry import JobContext, register
from scheduled_tasks.schedules import kinds

CLEANUP_FUNCTION = "scheduled_tasks.cleanup_executions"


def whole_number(name: str, value: object, *, minimum: int = 1) -> int:
    """A job parameter that must be a whole number (JSON gives no types to rely on)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, not {value!r}")
    return value


@register(
    CLEANUP_FUNCTION,
    description="Delete finished executions older than CLEANUP_DAYS days, in small batches.",
)
def cleanup_executions(ctx: JobContext, *, days: int | None = None, batch_size: int = 1000) -> str:
    """Delete finished executions created more than ``days`` days before the run (default:
    ``SCHEDULED_TASKS["CLEANUP_DAYS"]``). Running and pending ones are never touched.

    Each batch of primary keys is deleted in its own short transaction, so the table (on SQLite:
    the whole database) is never locked for long and a runner can claim work between batches.
    """
    days = whole_number("days", conf.get("CLEANUP_DAYS") if days is None else days)
    batch_size = whole_number("batch_size", batch_size)
    cutoff = ctx.now - timedelta(days=days)
    old = Execution.objects.filter(
        status__in=Execution.FINISHED_STATUSES, created_at__lt=cutoff
    ).order_by("pk")
    deleted = batches = 0
    last_pk = 0
    while True:
        # Walk the primary key forward so rows a batch leaves behind are not scanned again.
        batch = list(old.filter(pk__gt=last_pk).values_list("pk", flat=True)[:batch_size])
        if not batch:
            break
        last_pk = batch[-1]
        with transaction.atomic():
            # Only the primary key is loaded; retries pointing here lose their link (SET_NULL).
            # The status is checked again: nothing finished turns back into running, but be safe.
            _, per_model = (
                Execution.objects.filter(pk__in=batch, status__in=Execution.FINISHED_STATUSES)
                .only("pk")
                .delete()
            )
        deleted += per_model.get(Execution._meta.label, 0)
        batches += 1
    if deleted:
        last_outcome.forget_deleted()
    summary = (
        f"Deleted {deleted} finished execution(s) created before "
        f"{cutoff:%Y-%m-%d %H:%M} UTC ({days} day(s) kept) in {batches} batch(es)."
    )
    ctx.log(summary)
    return summary


@dataclass(frozen=True)
class BuiltinTask:
    name: str
    description: str
    function_name: str
    cron_expression: str
    function_params: dict[str, Any] = field(default_factory=dict)
    timeout_seconds: int | None = None


BUILTIN_TASKS = [
    BuiltinTask(
        name="Clean up old executions",
        description="Deletes finished executions older than SCHEDULED_TASKS['CLEANUP_DAYS'] "
        "days, every Sunday at 03:00, in small batches that never lock the table for long.",
        function_name=CLEANUP_FUNCTION,
        cron_expression="0 3 * * SUN",
        # A first clean-up of a long history may take a while; batches already deleted stay
        # deleted if it is cut short, and the next run goes on from there.
        timeout_seconds=3600,
    ),
]


def install_builtin_tasks(now: datetime) -> list[tuple[ScheduledTask, bool]]:
    """Create the built-in tasks that are missing (matched by name; an existing task, edited
    or not, is left alone). Returns ``(task, created)`` pairs."""
    results = []
    for spec in BUILTIN_TASKS:
        with transaction.atomic():
            task = ScheduledTask.objects.filter(name=spec.name).first()
            created = task is None
            if task is None:
                task = ScheduledTask(
                    name=spec.name,
                    description=spec.description,
                    code="",
                    function_name=spec.function_name,
                    function_params=dict(spec.function_params),
                    schedule_kind=kinds.CRON.value,
                    cron_expression=spec.cron_expression,
                    time_zone=settings.TIME_ZONE,
                    timeout_seconds=spec.timeout_seconds,
                    anchor=now,
                )
                services.save_task(task, now=now)
        results.append((task, created))
    return results
