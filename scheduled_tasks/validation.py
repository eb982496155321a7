"""Checks shared by every way a task enters the system (form, admin, import, API)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from django.core.validators import MaxValueValidator, MinValueValidator

from scheduled_tasks import conf, schedules
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.sandbox.policy import check_code
from scheduled_tasks.schedules.kind_api import cron_problem as cron_problem  # the cron kind's check


def code_problems(code: str) -> list[str]:
    """Human-readable problems that stop ``code`` from being saved, each with its line."""
    if not code or not code.strip():
        return ["The code is empty."]
    limit = conf.get("MAX_CODE_BYTES")
    size = len(code.encode("utf-8"))
    if size > limit:
        return [f"The code is {size} bytes; the limit is {limit} bytes."]
    return [str(problem) for problem in check_code(code)]


@cache
def zone_names() -> frozenset[str]:
    """Every IANA zone this machine knows (empty when it has no time zone database)."""
    return frozenset(available_timezones())


def zone_problem(name: object) -> str | None:
    """Why ``name`` is not a usable IANA time zone, or None."""
    if not isinstance(name, str) or not name.strip():
        return "the time zone is empty; use an IANA name such as Europe/Madrid"
    known = zone_names()
    if known and name not in known:
        return f"unknown time zone {name!r}; use an IANA name such as Europe/Madrid"
    try:
        schedules.parse_zone(name)
    except schedules.ScheduleError:
        return f"unknown time zone {name!r}; use an IANA name such as Europe/Madrid"
    return None


def field_limits(name: str) -> tuple[int, int]:
    """The smallest and largest value the model accepts for an integer field of a task."""
    field = ScheduledTask._meta.get_field(name)
    lows = [v.limit_value for v in field.validators if isinstance(v, MinValueValidator)]
    highs = [v.limit_value for v in field.validators if isinstance(v, MaxValueValidator)]
    return max(lows), min(highs)  # type: ignore[type-var, return-value]


def json_problem(text: str) -> tuple[Any, str | None]:
    """Parse function parameters typed as JSON: ``(value, None)`` or ``(None, message)``."""
    if not text.strip():
        return {}, None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"Invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
    except RecursionError:
        return None, "Invalid JSON: nested too deeply."
    if not isinstance(value, dict):
        return None, 'The parameters must be a JSON object, such as {"days": 30}.'
    if contains_nul(value):
        return None, "The parameters must not contain a NUL character (\\u0000)."
    return value, None


def contains_nul(value: object) -> bool:
    """Whether a JSON value holds a NUL character (in a key or a string), which PostgreSQL
    cannot store."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False
