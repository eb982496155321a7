"""The API's statistics: an overview of tasks and runs, and per-task performance."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from scheduled_tasks import statistics
from scheduled_tasks.api import permissions
from scheduled_tasks.api.params import bounded_int

_BOUNDS = {"days": (1, 365, 30), "limit": (1, 100, 10)}


class StatisticsViewSet(viewsets.ViewSet):
    """Figures over the recorded runs (the history kept: ``CLEANUP_DAYS``)."""

    permission_classes = [permissions.SchedulerPermission]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def overview(self, request: Request) -> Response:
        """Task counts, runs by status for the last 24 h / 7 d / 30 d with success rates, and
        runs per day."""
        return Response(statistics.overview(timezone.now()))

    @extend_schema(
        parameters=[
            OpenApiParameter("days", int, description="The window in days (1-365, default 30)."),
            OpenApiParameter("limit", int, description="How many slowest tasks (1-100, 10)."),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=False, methods=["get"])
    def performance(self, request: Request) -> Response:
        """Per task: runs, p50 / p95 / max duration, failure rate; the slowest tasks."""
        values, errors = {}, {}
        for name, (low, high, default) in _BOUNDS.items():
            value = bounded_int(request.query_params.get(name), low, high, default)
            if value is None:
                errors[name] = [f"must be a whole number from {low} to {high}"]
            else:
                values[name] = value
        if errors:
            return Response(errors, status=status.HTTP_400_BAD_REQUEST)
        return Response(statistics.performance(timezone.now(), **values))
