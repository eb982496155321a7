"""``/health/``: is the service healthy? For load balancers and uptime monitors, no login.

200 when the database answers and a scheduler (daemon, cron pass, embedded leader) sent a
heartbeat within ``ALERT_SCHEDULER_DOWN_MINUTES``; 503 otherwise. The body says which part
failed, and how many alerts are open. Each call also runs the scheduler-down rule, so a
monitor polling this page makes that alert fire even when every runner is dead.

Nothing secret is shown: no error text, no host names.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from scheduled_tasks import conf, heartbeats
from scheduled_tasks.alerts import service
from scheduled_tasks.models import Alert

log = logging.getLogger("scheduled_tasks.health")


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        log.warning("health: the database does not answer", exc_info=True)
        return False


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    now = timezone.now()
    minutes = (
        conf.get("ALERT_SCHEDULER_DOWN_MINUTES") or conf.DEFAULTS["ALERT_SCHEDULER_DOWN_MINUTES"]
    )
    body: dict[str, Any] = {
        "status": "unavailable",
        "checked_at": now.isoformat(),
        "database": {"ok": _database_ok()},
        "scheduler": {
            "ok": False,
            "last_heartbeat_at": None,
            "age_seconds": None,
            "kind": None,
            "threshold_seconds": minutes * 60,
        },
        "alerts": {"open": None},
    }
    if body["database"]["ok"]:
        try:
            last = heartbeats.latest()
            if last is not None:
                age = max((now - last.last_seen_at).total_seconds(), 0.0)
                body["scheduler"].update(
                    ok=last.last_seen_at >= now - timedelta(minutes=minutes),
                    last_heartbeat_at=last.last_seen_at.isoformat(),
                    age_seconds=round(age, 3),
                    kind=last.kind,
                )
            service.check_scheduler_down(now)
            body["alerts"]["open"] = Alert.objects.filter(status=Alert.Status.OPEN).count()
        except Exception:
            log.exception("health: the scheduler check failed")
            body["scheduler"]["ok"] = False
    healthy = body["database"]["ok"] and body["scheduler"]["ok"]
    body["status"] = "ok" if healthy else "unavailable"
    return JsonResponse(body, status=200 if healthy else 503)
