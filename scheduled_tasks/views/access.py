"""Who may do what on the scheduler's pages: the permissions and the decorator of task actions."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from scheduled_tasks.models import ScheduledTask

# Reading a task, its code or its runs (code and output can hold secrets).
VIEW_PERM = "scheduled_tasks.view_scheduledtask"
ADD_PERM = "scheduled_tasks.add_scheduledtask"
CHANGE_PERM = "scheduled_tasks.change_scheduledtask"
# Running code now (Run now, a test run, cancelling a run): the API asks for the same.
RUN_PERM = "scheduled_tasks.run_scheduledtask"

TaskAction = Callable[[HttpRequest, ScheduledTask], HttpResponse]
View = Callable[..., HttpResponse]


def view_required(view: View) -> View:
    """A page that shows tasks, code or runs: logged in (else the login page) and holding
    ``VIEW_PERM`` (else 403)."""
    return login_required(permission_required(VIEW_PERM, raise_exception=True)(view))


def task_action(perm: str) -> Callable[[TaskAction], Callable[[HttpRequest, int], HttpResponse]]:
    """A POST on one task (toggle: ``CHANGE_PERM``, Run now: ``RUN_PERM``): logged in, holding
    ``perm``, the task found by ``pk`` (404 if not)."""

    def decorator(view: TaskAction) -> Callable[[HttpRequest, int], HttpResponse]:
        @login_required
        @require_POST
        @permission_required(perm, raise_exception=True)
        @wraps(view)
        def action(request: HttpRequest, pk: int) -> HttpResponse:
            return view(request, get_object_or_404(ScheduledTask, pk=pk))

        return action

    return decorator
