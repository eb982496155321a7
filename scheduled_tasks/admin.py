"""Admin for the scheduler: tasks are edited through the same form as the web pages; executions
are a read-only record."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from scheduled_tasks import services
from scheduled_tasks.choices import status_label
from scheduled_tasks.form_fields import next_whole_minute
from scheduled_tasks.forms import ScheduledTaskForm
from scheduled_tasks.models import RUN_SETTINGS, Execution, ExecutionLogLine, ScheduledTask
from scheduled_tasks.schedules import kinds

RECENT_EXECUTIONS = 10


class LastStatusFilter(admin.SimpleListFilter):
    title = "last status"
    parameter_name = "last_status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("never", "Never run"), *Execution.Status.choices]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[ScheduledTask]
    ) -> QuerySet[ScheduledTask]:
        value = self.value()
        if value == "never":
            return queryset.filter(last_execution__isnull=True)
        if value:
            return queryset.filter(last_execution__status=value)
        return queryset


@admin.register(ScheduledTask)
class ScheduledTaskAdmin(admin.ModelAdmin):
    form = ScheduledTaskForm
    list_display = [
        "name",
        "schedule_kind",
        "schedule_description",
        "priority",
        "is_active",
        "last_status_display",
        "next_run_at",
        "last_run_at",
    ]
    list_filter = ["is_active", "schedule_kind", "priority", LastStatusFilter]
    list_select_related = ["last_execution"]  # the last status of each row
    search_fields = ["name", "description"]
    ordering = ["name"]
    actions = ["activate_tasks", "deactivate_tasks"]
    readonly_fields = [
        "schedule_description",
        "next_run_at",
        "last_run_at",
        "last_status_display",
        "created_by",
        "created_at",
        "updated_by",
        "updated_at",
        "recent_executions",
    ]
    fieldsets = [
        (None, {"fields": ["name", "description", "is_active"]}),
        (
            "Schedule",
            {
                "fields": [
                    "schedule_kind",
                    "time_zone",
                    *kinds.model_fields(),  # each kind's columns, from the table of kinds
                    "schedule_description",
                    "next_run_at",
                ]
            },
        ),
        ("What to run", {"fields": ["runs", "code", "function_name", "function_params"]}),
        (
            "Advanced",
            {
                "classes": ["collapse"],
                "fields": list(RUN_SETTINGS),
            },
        ),
        (
            "History",
            {
                "fields": [
                    "last_status_display",
                    "last_run_at",
                    "recent_executions",
                    "created_by",
                    "created_at",
                    "updated_by",
                    "updated_at",
                ]
            },
        ),
    ]

    class Media:
        css = {"all": ["scheduled_tasks/admin.css"]}
        js = ["scheduled_tasks/admin.js"]

    @admin.display(description="schedule")
    def schedule_description(self, obj: ScheduledTask) -> str:
        if obj.pk is None:
            return "—"
        return obj.schedule_description

    @admin.display(description="last status", ordering="last_execution__status")
    def last_status_display(self, obj: ScheduledTask) -> str:
        return status_label(obj.last_status) or "never run"

    @admin.display(description="recent executions")
    def recent_executions(self, obj: ScheduledTask) -> SafeString | str:
        if obj.pk is None:
            return "—"
        executions = list(
            obj.executions.only("pk", "status", "trigger", "started_at", "duration_seconds")[
                :RECENT_EXECUTIONS
            ]
        )
        if not executions:
            return "No executions yet."
        rows = format_html_join(
            "",
            '<li><a href="{}">#{}</a> {} · {} · {}</li>',
            (
                (
                    reverse("admin:scheduled_tasks_execution_change", args=[e.pk]),
                    e.pk,
                    e.get_status_display(),
                    e.get_trigger_display(),
                    timezone.localtime(e.started_at).strftime("%Y-%m-%d %H:%M:%S")
                    if e.started_at
                    else "not started",
                )
                for e in executions
            ),
        )
        all_url = (
            reverse("admin:scheduled_tasks_execution_changelist") + f"?task__id__exact={obj.pk}"
        )
        return format_html(
            '<ul style="margin:0;padding-left:1.2em">{}</ul><p><a href="{}">All executions of '
            "this task</a></p>",
            rows,
            all_url,
        )

    def view_on_site(self, obj: ScheduledTask) -> str:
        return reverse("scheduled_tasks:task_detail", args=[obj.pk])

    def get_form(
        self,
        request: HttpRequest,
        obj: ScheduledTask | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[ScheduledTaskForm]:
        form = super().get_form(request, obj, change, **kwargs)
        # The form checks one-off times against "now"; the clock is read here, per request.
        now = timezone.now()

        class AdminTaskForm(form):  # type: ignore[valid-type, misc]
            def __init__(self, *args: Any, **inner: Any) -> None:
                inner.setdefault("now", now)
                super().__init__(*args, **inner)

            def _post_clean(self) -> None:
                super()._post_clean()
                # What the service would refuse on save, said on the form instead (an error
                # raised in save_model cannot be shown). The instance holds the input by now.
                if not self.errors:
                    try:
                        services.next_run_for(self.instance, now)
                    except services.TaskWriteError as exc:
                        self.add_error(None, str(exc))

        AdminTaskForm.__name__ = form.__name__
        return AdminTaskForm

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        suggestion = next_whole_minute(timezone.now())
        initial.setdefault("anchor", suggestion)
        initial.setdefault("run_at", suggestion)
        return initial

    def save_model(self, request: HttpRequest, obj: ScheduledTask, form: Any, change: bool) -> None:
        """Save through the task service (the form has checked what it would refuse)."""
        services.save_task(obj, now=timezone.now(), user=request.user)

    def delete_model(self, request: HttpRequest, obj: ScheduledTask) -> None:
        """Delete through the task service."""
        services.delete_task(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ScheduledTask]) -> None:
        """The bulk "delete selected" action, through the task service."""
        services.delete_tasks(queryset)

    def _set_active(
        self, request: HttpRequest, queryset: QuerySet[ScheduledTask], active: bool
    ) -> None:
        result = services.set_active_many(
            queryset.filter(is_active=not active), active, now=timezone.now(), user=request.user
        )
        for refusal in result.refused:
            self.message_user(request, str(refusal), messages.ERROR)
        count = len(result.changed)
        verb = "Activated" if active else "Deactivated"
        level = messages.SUCCESS if count or not result.refused else messages.WARNING
        self.message_user(request, f"{verb} {count} task{'s' if count != 1 else ''}.", level)

    @admin.action(description="Activate selected tasks", permissions=["change"])
    def activate_tasks(self, request: HttpRequest, queryset: QuerySet[ScheduledTask]) -> None:
        """Activate each task as its page would; a task that cannot run is refused by name."""
        self._set_active(request, queryset, True)

    @admin.action(description="Deactivate selected tasks", permissions=["change"])
    def deactivate_tasks(self, request: HttpRequest, queryset: QuerySet[ScheduledTask]) -> None:
        """Deactivate the selected tasks."""
        self._set_active(request, queryset, False)


class LogLineInline(admin.TabularInline):
    """A run's log lines, read-only under the execution."""

    model = ExecutionLogLine
    fields = ["seq", "at", "level_name", "message"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    @admin.display(description="level")
    def level_name(self, obj: ExecutionLogLine) -> str:
        """The level's name (INFO, WARNING, ...)."""
        return obj.level_name

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Whoever may see the execution sees its lines."""
        return request.user.has_perm("scheduled_tasks.view_execution")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    inlines = [LogLineInline]
    list_display = [
        "__str__",
        "task",
        "status",
        "trigger",
        "attempt",
        "scheduled_for",
        "started_at",
        "duration_seconds",
        "output_truncated",
    ]
    list_display_links = ["__str__"]
    list_filter = ["status", "trigger", "output_truncated"]
    list_select_related = ["task"]
    raw_id_fields = ["retry_of"]
    search_fields = ["task__name", "runner"]
    date_hierarchy = "created_at"
    fields = [
        "task",
        "status",
        "trigger",
        "scheduled_for",
        "slots_covered",
        "slots_skipped",
        "attempt",
        "retry_of",
        "not_before",
        "created_at",
        "started_at",
        "finished_at",
        "duration_seconds",
        "lease_expires_at",
        "runner",
        "output_truncated",
        "output",
        "error",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # Executions are a record of what happened: nobody edits one. Deleting stays possible
    # (with the permission) so that deleting a task, which cascades, still works here.
    def has_change_permission(self, request: HttpRequest, obj: Execution | None = None) -> bool:
        return False

    def view_on_site(self, obj: Execution) -> str:
        return reverse("scheduled_tasks:execution_detail", args=[obj.pk])


# Alerts, heartbeats and code versions have their own admin module; importing it registers them.
from scheduled_tasks import admin_records  # noqa: E402, F401
