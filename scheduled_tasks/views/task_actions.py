"""Actions on tasks beyond one form: bulk enable / disable / run now / delete from the list,
Duplicate and Delete from a task's page. Each destructive or costly action goes through a
confirmation page (no JavaScript needed), then a POST; each checks its own permission."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from scheduled_tasks import background, services
from scheduled_tasks.forms import ScheduledTaskForm
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.views.access import ADD_PERM, CHANGE_PERM, RUN_PERM, VIEW_PERM

DELETE_PERM = "scheduled_tasks.delete_scheduledtask"
# More than a page of the list (50) never comes from the page itself.
MAX_BULK_TASKS = 500
# Refusals named one by one in the messages; the rest are counted.
REFUSALS_SHOWN = 5


@dataclass(frozen=True)
class BulkAction:
    perm: str
    label: str  # the button and the confirmation's title: "Enable", ...
    question: str  # "{n} task(s)" is filled in
    danger: bool = False


BULK_ACTIONS: dict[str, BulkAction] = {
    "enable": BulkAction(CHANGE_PERM, "Enable", "Enable {n}? Each runs on its schedule again."),
    "disable": BulkAction(
        CHANGE_PERM, "Disable", "Disable {n}? They will not run until enabled again."
    ),
    "run": BulkAction(
        RUN_PERM,
        "Run now",
        "Run {n} now? Each run is queued and started by the next free runner.",
    ),
    "delete": BulkAction(
        DELETE_PERM,
        "Delete",
        "Delete {n} with all their run history? This cannot be undone.",
        danger=True,
    ),
}


def bulk_actions_for(user: object) -> list[tuple[str, BulkAction]]:
    """The bulk actions ``user`` may take, in the list's order."""
    return [(key, a) for key, a in BULK_ACTIONS.items() if user.has_perm(a.perm)]  # type: ignore[attr-defined]


def _tasks_phrase(count: int) -> str:
    return f"{count} task{'' if count == 1 else 's'}"


def _list_url(request: HttpRequest) -> str:
    """Where to go back to: the list with its filters and page, as posted; else the list."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("scheduled_tasks:task_list")


def _selected_ids(request: HttpRequest) -> list[int] | None:
    """The posted task ids (all those of the page when "all on this page" is ticked); None
    when one is not a number or there are too many."""
    field = "page_ids" if request.POST.get("all_on_page") else "ids"
    raw = request.POST.getlist(field)
    if len(raw) > MAX_BULK_TASKS:
        return None
    try:
        return sorted({int(value) for value in raw})
    except ValueError:
        return None


@login_required
@require_POST
def task_bulk(request: HttpRequest) -> HttpResponse:
    """The list's bulk form: first a confirmation page naming the tasks, then (``confirmed``)
    the action, a message with its outcome and back to the list."""
    key = request.POST.get("action", "")
    action = BULK_ACTIONS.get(key)
    if action is None:
        return HttpResponseBadRequest("Unknown bulk action.")
    if not request.user.has_perm(action.perm):
        raise PermissionDenied
    ids = _selected_ids(request)
    if ids is None:
        return HttpResponseBadRequest(f"Select between 1 and {MAX_BULK_TASKS} tasks.")
    back = _list_url(request)
    tasks = list(ScheduledTask.objects.filter(pk__in=ids).order_by("name"))
    if not tasks:
        messages.warning(request, "Select at least one task first.")
        return redirect(back)
    if not request.POST.get("confirmed"):
        return render(
            request,
            "scheduled_tasks/task_confirm.html",
            {
                "title": f"{action.label} {_tasks_phrase(len(tasks))}",
                "question": action.question.format(n=_tasks_phrase(len(tasks))),
                "tasks": tasks,
                "action_url": reverse("scheduled_tasks:task_bulk"),
                "hidden": [("action", key), ("next", back)],
                "button": action.label,
                "danger": action.danger,
                "cancel_url": back,
            },
        )
    _apply(request, key, tasks)
    return redirect(back)


def _apply(request: HttpRequest, key: str, tasks: list[ScheduledTask]) -> None:
    now = timezone.now()
    if key in ("enable", "disable"):
        result = services.set_active_many(tasks, key == "enable", now=now, user=request.user)
        done = "enabled" if key == "enable" else "disabled"
        unchanged = len(tasks) - len(result.changed) - len(result.refused)
        note = f" ({unchanged} already {done})" if unchanged else ""
        messages.success(request, f"{_tasks_phrase(len(result.changed))} {done}{note}.")
        for refusal in result.refused[:REFUSALS_SHOWN]:
            messages.error(request, str(refusal))
        if len(result.refused) > REFUSALS_SHOWN:
            messages.error(
                request, f"… and {len(result.refused) - REFUSALS_SHOWN} more could not be enabled."
            )
    elif key == "run":
        with transaction.atomic():
            for task in tasks:
                background.queue_run(task, now)
        messages.success(
            request,
            f"{_tasks_phrase(len(tasks))} queued to run now; the next free runner starts them.",
        )
    else:
        deleted = services.delete_tasks(ScheduledTask.objects.filter(pk__in=[t.pk for t in tasks]))
        messages.success(request, f"{_tasks_phrase(deleted)} deleted with their run history.")


@login_required
@permission_required(DELETE_PERM, raise_exception=True)
@require_http_methods(["GET", "POST"])
def task_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """A task's Delete: a confirmation page (GET), then the deletion (POST)."""
    task = get_object_or_404(ScheduledTask, pk=pk)
    if request.method == "POST":
        name = task.name
        services.delete_task(task)
        messages.success(request, f"Task “{name}” deleted with its run history.")
        return redirect("scheduled_tasks:task_list")
    runs = task.executions.count()
    return render(
        request,
        "scheduled_tasks/task_confirm.html",
        {
            "title": f"Delete “{task.name}”",
            "question": (
                f"Delete this task and its {runs} recorded run{'' if runs == 1 else 's'}? "
                "A run in progress finishes but is not recorded. This cannot be undone."
            ),
            "tasks": [task],
            "action_url": reverse("scheduled_tasks:task_delete", args=[task.pk]),
            "hidden": [],
            "button": "Delete",
            "danger": True,
            "cancel_url": reverse("scheduled_tasks:task_detail", args=[task.pk]),
        },
    )


# Stays within the name's 200 characters with room for " (99)".
COPY_PREFIX = "copy of "


def copy_name(name: str) -> str:
    """A free name for a copy of ``name``: "copy of NAME", else "copy of NAME (2)", ..."""
    limit = ScheduledTask._meta.get_field("name").max_length - len(" (999)")
    base = (COPY_PREFIX + name)[:limit]
    taken = set(ScheduledTask.objects.filter(name__startswith=base).values_list("name", flat=True))
    if base not in taken:
        return base
    number = 2
    while f"{base} ({number})" in taken:
        number += 1
    return f"{base} ({number})"


def duplicate_of(task: ScheduledTask) -> ScheduledTask:
    """An unsaved task defined like ``task``, inactive (a copy must not double the original's
    work before someone looks at it), named "copy of ..."."""
    copy = ScheduledTask()
    for name in ScheduledTaskForm._meta.fields or ():  # what a person defines, nothing else
        setattr(copy, name, getattr(task, name))
    copy.name = copy_name(task.name)
    copy.is_active = False
    return copy


@login_required
# Reading the task too: the copy shows its code, which may hold secrets.
@permission_required((ADD_PERM, VIEW_PERM), raise_exception=True)
@require_http_methods(["GET", "POST"])
def task_duplicate(request: HttpRequest, pk: int) -> HttpResponse:
    """Duplicate: the create form filled from the task (GET); saving creates the copy (POST)."""
    from scheduled_tasks.views.tasks import create_task_page

    task = get_object_or_404(ScheduledTask, pk=pk)
    if request.method == "GET":
        messages.info(
            request,
            f"A copy of “{task.name}”: check it and save. It starts inactive; tick “Active” "
            "to run it on its schedule.",
        )
    # The copy keeps the original's start (an interval's grid, a one-off's time).
    initial = {name: getattr(task, name) for name in ("anchor", "run_at") if getattr(task, name)}
    return create_task_page(request, duplicate_of(task), initial)
