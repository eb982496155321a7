"""The API's alerts: list and read them, resolve one by hand, and a summary."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from scheduled_tasks.alerts import service
from scheduled_tasks.api import permissions
from scheduled_tasks.api.filters import AlertFilter
from scheduled_tasks.api.schema import DetailSerializer
from scheduled_tasks.models import Alert


class AlertSerializer(serializers.ModelSerializer):
    task_name = serializers.CharField(source="task.name", read_only=True, allow_null=True)
    resolved_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "kind",
            "status",
            "key",
            "task",
            "task_name",
            "execution",
            "message",
            "details",
            "opened_at",
            "resolved_at",
            "resolved_by",
            "resolution",
        ]


class AlertViewSet(
    permissions.IdLookup, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Alerts, newest first: a condition someone should hear about, open until it clears or
    someone resolves it."""

    serializer_class = AlertSerializer
    permission_classes = [permissions.SchedulerPermission]
    filterset_class = AlertFilter
    action_perms = {"resolve": permissions.RESOLVE_ALERT}

    def get_queryset(self) -> QuerySet[Alert]:
        return Alert.objects.select_related("task", "resolved_by").order_by("-opened_at", "-id")

    @extend_schema(request=None, responses={200: AlertSerializer, 409: DetailSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        """Resolve an open alert by hand (it opens again if its condition comes back); 409
        when it is already resolved."""
        alert = self.get_object()
        if not service.resolve(alert, user=request.user, now=timezone.now()):
            return Response(
                {"detail": "The alert is already resolved."}, status=status.HTTP_409_CONFLICT
            )
        alert.refresh_from_db()
        return Response(self.get_serializer(alert).data)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def summary(self, request: Request) -> Response:
        """Open alerts by kind, and counts by status."""
        return Response(service.summary())
