"""``/metrics``: the scheduler's figures in the Prometheus text format (``metrics.py``).

Who may read them: a scraper sending ``Authorization: Bearer <SCHEDULED_TASKS["METRICS_TOKEN"]>``
(token access is off while the setting is None), or a logged-in user allowed to view tasks.
"""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scheduled_tasks import conf, metrics

VIEW_PERM = "scheduled_tasks.view_scheduledtask"


def _bearer_token(request: HttpRequest) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip()


def _token_matches(offered: str) -> bool:
    expected = conf.get("METRICS_TOKEN")
    if not expected or not isinstance(expected, str):
        return False
    # Bytes: compare_digest refuses str holding anything but ASCII.
    return hmac.compare_digest(offered.encode(), expected.encode())


def _unauthorized() -> HttpResponse:
    response = HttpResponse("Authentication required.\n", status=401, content_type="text/plain")
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = _bearer_token(request)
    if token is not None:
        # A token that is offered decides on its own: a wrong one is refused even from a
        # logged-in browser, so a misconfigured scraper is noticed.
        if not _token_matches(token):
            return _unauthorized()
    elif not request.user.is_authenticated:
        return _unauthorized()
    elif not request.user.has_perm(VIEW_PERM):
        return HttpResponse("Permission denied.\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST)
