"""``{% load code %}``: highlighted, read-only code on the task and run pages."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from scheduled_tasks.highlight import error_lines, highlight_python
from scheduled_tasks.namespace_help import NameHelp, namespace_help

register = template.Library()


@register.filter
def highlight_code(code: str | None, error: str = "") -> SafeString:
    """``{{ code|highlight_code }}``; ``{{ code|highlight_code:execution.error }}`` also marks
    the lines the error names. Pygments escapes every character of the code."""
    return mark_safe(highlight_python(code or "", marked=error_lines(error or "")))  # noqa: S308


@register.simple_tag
def snippet_namespace_help() -> list[NameHelp]:
    """``{% snippet_namespace_help as names %}``: each name a snippet sees, for the form's
    help panel."""
    return namespace_help()
