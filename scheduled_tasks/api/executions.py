"""The API's executions: the history of runs with their output, error and log lines; a light
status for polling; cancelling a pending or running run."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from scheduled_tasks import cancelling
from scheduled_tasks.api import permissions
from scheduled_tasks.api.filters import ExecutionFilter
from scheduled_tasks.api.schema import DetailSerializer
from scheduled_tasks.models import Execution, ExecutionLogLine
from scheduled_tasks.queue_state import execution_queue_state


class LogLineSerializer(serializers.ModelSerializer):
    level_name = serializers.CharField(read_only=True)

    class Meta:
        model = ExecutionLogLine
        fields = ["seq", "at", "level", "level_name", "message"]


class ExecutionStatusSerializer(serializers.ModelSerializer):
    """What a poller needs: where the run is, and whether it has ended."""

    finished = serializers.SerializerMethodField(help_text="Whether the run has ended.")
    waiting = serializers.SerializerMethodField(
        help_text='Why a pending run waits ("queued: waiting for a free slot", "retry at ..."),'
        " or null."
    )

    class Meta:
        model = Execution
        fields = [
            "id",
            "task",
            "status",
            "trigger",
            "finished",
            "waiting",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
        ]

    def get_finished(self, execution: Execution) -> bool:
        return execution.status in Execution.FINISHED_STATUSES

    def get_waiting(self, execution: Execution) -> str | None:
        state = execution_queue_state(execution, timezone.now())
        return None if state is None else state.text


class ExecutionListSerializer(ExecutionStatusSerializer):
    task_name = serializers.CharField(source="task.name", read_only=True)
    version = serializers.IntegerField(
        source="version.number",
        read_only=True,
        allow_null=True,
        help_text="The number of the task's code version the run ran (null: not known).",
    )
    cancelled_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta(ExecutionStatusSerializer.Meta):
        fields = [
            *ExecutionStatusSerializer.Meta.fields[:2],
            "task_name",
            *ExecutionStatusSerializer.Meta.fields[2:],
            "scheduled_for",
            "version",
            "attempt",
            "retry_of",
            "slots_covered",
            "slots_skipped",
            "runner",
            "cancelled_by",
        ]


class ExecutionSerializer(ExecutionListSerializer):
    """One run whole: its output, error (with the snippet's line) and log lines."""

    logs = LogLineSerializer(source="log_lines", many=True, read_only=True)

    class Meta(ExecutionListSerializer.Meta):
        fields = [
            *ExecutionListSerializer.Meta.fields,
            "output",
            "output_truncated",
            "error",
            "logs",
        ]


class ExecutionViewSet(
    permissions.IdLookup, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Runs of the tasks, newest first."""

    permission_classes = [permissions.SchedulerPermission]
    filterset_class = ExecutionFilter
    action_perms = {"cancel": permissions.RUN}

    def get_queryset(self) -> QuerySet[Execution]:
        executions = Execution.objects.select_related("task", "cancelled_by", "version").order_by(
            "-created_at", "-id"
        )
        if self.action == "list":
            return executions.defer("output", "error", "task__code", "task__description")
        if self.action == "retrieve":
            return executions.prefetch_related("log_lines")
        return executions

    def get_serializer_class(self) -> type[serializers.Serializer]:
        if self.action == "list":
            return ExecutionListSerializer
        if self.action in ("status", "cancel"):
            return ExecutionStatusSerializer
        return ExecutionSerializer

    @action(detail=True, methods=["get"])
    def status(self, request: Request, pk: str | None = None) -> Response:
        """Where the run is: cheap to poll after ``run_now``."""
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=None, responses={200: ExecutionSerializer, 409: DetailSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """End a pending or running run as ``cancelled`` (its sandbox process is killed);
        409 when it has already ended."""
        execution = self.get_object()
        try:
            execution = cancelling.cancel_execution(
                execution.pk, user=request.user, now=timezone.now()
            )
        except cancelling.NotCancellable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(ExecutionSerializer(execution, context=self.get_serializer_context()).data)
