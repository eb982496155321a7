"""Running tasks from the pages: "Run now" on a task, and "Test run" of the code being edited.
Both run in the sandbox during the request (a fork of this process) and report the result."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from scheduled_tasks import records, services
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.runner import TaskBusy, run_task_now
from scheduled_tasks.sandbox import run_snippet
from scheduled_tasks.validation import code_problems
from scheduled_tasks.views import ADD_PERM, CHANGE_PERM, STATUS_LABELS


@login_required
@require_POST
@permission_required(CHANGE_PERM, raise_exception=True)
def task_run(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(ScheduledTask, pk=pk)
    try:
        execution = run_task_now(task, now=timezone.now(), trigger="manual")
    except TaskBusy as exc:
        messages.error(request, str(exc))
        return redirect("scheduled_tasks:task_detail", pk=task.pk)
    label = STATUS_LABELS.get(execution.status, execution.status)
    note = f"Ran “{task.name}” now: {label.lower()}"
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
        return JsonResponse({"ok": False, "status": "failed", "errors": problems}, status=400)
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
            "status_label": STATUS_LABELS.get(result.status, result.status),
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
