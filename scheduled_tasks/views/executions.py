"""``/tasks/executions/``: every run of every task, newest first, filtered by status, task,
trigger and time.

Paged by key, not by number: a page holds the runs below (or above) an id, read backwards
along the primary key, so neither a deep page nor the page's links need a COUNT over the
whole history (a million runs). Ids grow with the time a run is recorded, so "newest first"
is "highest id first".
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.views.access import view_required

PER_PAGE = 50
# A name search matching more tasks than this shows the runs of the first ones (by id).
TASK_MATCHES = 100
# What a row shows: never the output or error text (they can be large).
ROW_FIELDS = (
    "pk",
    "status",
    "trigger",
    "attempt",
    "created_at",
    "started_at",
    "finished_at",
    "duration_seconds",
    "runner",
    "task__id",
    "task__name",
)


class ExecutionFilter(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Execution.Status.choices]
    )
    trigger = forms.ChoiceField(
        required=False, choices=[("", "Any trigger"), *Execution.Trigger.choices]
    )
    task = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    task_name = forms.CharField(
        required=False,
        max_length=200,
        label="Task name contains",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Task name"}),
    )
    since = forms.DateTimeField(
        required=False,
        label="Recorded from",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        required=False,
        label="Recorded until",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)


def _filtered(data: dict[str, Any]) -> QuerySet[Execution]:
    runs = Execution.objects.select_related("task").only(*ROW_FIELDS)
    if data.get("status"):
        runs = runs.filter(status=data["status"])
    if data.get("trigger"):
        runs = runs.filter(trigger=data["trigger"])
    if data.get("task"):
        runs = runs.filter(task_id=data["task"])
    if data.get("task_name"):
        # The matching task ids as a bounded subquery: the runs are then read through their
        # task index, not joined to the task table row by row.
        ids = (
            ScheduledTask.objects.filter(name__icontains=data["task_name"])
            .order_by("pk")
            .values("pk")
        )
        runs = runs.filter(task_id__in=ids[:TASK_MATCHES])
    if data.get("since"):
        runs = runs.filter(created_at__gte=data["since"])
    if data.get("until"):
        runs = runs.filter(created_at__lte=data["until"])
    return runs


def page_of(
    runs: QuerySet[Execution], *, before: int | None, after: int | None
) -> tuple[list[Execution], bool, bool]:
    """A page of ``runs`` newest first: below ``before``, above ``after`` (then the oldest
    ``PER_PAGE`` of those), or the newest. Returns the rows, whether newer and whether older
    runs exist (from one extra row read, or from the cursor we came by). One query."""
    if after is not None:
        rows = list(runs.filter(pk__gt=after).order_by("pk")[: PER_PAGE + 1])
        has_newer = len(rows) > PER_PAGE
        return rows[:PER_PAGE][::-1], has_newer, True
    if before is not None:
        runs = runs.filter(pk__lt=before)
    rows = list(runs.order_by("-pk")[: PER_PAGE + 1])
    return rows[:PER_PAGE], before is not None, len(rows) > PER_PAGE


@view_required
@require_safe
def execution_list(request: HttpRequest) -> HttpResponse:
    form = ExecutionFilter(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    rows, has_newer, has_older = page_of(
        _filtered(data), before=data.get("before"), after=data.get("after")
    )
    task = None
    if data.get("task"):
        task = ScheduledTask.objects.filter(pk=data["task"]).only("pk", "name").first()
    filtered = any(
        data.get(name) for name in ("status", "trigger", "task", "task_name", "since", "until")
    )
    return render(
        request,
        "scheduled_tasks/execution_list.html",
        {
            "form": form,
            "executions": rows,
            "filter_task": task,
            "filtered": filtered,
            "newer_after": rows[0].pk if rows and has_newer else None,
            "older_before": rows[-1].pk if rows and has_older else None,
            "paged": data.get("before") is not None or data.get("after") is not None,
        },
    )
