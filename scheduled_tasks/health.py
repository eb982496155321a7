"""Is the scheduler healthy? One report for ``/health/`` and ``manage.py scheduler_status``.

Healthy means: the database answers; a scheduling runner (daemon, cron pass, embedded leader)
sent a heartbeat within ``ALERT_SCHEDULER_DOWN_MINUTES``; and, with a backend whose workers run
the work (Celery), its broker answers and at least one worker is alive. The report also lists
the runners and workers seen lately (each one's last heartbeat) and how many runs are queued
and running. Nothing secret: no broker URL, no error text (the kind of error only), and runner
names (host:pid) only for callers who may see them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Q

from scheduled_tasks import backends, conf, dashboard, heartbeats
from scheduled_tasks.alerts import service
from scheduled_tasks.models import Alert, Execution

log = logging.getLogger("scheduled_tasks.health")

Status = Execution.Status


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        log.warning("health: the database does not answer", exc_info=True)
        return False


# What is said of the scheduler before (or without) a look at its heartbeats.
_UNKNOWN_SCHEDULER: dict[str, Any] = {
    "ok": False,
    "last_heartbeat_at": None,
    "age_seconds": None,
    "kind": None,
    "threshold_seconds": None,
}


def _scheduler(now: datetime) -> dict[str, Any]:
    minutes = (
        conf.get("ALERT_SCHEDULER_DOWN_MINUTES") or conf.DEFAULTS["ALERT_SCHEDULER_DOWN_MINUTES"]
    )
    body: dict[str, Any] = {**_UNKNOWN_SCHEDULER, "threshold_seconds": minutes * 60}
    last = heartbeats.latest()
    if last is not None:
        body.update(
            ok=last.last_seen_at >= now - timedelta(minutes=minutes),
            last_heartbeat_at=last.last_seen_at.isoformat(),
            age_seconds=round(max((now - last.last_seen_at).total_seconds(), 0.0), 3),
            kind=last.kind,
        )
    return body


def _runners(now: datetime, *, names: bool) -> list[dict[str, Any]]:
    rows = []
    for runner in dashboard.runners(now):
        row: dict[str, Any] = {
            "kind": runner.kind,
            "state": runner.state,
            "last_heartbeat_at": runner.last_seen_at.isoformat(),
            "age_seconds": round(max((now - runner.last_seen_at).total_seconds(), 0.0), 3),
            "running": runner.running,
            "concurrency": runner.concurrency,
        }
        if names:
            row = {"name": runner.name, **row}
        rows.append(row)
    return rows


def _executions(now: datetime) -> dict[str, int]:
    counts = Execution.objects.filter(status__in=[Status.PENDING, Status.RUNNING]).aggregate(
        queued=Count(
            "pk",
            filter=Q(status=Status.PENDING) & (Q(not_before__isnull=True) | Q(not_before__lte=now)),
        ),
        waiting=Count("pk", filter=Q(status=Status.PENDING, not_before__gt=now)),
        running=Count("pk", filter=Q(status=Status.RUNNING)),
    )
    return {key: counts[key] for key in ("queued", "waiting", "running")}


def report(now: datetime, *, names: bool = False) -> tuple[bool, dict[str, Any]]:
    """``(healthy, body)``; ``names``: list runners by ``host:pid`` (operators only). Also runs
    the scheduler-down alert rule, so whoever polls this makes that alert fire."""
    body: dict[str, Any] = {
        "status": "unavailable",
        "checked_at": now.isoformat(),
        "database": {"ok": database_ok()},
        "scheduler": {**_UNKNOWN_SCHEDULER},
        "backend": {"name": None, "ok": False},
        "runners": [],
        "executions": None,
        "alerts": {"open": None},
    }
    if body["database"]["ok"]:
        try:
            body["scheduler"] = _scheduler(now)
            body["runners"] = _runners(now, names=names)
            body["executions"] = _executions(now)
            service.check_scheduler_down(now)
            body["alerts"]["open"] = Alert.objects.filter(status=Alert.Status.OPEN).count()
        except Exception:
            log.exception("health: the scheduler check failed")
            body["scheduler"]["ok"] = False
    try:
        body["backend"] = backends.current().status(now)
    except Exception:
        log.exception("health: the backend check failed")
        body["backend"] = {"name": conf.get("BACKEND"), "ok": False}
    healthy = bool(body["database"]["ok"] and body["scheduler"]["ok"] and body["backend"]["ok"])
    body["status"] = "ok" if healthy else "unavailable"
    return healthy, body
