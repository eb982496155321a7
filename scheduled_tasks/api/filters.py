"""Query-string filters of the API's lists (django-filter: a bad value answers 400 naming it)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms

from scheduled_tasks.models import Alert, Execution, ScheduledTask
from scheduled_tasks.schedules import kinds

MAX_ID = 2**63 - 1  # the largest BigAutoField

NEVER_RUN = "never"


class IdFilter(django_filters.NumberFilter):
    """An object's id: a whole number the database can hold (a float or a 30-digit number is
    a 400, not an overflow deep in the driver)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class TaskFilter(django_filters.FilterSet):
    active = django_filters.BooleanFilter(field_name="is_active", help_text="true or false.")
    kind = django_filters.ChoiceFilter(
        field_name="schedule_kind",
        choices=[(k.value, k.label) for k in kinds.registered()],
        help_text="The kind of schedule.",
    )
    last_status = django_filters.ChoiceFilter(
        choices=[*Execution.Status.choices, (NEVER_RUN, "Never run")],
        method="filter_last_status",
        help_text='The status of the latest run; "never" for tasks that never ran.',
    )

    class Meta:
        model = ScheduledTask
        fields = ["active", "kind", "last_status"]

    def filter_last_status(self, queryset, name: str, value: str):
        if value == NEVER_RUN:
            return queryset.filter(last_execution__isnull=True)
        return queryset.filter(last_execution__status=value)


class ExecutionFilter(django_filters.FilterSet):
    task = IdFilter(field_name="task_id", help_text="A task's id.")
    status = django_filters.ChoiceFilter(choices=Execution.Status.choices)
    trigger = django_filters.ChoiceFilter(choices=Execution.Trigger.choices)
    since = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after (ISO 8601)."
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Created before (ISO 8601)."
    )

    class Meta:
        model = Execution
        fields = ["task", "status", "trigger", "since", "until"]


class AlertFilter(django_filters.FilterSet):
    task = IdFilter(field_name="task_id", help_text="A task's id.")
    status = django_filters.ChoiceFilter(choices=Alert.Status.choices)
    kind = django_filters.ChoiceFilter(choices=Alert.Kind.choices)

    class Meta:
        model = Alert
        fields = ["task", "status", "kind"]
