"""The run pages: "Run now" on a task, "Test run" of the code being edited (both run in the
sandbox during the request, a fork of this process, and report the result), the page of one
run, and "Cancel" of a pending or running run."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from scheduled_tasks import cancelling, loglines, records, services
from scheduled_tasks.choices import status_label
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.queue_state import execution_queue_state
from scheduled_tasks.runner import TaskBusy, run_task_now
from scheduled_tasks.sandbox import run_snippet
from scheduled_tasks.validation import code_problems
from scheduled_tasks.views.access import ADD_PERM, CHANGE_PERM, RUN_PERM, task_action


@task_action(RUN_PERM)
def task_run(request: HttpRequest, task: ScheduledTask) -> HttpResponse:
    try:
        execution = run_task_now(task, now=timezone.now(), trigger=Execution.Trigger.MANUAL)
    except TaskBusy as exc:
        messages.error(request, str(exc))
        return redirect("scheduled_tasks:task_detail", pk=task.pk)
    note = f"Ran “{task.name}” now: {execution.get_status_display().lower()}"
    if execution.duration_seconds is not None:
        note += f" in {execution.duration_seconds:.2f} s"
    if execution.status == Execution.Status.COMPLETED:
        messages.success(request, f"{note}.")
    else:
        messages.error(request, f"{note}. See the error below.")
    return redirect("scheduled_tasks:execution_detail", pk=execution.pk)


# A test run happens inside the web request: keep it short whatever the task's own timeout.
TEST_RUN_TIMEOUT_SECONDS = 30


@login_required
@require_POST
def test_run(request: HttpRequest) -> JsonResponse:
    """Run the code being edited in the sandbox now and answer with the result (JSON). With a
    ``task`` id the run is kept in that task's history as a test run."""
    if not request.user.has_perm(RUN_PERM):
        raise PermissionDenied
    task = None
    if request.POST.get("task"):
        task = get_object_or_404(ScheduledTask, pk=request.POST["task"])
        if not request.user.has_perm(CHANGE_PERM):
            raise PermissionDenied
    elif not request.user.has_perm(ADD_PERM):
        raise PermissionDenied
    code = request.POST.get("code", "")
    problems = code_problems(code)
    if problems:
        return JsonResponse(
            {"ok": False, "status": Execution.Status.FAILED, "errors": problems}, status=400
        )
    timeout = min(services.effective_timeout(task), TEST_RUN_TIMEOUT_SECONDS)
    started = timezone.now()
    result = run_snippet(code, timeout=timeout, label="test-run")
    execution = None
    if task is not None:
        execution = records.record_test_run(task, result, started, timezone.now())
    return JsonResponse(
        {
            "ok": True,
            "status": result.status,
            "status_label": status_label(result.status),
            "output": result.output,
            "output_truncated": result.output_truncated,
            "error": result.error,
            "duration": round(result.duration, 3),
            "execution_url": (
                reverse("scheduled_tasks:execution_detail", args=[execution.pk])
                if execution
                else None
            ),
        }
    )


def _neighbour(execution: Execution, *, newer: bool) -> Execution | None:
    """The task's run just after (``newer``) or just before this one; ``pk`` breaks ties."""
    op, order = ("gt", ("created_at", "pk")) if newer else ("lt", ("-created_at", "-pk"))
    after = Q(**{f"created_at__{op}": execution.created_at})
    tied = Q(created_at=execution.created_at, **{f"pk__{op}": execution.pk})
    return (
        Execution.objects.filter(task_id=execution.task_id)
        .filter(after | tied)
        .only("pk")
        .order_by(*order)
        .first()
    )


@login_required
@require_GET
def execution_detail(request: HttpRequest, pk: int) -> HttpResponse:
    execution = get_object_or_404(Execution.objects.select_related("task", "cancelled_by"), pk=pk)
    newer = _neighbour(execution, newer=True)
    older = _neighbour(execution, newer=False)
    # Every attempt of this run: the first execution and its retries, in order.
    first_id = execution.retry_of_id or execution.pk
    attempts = list(
        Execution.objects.filter(Q(pk=first_id) | Q(retry_of_id=first_id))
        .only("pk", "status", "attempt", "not_before", "started_at", "task_id")
        .order_by("attempt", "pk")
    )
    log_lines = list(execution.log_lines.all())
    now = timezone.now()
    return render(
        request,
        "scheduled_tasks/execution_detail.html",
        {
            "execution": execution,
            "log_lines": log_lines,
            "log_lines_cut": loglines.cut_short(log_lines),
            "queue_state": execution_queue_state(execution, now),
            "now": now,
            "task": execution.task,
            "newer": newer,
            "older": older,
            "attempts": attempts if len(attempts) > 1 else [],
            # A pending retry may wait for hours: only a run in progress refreshes the page.
            "in_progress": execution.status == Execution.Status.RUNNING,
            "cancellable": execution.status in CANCELLABLE,
            "Status": Execution.Status,
        },
    )


CANCELLABLE = frozenset({Execution.Status.PENDING, Execution.Status.RUNNING})


@login_required
@require_POST
@permission_required(RUN_PERM, raise_exception=True)  # as "Run now"
def execution_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """End a pending or running run as cancelled (its sandbox process is killed by its
    runner within about a second); say so, or why not, on the run's page."""
    execution = get_object_or_404(Execution.objects.only("pk"), pk=pk)
    try:
        execution = cancelling.cancel_execution(execution.pk, user=request.user, now=timezone.now())
    except cancelling.NotCancellable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Run #{execution.pk} of “{execution.task.name}” cancelled.")
    return redirect("scheduled_tasks:execution_detail", pk=pk)
