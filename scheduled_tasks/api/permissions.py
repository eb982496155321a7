"""Who may call what: the Django permissions of the pages, named per action of each view."""

from __future__ import annotations

import re

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

VIEW = "scheduled_tasks.view_scheduledtask"
ADD = "scheduled_tasks.add_scheduledtask"
CHANGE = "scheduled_tasks.change_scheduledtask"
DELETE = "scheduled_tasks.delete_scheduledtask"
RUN = "scheduled_tasks.run_scheduledtask"
RESOLVE_ALERT = "scheduled_tasks.change_alert"

# What a view's actions need unless it says otherwise (``action_perms``).
_BY_METHOD = {"POST": ADD, "PUT": CHANGE, "PATCH": CHANGE, "DELETE": DELETE}


class SchedulerPermission(BasePermission):
    """Logged in (session or token) and holding the permission of the action: ``view`` for
    reads, ``add`` / ``change`` / ``delete`` for writes, ``run`` for running code now. A view
    names an action's permission in ``action_perms`` ({action or method: permission})."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        name = getattr(view, "action", None) or request.method.lower()
        needed = getattr(view, "action_perms", {}).get(name)
        if needed is None:
            needed = VIEW if request.method in SAFE_METHODS else _BY_METHOD.get(request.method)
        return needed is not None and user.has_perm(needed)


class IdLookup:
    """Views whose objects are found by a numeric id: an id that is not a whole number the
    database can hold is a 404 (a 30-digit id would otherwise overflow the driver: a 500)."""

    def get_object(self):
        from rest_framework.exceptions import NotFound

        value = str(self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, ""))  # type: ignore[attr-defined]
        if not re.fullmatch(r"[0-9]{1,18}", value):
            raise NotFound
        return super().get_object()  # type: ignore[misc]
