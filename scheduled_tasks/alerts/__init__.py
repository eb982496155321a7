"""Alerts: rules (``rules.py``), opening and resolving (``service.py``), notifications
(``notify.py``), the threads that keep them current (``monitor.py``). See docs/alerts.md."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scheduled_tasks.alerts.service import CheckReport
    from scheduled_tasks.models import Alert, Execution

__all__ = ["after_run", "check_all", "resolve", "summary"]


# Imported lazily: the package is imported by the runner modules while Django sets up.
def check_all(now: datetime) -> CheckReport:
    from scheduled_tasks.alerts import service

    return service.check_all(now)


def after_run(execution: Execution, now: datetime) -> CheckReport:
    from scheduled_tasks.alerts import service

    return service.after_run(execution, now)


def resolve(alert: Alert, user: Any, now: datetime, note: str = "") -> bool:
    from scheduled_tasks.alerts import service

    return service.resolve(alert, user, now, note)


def summary() -> dict[str, Any]:
    from scheduled_tasks.alerts import service

    return service.summary()
