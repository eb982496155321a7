"""``/health/``: is the service healthy? For load balancers and uptime monitors, no login.

200 when healthy, 503 otherwise (``scheduled_tasks.health``: the database, a scheduler's
heartbeat, and with Celery the broker and a live worker); the body says which part failed,
lists the runners and workers seen lately (by kind; their host names only for logged-in
users who may view tasks), how many runs are queued and running, and how many alerts are
open. Each call also runs the scheduler-down rule, so a monitor polling this page makes that
alert fire even when every runner is dead. Nothing secret is shown: no error text, no URLs.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from scheduled_tasks import health as checks
from scheduled_tasks.views.access import VIEW_PERM


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    names = request.user.is_authenticated and request.user.has_perm(VIEW_PERM)
    healthy, body = checks.report(timezone.now(), names=names)
    return JsonResponse(body, status=200 if healthy else 503)
