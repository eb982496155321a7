"""Opening and resolving alerts: at most one open alert per condition, whoever checks.

- ``open_alert`` opens once: the partial unique constraint on open keys refuses a second
  open alert even when two processes check at the same moment (the loser's insert fails
  inside a savepoint and it moves on).
- An alert resolves itself when its condition clears (``check_all``, ``after_run``), or by
  hand (``resolve``). A condition resolved by hand is not reopened for the same evidence,
  only for newer evidence (a later failure, another skipped slot, a later silence).
- Each opening and resolution queues its notifications (``notify.enqueue``) in the same
  transaction; a background sender delivers them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, InterfaceError, transaction
from django.db.models import Count

from scheduled_tasks import heartbeats
from scheduled_tasks.alerts import notify, rules
from scheduled_tasks.alerts.rules import Condition
from scheduled_tasks.models import Alert, Execution

log = logging.getLogger("scheduled_tasks.alerts")

Kind = Alert.Kind
OPEN = Alert.Status.OPEN
RESOLVED = Alert.Status.RESOLVED
BY_HAND = "Resolved by hand"
CLEARED = {
    Kind.FAILURES: "A later run completed.",
    Kind.LONG_RUN: "The run ended.",
    Kind.MISSED: "The task ran again.",
    Kind.SCHEDULER_DOWN: "A scheduler sent a heartbeat.",
}
# Open alerts looked at per kind and check (each costs one small query).
OPEN_LIMIT = 500


@dataclass
class CheckReport:
    opened: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _latest(condition: Condition) -> Alert | None:
    alerts = Alert.objects.filter(key=condition.key)
    if condition.task_id is not None:
        alerts = alerts.filter(task_id=condition.task_id)  # through sched_alert_task
    return alerts.order_by("-opened_at", "-id").first()


def resolved_by_hand(alert: Alert) -> bool:
    return alert.resolved_by_id is not None or alert.resolution.startswith(BY_HAND)


def open_alert(condition: Condition, now: datetime) -> Alert | None:
    """Open an alert for ``condition`` unless one is open (or one was resolved by hand after
    its evidence); returns the new alert, or None."""
    latest = _latest(condition)
    if latest is not None:
        if latest.status == OPEN:
            return None
        if (
            resolved_by_hand(latest)
            and latest.resolved_at is not None
            and (condition.since is None or condition.since <= latest.resolved_at)
        ):
            return None
    try:
        with transaction.atomic():  # a savepoint inside a caller's transaction
            alert = Alert.objects.create(
                kind=condition.kind,
                key=condition.key,
                task_id=condition.task_id,
                execution_id=condition.execution_id,
                message=condition.message,
                details=condition.details,
                opened_at=now,
            )
            notify.enqueue(alert, notify.Event.OPENED, now)
    except IntegrityError:
        return None  # another process opened it a moment ago
    log.warning("alert %s opened: %s", alert.pk, alert.message)
    transaction.on_commit(notify.wake)
    return alert


def _close(alert: Alert, now: datetime, resolution: str, user: Any = None) -> bool:
    with transaction.atomic():
        changed = Alert.objects.filter(pk=alert.pk, status=OPEN).update(
            status=RESOLVED, resolved_at=now, resolution=resolution[:200], resolved_by=user
        )
        if changed:
            alert.status, alert.resolved_at, alert.resolution = RESOLVED, now, resolution[:200]
            alert.resolved_by = user
            notify.enqueue(alert, notify.Event.RESOLVED, now)
    if changed:
        log.info("alert %s resolved: %s", alert.pk, resolution)
        transaction.on_commit(notify.wake)
    return bool(changed)


def resolve(alert: Alert, user: Any, now: datetime, note: str = "") -> bool:
    """Resolve ``alert`` by hand (``user`` may be None, e.g. a script). False if it was not
    open. The condition is not reopened until new evidence comes."""
    who = f" by {user.get_username()}" if user is not None else ""
    resolution = f"{BY_HAND}{who}" + (f": {note}" if note else ".")
    return _close(alert, now, resolution, user)


def auto_resolve(alert: Alert, now: datetime) -> bool:
    """Resolve ``alert`` because its condition cleared."""
    return _close(alert, now, CLEARED.get(alert.kind, "The condition cleared."))


# -- the checks -----------------------------------------------------------------------------


def _open_alerts(kind: str) -> list[Alert]:
    return list(Alert.objects.filter(status=OPEN, kind=kind).order_by("opened_at")[:OPEN_LIMIT])


def _sweep(
    kind: str,
    cleared: Callable[[Alert], bool],
    found: Callable[[], list[Condition]],
    now: datetime,
    report: CheckReport,
) -> None:
    for alert in _open_alerts(kind):
        if cleared(alert) and auto_resolve(alert, now):
            report.resolved.append(alert)
    for condition in found():
        alert = open_alert(condition, now)
        if alert is not None:
            report.opened.append(alert)


def check_failures(now: datetime, report: CheckReport) -> None:
    _sweep(
        Kind.FAILURES,
        lambda alert: alert.task_id is None or rules.failures_cleared(alert.task_id),
        lambda: rules.failures(now),
        now,
        report,
    )


def check_long_runs(now: datetime, report: CheckReport) -> None:
    _sweep(
        Kind.LONG_RUN,
        lambda alert: rules.long_run_cleared(alert.execution_id),
        lambda: rules.long_runs(now),
        now,
        report,
    )


def check_missed(now: datetime, report: CheckReport) -> None:
    _sweep(
        Kind.MISSED,
        lambda alert: rules.missed_cleared(alert.task_id, now),
        lambda: rules.missed(now),
        now,
        report,
    )


def check_scheduler_down(now: datetime, report: CheckReport | None = None) -> CheckReport:
    """The scheduler-down rule alone: what web processes and ``/health/`` run."""
    report = report if report is not None else CheckReport()
    condition = rules.scheduler_down(now)
    if condition is None:
        for alert in _open_alerts(Kind.SCHEDULER_DOWN):
            if auto_resolve(alert, now):
                report.resolved.append(alert)
        return report
    alert = open_alert(condition, now)
    if alert is not None:
        report.opened.append(alert)
    return report


CHECKS: tuple[Callable[[datetime, CheckReport], Any], ...] = (
    check_failures,
    check_long_runs,
    check_missed,
    check_scheduler_down,
)


def check_all(now: datetime) -> CheckReport:
    """Run every rule at ``now``: resolve what cleared, open what holds. A failing rule is
    logged and the others still run; a database error ends the check (and is raised)."""
    report = CheckReport()
    for check in CHECKS:
        try:
            check(now, report)
        except (DatabaseError, InterfaceError):
            raise  # the next rules would meet the same outage: the caller logs it once
        except Exception as exc:
            log.exception("alert check %s failed", check.__name__)
            report.errors.append(f"{check.__name__}: {type(exc).__name__}: {exc}")
    try:
        heartbeats.prune(now)
    except Exception:
        log.exception("pruning runner heartbeats failed")
    return report


def after_run(execution: Execution, now: datetime) -> CheckReport:
    """Right after a run ended (the runner's ``on_finish``): its task's streak, its long-run
    alert, its task's missed alert. A few indexed queries; never raises."""
    report = CheckReport()
    if execution.trigger == Execution.Trigger.TEST:
        return report
    try:
        task_id = execution.task_id
        open_alerts = list(
            Alert.objects.filter(task_id=task_id, status=OPEN).exclude(
                kind=Kind.LONG_RUN, execution_id__isnull=False
            )
        )
        open_alerts += list(
            Alert.objects.filter(execution_id=execution.pk, status=OPEN, kind=Kind.LONG_RUN)
        )
        for alert in open_alerts:
            cleared = (
                (alert.kind == Kind.FAILURES and rules.failures_cleared(task_id))
                or (alert.kind == Kind.LONG_RUN and rules.long_run_cleared(alert.execution_id))
                or (alert.kind == Kind.MISSED and rules.missed_cleared(task_id, now))
            )
            if cleared and auto_resolve(alert, now):
                report.resolved.append(alert)
        if execution.status in rules.FAILING:
            condition = rules.failures_in_a_row(task_id)
            if condition is not None and (alert := open_alert(condition, now)) is not None:
                report.opened.append(alert)
    except Exception as exc:
        log.exception("alert check after execution %s failed", execution.pk)
        report.errors.append(f"{type(exc).__name__}: {exc}")
    return report


def summary() -> dict[str, Any]:
    """Open alerts by kind (for the API and the pages): ``{"open": n, "by_kind": {...}}``."""
    rows = Alert.objects.filter(status=OPEN).values("kind").annotate(n=Count("id")).order_by()
    by_kind = dict.fromkeys(Kind.values, 0)
    for row in rows:
        by_kind[row["kind"]] = row["n"]
    return {"open": sum(by_kind.values()), "by_kind": by_kind}
