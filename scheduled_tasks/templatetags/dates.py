"""Relative times in words, one wording on every page: ``{{ when|ago:now }}`` reads
"just now" or "5 minutes ago"; ``{{ when|until:now }}`` reads "in under a minute" or
"in 2 hours". ``now`` is the view's clock (the page shows one moment throughout)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

register = template.Library()

MINUTE = timedelta(minutes=1)


@register.filter
def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long before ``now`` ``value`` was; "just now" under a minute (and for a moment a
    little ahead of ``now``, as a clock skew between two servers gives)."""
    if not isinstance(value, datetime):
        return ""
    now = now or timezone.now()
    if now - value < MINUTE:
        return "just now"
    return f"{timesince(value, now)} ago"


@register.filter
def until(value: datetime | None, now: datetime | None = None) -> str:
    """How long after ``now`` ``value`` comes; "in under a minute" under a minute."""
    if not isinstance(value, datetime):
        return ""
    now = now or timezone.now()
    if value - now < MINUTE:
        return "in under a minute"
    return f"in {timeuntil(value, now)}"
