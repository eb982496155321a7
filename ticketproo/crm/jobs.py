"""CRM jobs a scheduled task can run instead of a snippet (registered at start-up)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from scheduled_tasks.registry import JobContext, register
from ticketproo.crm.models import Company, Ticket


@register(
    "crm.auto_close_resolved_tickets",
    description="Close tickets resolved more than N hours ago.",
)
def auto_close_resolved_tickets(ctx: JobContext, *, hours: int | float = 24) -> str:
    """Close resolved tickets whose ``resolved_at`` is more than ``hours`` hours before the run.
    A resolved ticket without ``resolved_at`` is left alone: nobody knows how old it is."""
    if isinstance(hours, bool) or not isinstance(hours, int | float) or hours < 0:
        raise ValueError(f"hours must be a number of at least 0, not {hours!r}")
    cutoff = ctx.now - timedelta(hours=hours)
    closed = Ticket.objects.filter(status=Ticket.Status.RESOLVED, resolved_at__lt=cutoff).update(
        status=Ticket.Status.CLOSED, updated_at=ctx.now
    )
    return f"Closed {closed} ticket(s) resolved before {cutoff:%Y-%m-%d %H:%M} UTC."


@register(
    "crm.disable_expired_companies",
    description="Mark companies whose contract has ended as inactive.",
)
def disable_expired_companies(ctx: JobContext) -> str:
    """Set ``is_active=False`` on active companies whose contract ended before today (the day
    of the run in the server's time zone); a contract ending today still counts today."""
    today = timezone.localdate(ctx.now)
    disabled = Company.objects.filter(is_active=True, contract_ends_on__lt=today).update(
        is_active=False
    )
    return f"Disabled {disabled} company(ies) whose contract ended before {today.isoformat()}."
