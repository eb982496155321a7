"""Registration of job functions at start-up."""

from __future__ import annotations

from django.utils.module_loading import autodiscover_modules


def autodiscover() -> None:
    """Import the ``jobs`` module of every installed app (those that have one), so their
    ``@register`` decorators run before any task needs them. Called from ``AppConfig.ready``."""
    autodiscover_modules("jobs")
