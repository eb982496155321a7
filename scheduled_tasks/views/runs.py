"""The run pages: "Run now" on a task (queues a run that a runner starts within about a
second, and answers at once), "Test run" of the code being edited (runs in the sandbox during
the request, a fork of this process, and reports the result), the page of one run, and
"Cancel" of a pending or running run. ``views.live`` answers the pages' polls while runs go
on."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from scheduled_tasks import background, cancelling, loglines, records, services
from scheduled_tasks.choices import status_label
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.queue_state import execution_queue_state
from scheduled_tasks.sandbox import run_snippet
from scheduled_tasks.validation import code_problems
from scheduled_tasks.views.access import (
    ADD_PERM,
    CHANGE_PERM,
    RUN_PERM,
    task_action,
    view_required,
)


@task_action(RUN_PERM)
def task_run(request: HttpRequest, task: ScheduledTask) -> HttpResponse:
    """Queue a manual run and show its page, which follows it (pending -> running -> its
    end); a runner starts it (see ``background.hand_over``), never this request."""
    now = timezone.now()
    execution, how = background.queue_run(task, now)
    # Runs in progress besides this one (a runner may have claimed it already).
    others = Execution.objects.live(now).filter(task=task).exclude(pk=execution.pk)
    busy = others.count() >= task.max_instances
    if busy:
        when = "it starts when the run in progress ends"
    elif how == background.BY_WEB:
        when = "no scheduler is running, so this web process starts it in the background"
    elif how == background.BY_WORKERS:
        when = "it is sent to the workers, and the first free one starts it"
    else:
        when = "a runner starts it within a second or so"
    messages.info(request, f"Run #{execution.pk} of “{task.name}” queued: {when}.")
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
    """The task's run just after (``newer``) or just before this one; ``pk`` breaks ties.
    Written as a range on the time (``>=`` / ``<=``) less the tied runs on the wrong side of
    ``pk``, so the database reads the (task, created_at) index from this run on and stops at
    the first row; an OR of the two cases would make it filter the task's whole history."""
    if newer:
        bound, tied_side, order = "gte", "lte", ("created_at", "pk")
    else:
        bound, tied_side, order = "lte", "gte", ("-created_at", "-pk")
    return (
        Execution.objects.filter(
            task_id=execution.task_id, **{f"created_at__{bound}": execution.created_at}
        )
        .exclude(created_at=execution.created_at, **{f"pk__{tied_side}": execution.pk})
        .only("pk")
        .order_by(*order)
        .first()
    )


@view_required
@require_GET
def execution_detail(request: HttpRequest, pk: int) -> HttpResponse:
    execution = get_object_or_404(
        Execution.objects.select_related("task", "cancelled_by", "version"), pk=pk
    )
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
            "in_progress": execution.status == Execution.Status.RUNNING,
            # live.js follows a pending or running run (views.live) until it ends.
            "live": execution.status in CANCELLABLE,
            "live_seq": log_lines[-1].seq if log_lines else 0,
            "cancellable": execution.status in CANCELLABLE,
            "Status": Execution.Status,
            "Trigger": Execution.Trigger,
        },
    )


CANCELLABLE = frozenset({Execution.Status.PENDING, Execution.Status.RUNNING})


@login_required
@require_POST
@permission_required(RUN_PERM, raise_exception=True)  # as "Run now"
def execution_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """End a pending or running run as cancelled (its sandbox process is killed by its
    runner within about a second); say so, or why not, on the run's page (or on the page of
    this site named by ``next``: the task page's Cancel buttons)."""
    execution = get_object_or_404(Execution.objects.only("pk"), pk=pk)
    try:
        execution = cancelling.cancel_execution(execution.pk, user=request.user, now=timezone.now())
    except cancelling.NotCancellable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Run #{execution.pk} of “{execution.task.name}” cancelled.")
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return redirect("scheduled_tasks:execution_detail", pk=pk)
