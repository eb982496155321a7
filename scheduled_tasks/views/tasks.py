"""The task pages: the list, create and edit, activate/deactivate, a task's page with its run
history, and the live schedule preview of the form."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Right, Substr
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET, require_http_methods

from scheduled_tasks import registry, schedules, services
from scheduled_tasks.choices import status_label
from scheduled_tasks.forms import ALL_SCHEDULE_FIELDS, ScheduledTaskForm, SchedulePreviewForm
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.queue_state import execution_queue_state, task_queue_state
from scheduled_tasks.sandbox.namespace import ALLOWED_IMPORTS
from scheduled_tasks.schedules import kinds
from scheduled_tasks.task_stats import task_figures
from scheduled_tasks.views.access import ADD_PERM, CHANGE_PERM, task_action, view_required
from scheduled_tasks.views.task_actions import bulk_actions_for

TASKS_PER_PAGE = 50
EXECUTIONS_PER_PAGE = 25
UPCOMING_RUNS = 5
# Enough of a run's output for one table cell; the full text is on the execution page.
OUTPUT_PREVIEW_CHARS = 160


TASK_SORTS: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "-name": ("-name",),
    "next_run": ("next_run_at", "name"),
    "-next_run": ("-next_run_at", "name"),
    "last_run": ("last_run_at", "name"),
    "-last_run": ("-last_run_at", "name"),
}

PENDING_RETRIES_SHOWN = 10
PREVIEW_FORMAT = "D j M Y, H:i T"

# What the task list reads of each task: everything its row shows, ``schedule_description``
# included (a deferred field would cost one query per row).
LIST_FIELDS = (
    "pk",
    "name",
    "description",
    "schedule_kind",
    *ALL_SCHEDULE_FIELDS,
    "time_zone",
    "function_name",
    "priority",
    "is_active",
    "last_execution",  # with its status (select_related): the last status of each row
    "last_execution__status",
    "last_run_at",
    "next_run_at",
)


class CountedPaginator(Paginator):
    """A paginator told how many rows there are (counted already), instead of counting."""

    def __init__(self, object_list: Any, per_page: int, *, count: int) -> None:
        super().__init__(object_list, per_page)
        self.__dict__["count"] = count  # Paginator.count is a cached_property


def upcoming_runs(
    schedule: schedules.Schedule, now: datetime, count: int = UPCOMING_RUNS
) -> list[datetime]:
    """The next ``count`` slots of ``schedule`` from ``now`` on (``now`` itself included); fewer
    when the schedule ends (a one-off has one, or none once it has passed)."""
    try:
        first = schedules.next_fire_time(schedule, now, inclusive=True)
        if first is None:
            return []
        return [first, *schedules.fire_times(schedule, first, count - 1)]
    except schedules.ScheduleError:
        return []


def schedule_preview_data(schedule: schedules.Schedule, now: datetime) -> dict[str, Any]:
    """The schedule in words and its next runs, shown in the schedule's own zone."""
    runs = upcoming_runs(schedule, now)
    note = "" if runs else kinds.for_schedule(schedule).ended_note
    return {
        "description": schedules.describe(schedule),
        "time_zone": schedules.zone_name(schedule.tz),
        "runs": [
            {
                "iso": run.isoformat(),
                "display": date_format(run.astimezone(schedule.tz), PREVIEW_FORMAT),
            }
            for run in runs
        ],
        "note": note,
    }


# The runner of each listed task's latest run that a runner took, in the page's own query
# rather than one query per row: a correlated subquery that reads the ``sched_exec_task_time``
# index backwards and stops at the first row (no "-pk" tie-breaker: that would sort every run
# of the task, for every row of the page).
_LAST_RUNNER = Subquery(
    Execution.objects.filter(task=OuterRef("pk"))
    .exclude(runner="")
    .order_by("-created_at")
    .values("runner")[:1]
)


@view_required
@require_GET
def task_list(request: HttpRequest) -> HttpResponse:
    tasks = (
        ScheduledTask.objects.select_related("last_execution")
        .only(*LIST_FIELDS)
        .annotate(last_runner=_LAST_RUNNER)
    )
    # The filters as one condition: the page's rows and, in the totals' one pass over the
    # tasks, how many match (the paginator's count), rather than a second COUNT.
    matching = Q()
    query = request.GET.get("q", "").strip()
    if query:
        matching &= Q(name__icontains=query) | Q(description__icontains=query)
    state = request.GET.get("state", "")
    if state == "active":
        matching &= Q(is_active=True)
    elif state == "inactive":
        matching &= Q(is_active=False)
    kind = request.GET.get("kind", "")
    if kinds.lookup(kind) is not None:
        matching &= Q(schedule_kind=kind)
    else:
        kind = ""
    status = request.GET.get("status", "")
    if status == "never":
        matching &= Q(last_execution__isnull=True)
    elif status == "problem":
        matching &= Q(last_failed=True)  # its latest run failed (the partial index)
    elif status in Execution.Status.values:
        matching &= Q(last_execution__status=status)
    sort = request.GET.get("sort", "name")
    if sort not in TASK_SORTS:
        sort = "name"
    tasks = tasks.filter(matching).order_by(*TASK_SORTS[sort])

    now = timezone.now()
    totals = ScheduledTask.objects.order_by().aggregate(
        total=Count("pk"),
        active=Count("pk", filter=Q(is_active=True)),
        problems=Count("pk", filter=Q(last_failed=True)),
        matching=Count("pk", filter=matching) if matching else Count("pk"),
    )
    page = CountedPaginator(tasks, TASKS_PER_PAGE, count=totals["matching"]).get_page(
        request.GET.get("page")
    )
    for task in page:
        task.last_status_label = status_label(task.last_status)
        task.queue_state = task_queue_state(task, now)

    filtered = bool(query or state or status or kind)
    return render(
        request,
        "scheduled_tasks/task_list.html",
        {
            "page": page,
            "totals": totals,
            "query": query,
            "state": state,
            "status": status,
            "kind": kind,
            "kind_choices": kinds.choices(),
            "sort": sort,
            "filtered": filtered,
            "status_choices": Execution.Status.choices,
            "now": now,
            "bulk_actions": bulk_actions_for(request.user),
        },
    )


def _preview_for(data: Any, now: datetime) -> dict[str, Any] | None:
    preview_form = SchedulePreviewForm(data)
    if not preview_form.is_valid():
        return None
    schedule = preview_form.schedule()
    return None if schedule is None else schedule_preview_data(schedule, now)


def _render_form(
    request: HttpRequest, form: ScheduledTaskForm, task: ScheduledTask | None, now: datetime
) -> HttpResponse:
    if form.is_bound:
        preview = _preview_for(form.data, now)
    else:
        preview = _preview_for(
            {name: form[name].value() for name in SchedulePreviewForm.base_fields}, now
        )
    return render(
        request,
        "scheduled_tasks/task_form.html",
        {
            "form": form,
            "task": task,
            "preview": preview,
            # Each kind's panel of schedule fields, and the fields the live preview sends.
            "schedule_kinds": kinds.registered(),
            "preview_fields": " ".join(SchedulePreviewForm.base_fields),
            "functions": [
                {
                    "name": f.name,
                    "signature": f.signature_text(),
                    "description": f.description,
                    "defaults": json.dumps(f.defaults(), indent=2, ensure_ascii=False, default=str),
                }
                for f in registry.all_functions()
            ],
            "allowed_imports": ALLOWED_IMPORTS,
        },
    )


@login_required
@permission_required(ADD_PERM, raise_exception=True)
@require_http_methods(["GET", "POST"])
def task_create(request: HttpRequest) -> HttpResponse:
    return create_task_page(request)


def create_task_page(
    request: HttpRequest,
    instance: ScheduledTask | None = None,
    initial: dict[str, Any] | None = None,
) -> HttpResponse:
    """The create form (empty, or filled from ``instance``: Duplicate) and its POST."""
    now = timezone.now()
    form = ScheduledTaskForm(request.POST or None, instance=instance, initial=initial, now=now)
    if request.method == "POST" and form.is_valid():
        try:
            task = services.save_task(form.instance, now=now, user=request.user)
        except services.TaskWriteError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Task “{task.name}” created. {_next_run_note(task)}")
            return redirect("scheduled_tasks:task_detail", pk=task.pk)
    return _render_form(request, form, None, now)


@login_required
@permission_required(CHANGE_PERM, raise_exception=True)
@require_http_methods(["GET", "POST"])
def task_edit(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(ScheduledTask, pk=pk)
    now = timezone.now()
    form = ScheduledTaskForm(request.POST or None, instance=task, now=now)
    if request.method == "POST" and form.is_valid():
        try:
            services.save_task(task, now=now, user=request.user)
        except services.TaskWriteError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Task “{task.name}” saved. {_next_run_note(task)}")
            return redirect("scheduled_tasks:task_detail", pk=task.pk)
    if form.is_bound:
        # A failed save must not show the half-edited values as if they were stored.
        task.refresh_from_db()
    return _render_form(request, form, task, now)


def _next_run_note(task: ScheduledTask) -> str:
    if not task.is_active:
        return "It is inactive and will not run on its schedule."
    if task.next_run_at is None:
        return "Its schedule has no further runs."
    when = date_format(timezone.localtime(task.next_run_at), "DATETIME_FORMAT")
    return f"Next run: {when}."


@task_action(CHANGE_PERM)
def task_toggle(request: HttpRequest, task: ScheduledTask) -> HttpResponse:
    try:
        services.set_active(task, not task.is_active, now=timezone.now(), user=request.user)
    except services.TaskWriteError as exc:
        # A one-off whose time has passed (or a schedule that ended) would sit "active" and
        # never run: say so instead; the task is left as it was.
        messages.error(request, str(exc))
        return redirect("scheduled_tasks:task_detail", pk=task.pk)
    if task.is_active:
        messages.success(request, f"Task “{task.name}” activated. {_next_run_note(task)}")
    else:
        messages.success(
            request, f"Task “{task.name}” deactivated; it will not run until activated again."
        )
    return redirect("scheduled_tasks:task_detail", pk=task.pk)


@view_required
@require_GET
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(
        ScheduledTask.objects.select_related("created_by", "updated_by", "last_execution"), pk=pk
    )
    now = timezone.now()

    counts = {
        row["status"]: row["n"]
        # COUNT(*): PostgreSQL answers from the (task, status, created_at) index alone.
        for row in task.executions.order_by().values("status").annotate(n=Count("*"))
    }
    status_filter = request.GET.get("status", "")
    if status_filter not in Execution.Status.values:
        status_filter = ""
    history = (
        task.executions.defer("output", "error")
        .annotate(
            output_head=Substr("output", 1, OUTPUT_PREVIEW_CHARS),
            error_tail=Right("error", OUTPUT_PREVIEW_CHARS),
        )
        .order_by("-created_at", "-pk")
    )
    if status_filter:
        history = history.filter(status=status_filter)
    # The counts above already say how many rows the history has: no second COUNT of them.
    known = counts.get(status_filter, 0) if status_filter else sum(counts.values())
    page = CountedPaginator(history, EXECUTIONS_PER_PAGE, count=known).get_page(
        request.GET.get("page")
    )
    for execution in page:
        # A traceback's last line says what went wrong; its first line never does.
        lines = execution.error_tail.strip().splitlines()
        execution.error_summary = lines[-1] if lines else ""
        execution.queue_state = execution_queue_state(execution, now)
    pending_retries = list(
        task.executions.filter(status=Execution.Status.PENDING)
        .only("pk", "attempt", "retry_of_id", "not_before", "task_id", "status", "runner")
        .order_by("not_before", "pk")[:PENDING_RETRIES_SHOWN]
    )
    for retry in pending_retries:
        retry.queue_state = execution_queue_state(retry, now)

    return render(
        request,
        "scheduled_tasks/task_detail.html",
        {
            "task": task,
            "last_status_label": status_label(task.last_status),
            "queue_state": task_queue_state(task, now),
            "function": _registered(task.function_name),
            "function_params": json.dumps(task.function_params or {}, indent=2, ensure_ascii=False),
            "upcoming": _task_upcoming(task, now),
            "pending_retries": pending_retries,
            "page": page,
            "status_filter": status_filter,
            "status_counts": [
                (value, label, counts[value])
                for value, label in Execution.Status.choices
                if counts.get(value)
            ],
            "total_runs": sum(counts.values()),
            "effective_timeout": services.effective_timeout(task),
            "figures": task_figures(task, now),
            "now": now,
            "Status": Execution.Status,
        },
    )


def _registered(name: str) -> registry.RegisteredFunction | None:
    if not name:
        return None
    try:
        return registry.get(name)
    except registry.UnknownFunction:
        return None


def _task_upcoming(task: ScheduledTask, now: datetime) -> list[datetime]:
    if not task.is_active:
        return []
    try:
        schedule = task.schedule
    except schedules.ScheduleError:
        return []
    return upcoming_runs(schedule, now)


@view_required
@require_GET
def schedule_preview(request: HttpRequest) -> JsonResponse:
    """The schedule in words and its next runs, for the live preview on the task form."""
    form = SchedulePreviewForm(request.GET)
    if not form.is_valid():
        errors = []
        for name, errs in form.errors.items():
            label = form.fields[name].label if name in form.fields else None
            text = " ".join(errs)
            errors.append(f"{label}: {text}" if label else text)
        return JsonResponse({"ok": False, "errors": errors}, status=400)
    schedule = form.schedule()
    if schedule is None:  # pragma: no cover - a valid form always builds one
        return JsonResponse({"ok": False, "errors": ["The schedule is incomplete."]}, status=400)
    return JsonResponse({"ok": True, **schedule_preview_data(schedule, timezone.now())})
