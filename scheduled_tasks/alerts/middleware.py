"""Keeps the web process's alert monitor running (see ``monitor.WebMonitor``).

A process marked as serving requests (``wsgi.py``/``asgi.py`` call
``embedded.start_if_enabled``, which enables the monitor) checks every minute whether the
scheduler is down. Servers that fork workers after loading the application (gunicorn
``--preload``) copy that mark but not its threads: this middleware restarts them in the
worker at its first request. It does no database work and never raises; in processes that do
not serve requests (tests, commands) it does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from scheduled_tasks.alerts import monitor

log = logging.getLogger("scheduled_tasks.alerts")


class AlertMonitorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            monitor.ensure_web_monitor()
        except Exception:
            log.exception("could not start the alert monitor")
        return self.get_response(request)
