"""A task's code versions: who changed its code or function when, each change as a diff
against the version before it, and restoring an old version."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from scheduled_tasks import services
from scheduled_tasks.models import ScheduledTask, TaskVersion
from scheduled_tasks.views.access import CHANGE_PERM, view_required

VERSIONS_PER_PAGE = 20
DIFF_CONTEXT_LINES = 3

# The CSS class of a unified diff line, by its first character.
_LINE_CLASSES = {"+": "diff-add", "-": "diff-del", "@": "diff-hunk"}


@dataclass(frozen=True)
class DiffLine:
    css: str  # diff-add, diff-del, diff-hunk or diff-context
    text: str


def version_lines(version: TaskVersion) -> list[str]:
    """What a version runs, as lines to compare: its code, or its registered function and
    parameters."""
    if version.function_name:
        params = json.dumps(
            version.function_params or {}, indent=2, sort_keys=True, ensure_ascii=False
        )
        return [f"registered function: {version.function_name}", *params.splitlines()]
    return version.code.splitlines()


def version_diff(previous: TaskVersion | None, version: TaskVersion) -> list[DiffLine]:
    """``version`` as a unified diff against ``previous`` (everything added for a first one)."""
    before = version_lines(previous) if previous is not None else []
    lines = difflib.unified_diff(
        before,
        version_lines(version),
        fromfile=f"v{previous.number}" if previous is not None else "(none)",
        tofile=f"v{version.number}",
        n=DIFF_CONTEXT_LINES,
        lineterm="",
    )
    diff = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue  # the file headers: the page says which versions these are
        diff.append(DiffLine(_LINE_CLASSES.get(line[:1], "diff-context"), line))
    return diff


@view_required
@require_GET
def task_versions(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(ScheduledTask.objects.only("pk", "name", "current_version"), pk=pk)
    page = Paginator(
        task.versions.select_related("created_by").order_by("-number"), VERSIONS_PER_PAGE
    ).get_page(request.GET.get("page"))
    versions = list(page)
    # Each version is compared with the one before it: the next on the page, and for the
    # page's last one, the first of the following page.
    previous_of_last = None
    if versions and versions[-1].number > 1:
        previous_of_last = (
            task.versions.filter(number__lt=versions[-1].number).order_by("-number").first()
        )
    rows = []
    for index, version in enumerate(versions):
        previous = versions[index + 1] if index + 1 < len(versions) else previous_of_last
        rows.append(
            {"version": version, "previous": previous, "diff": version_diff(previous, version)}
        )
    return render(
        request,
        "scheduled_tasks/task_versions.html",
        {"task": task, "page": page, "rows": rows},
    )


@login_required
@require_POST
@permission_required(CHANGE_PERM, raise_exception=True)
def version_restore(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    task = get_object_or_404(ScheduledTask, pk=pk)
    version = get_object_or_404(TaskVersion, task=task, number=number)
    try:
        restored = services.restore_version(task, version, now=timezone.now(), user=request.user)
    except services.TaskWriteError as exc:
        messages.error(request, str(exc))
    else:
        if restored is None:
            messages.info(request, f"Task “{task.name}” already runs version {number}.")
        else:
            messages.success(
                request,
                f"Version {number} of “{task.name}” restored as version {restored.number}.",
            )
    return redirect("scheduled_tasks:task_versions", pk=task.pk)
