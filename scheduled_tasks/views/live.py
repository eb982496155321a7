"""What the pages poll while runs go on (issue #13): one small JSON answer per execution.

``scheduled_tasks/static/scheduled_tasks/live.js`` asks every 2 s while a run is pending or
running and updates the page in place; once the status changes it fetches the page itself and
swaps its content (no reload), and stops once the run has ended. Two queries: the execution,
its log lines after ``?after=<seq>``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from scheduled_tasks.models import Execution, ExecutionLogLine
from scheduled_tasks.queue_state import execution_queue_state
from scheduled_tasks.views.access import view_required

# The most log lines one answer carries; the page asks again for the rest.
MAX_LINES = 500
LIVE_STATUSES = frozenset({Execution.Status.PENDING, Execution.Status.RUNNING})


def _after(request: HttpRequest) -> int:
    try:
        return max(int(request.GET.get("after", "0")), 0)
    except ValueError:
        return 0


@never_cache
@view_required
@require_GET
def execution_live(request: HttpRequest, pk: int) -> JsonResponse:
    """The run's status, output so far, log lines after ``?after=<seq>``, duration so far and
    what it waits for."""
    execution = get_object_or_404(
        Execution.objects.only(
            "pk",
            "status",
            "output",
            "output_truncated",
            "started_at",
            "finished_at",
            "duration_seconds",
            "not_before",
            "runner",
            "created_at",
        ),
        pk=pk,
    )
    now = timezone.now()
    after = _after(request)
    lines = list(
        ExecutionLogLine.objects.filter(execution_id=execution.pk, seq__gt=after)
        .only("seq", "at", "level", "message")
        .order_by("seq")[:MAX_LINES]
    )
    duration = execution.duration_seconds
    if duration is None and execution.status == Execution.Status.RUNNING and execution.started_at:
        duration = max((now - execution.started_at).total_seconds(), 0.0)
    state = execution_queue_state(execution, now)
    body: dict[str, Any] = {
        "id": execution.pk,
        "status": execution.status,
        "status_label": execution.get_status_display(),
        "finished": execution.status not in LIVE_STATUSES,
        "output": execution.output,
        "output_truncated": execution.output_truncated,
        "duration": None if duration is None else round(duration, 3),
        "waiting": state.text if state is not None else "",
        # "queued" (starts as soon as a runner has a free slot) or "retry" (waits for its time).
        "waiting_kind": state.kind if state is not None else "",
        "log_lines": [
            {
                "seq": line.seq,
                "at": line.at.isoformat(),
                "time": timezone.localtime(line.at).strftime("%H:%M:%S.%f")[:12],
                "level": line.level_name,
                "message": line.message,
            }
            for line in lines
        ],
        "last_seq": lines[-1].seq if lines else after,
        "more_lines": len(lines) == MAX_LINES,
    }
    return JsonResponse(body)
