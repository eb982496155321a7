"""Admin for the records kept beside tasks and runs: alerts (resolved by hand from here too),
the runners' heartbeats and the tasks' code versions. The scheduler and the task service write
them: nobody adds or edits them here."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from scheduled_tasks import alerts
from scheduled_tasks.models import Alert, RunnerHeartbeat, TaskVersion


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(_ReadOnly):
    list_display = ("opened_at", "kind", "status", "task", "message", "resolved_at", "resolved_by")
    list_filter = ("status", "kind")
    search_fields = ("message", "key", "task__name")
    date_hierarchy = "opened_at"
    list_select_related = ("task", "resolved_by")
    actions = ("resolve_selected",)

    @admin.action(description="Resolve the selected open alerts", permissions=["resolve"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        """Resolve by hand what is open; the rest is left as it is."""
        now = timezone.now()
        done = sum(
            alerts.resolve(alert, user=request.user, now=now)
            for alert in queryset.filter(status=Alert.Status.OPEN)
        )
        messages.success(request, f"{done} alert{'s' if done != 1 else ''} resolved.")

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        """Resolving an alert is changing it (the API asks for the same permission)."""
        return request.user.has_perm("scheduled_tasks.change_alert")


@admin.register(RunnerHeartbeat)
class RunnerHeartbeatAdmin(_ReadOnly):
    list_display = (
        "runner",
        "kind",
        "started_at",
        "last_seen_at",
        "concurrency",
        "running",
        "stopped_at",
    )
    list_filter = ("kind",)
    search_fields = ("runner",)


@admin.register(TaskVersion)
class TaskVersionAdmin(_ReadOnly):
    list_display = ("task", "number", "created_at", "created_by", "note")
    search_fields = ("task__name", "note")
    list_select_related = ("task", "created_by")
    readonly_fields = ("task", "number", "code", "function_name", "function_params", "note",
                       "created_at", "created_by")  # fmt: skip
