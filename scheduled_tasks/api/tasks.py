"""The API's tasks: the task JSON (one serializer, shared with import/export), toggling,
queueing a run now and previewing the schedule. Each action parses, calls one domain
function, and formats."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import filters, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from scheduled_tasks import background, schedules, services
from scheduled_tasks.api import permissions
from scheduled_tasks.api.executions import ExecutionStatusSerializer
from scheduled_tasks.api.filters import TaskFilter
from scheduled_tasks.api.params import bounded_int
from scheduled_tasks.api.serializers import TaskSerializer
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.views.tasks import upcoming_runs

MAX_PREVIEW = 100

PreviewSerializer = inline_serializer(
    "SchedulePreview",
    {
        "description": serializers.CharField(),
        "time_zone": serializers.CharField(),
        "runs": serializers.ListField(child=serializers.DateTimeField()),
    },
)


class TaskViewSet(permissions.IdLookup, viewsets.ModelViewSet):
    """Scheduled tasks in the import/export format (docs/import-export.md)."""

    serializer_class = TaskSerializer
    permission_classes = [permissions.SchedulerPermission]
    filterset_class = TaskFilter
    filter_backends = [*viewsets.ModelViewSet.filter_backends, filters.SearchFilter]
    search_fields = ["name", "description"]
    action_perms = {
        "toggle_status": permissions.CHANGE,
        "run_now": permissions.RUN,
        "preview": permissions.VIEW,
    }

    def get_queryset(self) -> QuerySet[ScheduledTask]:
        return ScheduledTask.objects.select_related("last_execution").order_by("name", "pk")

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": timezone.now()}

    def perform_create(self, serializer: TaskSerializer) -> None:
        serializer.save(user=self.request.user)

    def perform_update(self, serializer: TaskSerializer) -> None:
        serializer.save(user=self.request.user)

    def perform_destroy(self, instance: ScheduledTask) -> None:
        services.delete_task(instance)

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"])
    def toggle_status(self, request: Request, pk: str | None = None) -> Response:
        """Activate an inactive task (its next run goes on the grid from now) or pause an
        active one; 400 when a task whose schedule has ended cannot be activated."""
        task = self.get_object()
        try:
            services.set_active(task, not task.is_active, now=timezone.now(), user=request.user)
        except services.TaskWriteError as exc:
            return Response({"active": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(self.get_serializer(task).data)

    @extend_schema(request=None, responses={202: ExecutionStatusSerializer})
    @action(detail=True, methods=["post"])
    def run_now(self, request: Request, pk: str | None = None) -> Response:
        """Queue a run now: answers 202 at once with the new execution; a runner starts it
        when a slot is free (poll ``executions/{id}/status/``)."""
        execution, _ = background.queue_run(self.get_object(), timezone.now())
        return Response(ExecutionStatusSerializer(execution).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[
            OpenApiParameter("count", int, description=f"How many runs (1-{MAX_PREVIEW}).")
        ],
        responses=PreviewSerializer,
    )
    @action(detail=True, methods=["get"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """The schedule in words and its next runs from now."""
        task = self.get_object()
        count = bounded_int(request.query_params.get("count"), 1, MAX_PREVIEW, 10)
        if count is None:
            return Response(
                {"count": [f"must be a whole number from 1 to {MAX_PREVIEW}"]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            schedule = task.schedule
        except schedules.ScheduleError as exc:
            return Response({"schedule": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        runs = upcoming_runs(schedule, timezone.now(), count)
        field = serializers.DateTimeField()
        return Response(
            {
                "description": schedules.describe(schedule),
                "time_zone": schedules.zone_name(schedule.tz),
                "runs": [field.to_representation(run) for run in runs],
            }
        )
