"""The task's JSON, one implementation: the API reads and writes tasks with
:class:`TaskSerializer`, and so does import/export (``scheduled_tasks.import_export``).

The declared fields describe the format for the OpenAPI schema; reading goes through
:func:`task_format.read_entry` (the web form's checks, every problem reported with its field
path) and writing through :func:`task_format.write_entry`, so the schema, the API, the files
and the form cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import serializers
from rest_framework.settings import api_settings

from scheduled_tasks import services
from scheduled_tasks.api import task_format
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.schedules import kinds
from scheduled_tasks.schedules.interval import Unit
from scheduled_tasks.schedules.kinds import json_type_name
from scheduled_tasks.validation import field_limits

# Keys of a task's JSON that the server keeps: shown, ignored on input.
READ_ONLY_KEYS = ("id", "next_run_at", "last_run_at", "last_status")
NAME_TAKEN = "a task with this name already exists"
_FIELD = ScheduledTask._meta.get_field
_DATETIME = serializers.DateTimeField()  # how the API writes a moment


def _help(name: str) -> str:
    return str(_FIELD(name).help_text)


def _int_field(name: str, *, nullable: bool = False) -> serializers.IntegerField:
    low, high = field_limits(name)
    return serializers.IntegerField(
        required=False, allow_null=nullable, min_value=low, max_value=high, help_text=_help(name)
    )


class FunctionSerializer(serializers.Serializer):
    """A registered function instead of code."""

    name = serializers.CharField(help_text="A registered function's name (see definitions/).")
    params = serializers.DictField(
        required=False, help_text="Its keyword arguments, checked against its signature."
    )


class ScheduleSerializer(serializers.Serializer):
    """When the task runs; each kind takes exactly its own keys."""

    kind = serializers.ChoiceField(
        choices=[k.value for k in kinds.registered()],
        required=False,
        help_text="interval (the default), cron or once.",
    )
    every = serializers.IntegerField(
        required=False, min_value=1, help_text="interval: how many units apart."
    )
    unit = serializers.ChoiceField(
        choices=[u.value for u in Unit], required=False, help_text="interval: the unit."
    )
    anchor = serializers.DateTimeField(
        required=False, help_text="interval: the first run; later runs fall on anchor + k * every."
    )
    cron = serializers.CharField(
        required=False, help_text="cron: a 5-field expression, read in the task's time zone."
    )
    at = serializers.DateTimeField(required=False, help_text="once: the moment of the one run.")


class TaskSerializer(serializers.Serializer):
    """A scheduled task in the import/export format (docs/import-export.md), plus the fields
    the scheduler keeps (read-only). Give ``code`` or ``function``, not both."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=task_format.NAME_MAX_LENGTH, help_text=_help("name"))
    description = serializers.CharField(
        required=False, allow_blank=True, help_text=_help("description")
    )
    code = serializers.CharField(required=False, help_text=_help("code"))
    function = FunctionSerializer(required=False)
    schedule = ScheduleSerializer()
    time_zone = serializers.CharField(required=False, help_text=_help("time_zone"))
    active = serializers.BooleanField(required=False, help_text=_help("is_active"))
    timeout_seconds = _int_field("timeout_seconds", nullable=True)
    catch_up = serializers.ChoiceField(
        choices=list(task_format.CATCH_UP_VALUES), required=False, help_text=_help("catch_up")
    )
    grace_seconds = _int_field("grace_seconds", nullable=True)
    max_instances = _int_field("max_instances")
    max_retries = _int_field("max_retries")
    retry_backoff_seconds = _int_field("retry_backoff_seconds")
    priority = _int_field("priority")
    next_run_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_run_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_status = serializers.CharField(
        read_only=True, help_text="Status of the latest run; empty when it never ran."
    )

    # --- writing -----------------------------------------------------------------------------

    def to_representation(self, instance: ScheduledTask) -> dict[str, Any]:
        return {
            "id": instance.pk,
            **task_format.write_entry(instance),
            "next_run_at": self._moment(instance.next_run_at),
            "last_run_at": self._moment(instance.last_run_at),
            "last_status": instance.last_status,
        }

    def _moment(self, value: datetime | None) -> str | None:
        return None if value is None else _DATETIME.to_representation(value)

    # --- reading -----------------------------------------------------------------------------

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        # Null or nothing is an entry like any other: to_internal_value says what it should be.
        return False, data

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError(
                {
                    api_settings.NON_FIELD_ERRORS_KEY: [
                        f"must be an object, not {json_type_name(data)}"
                    ]
                }
            )
        raw = {key: value for key, value in data.items() if key not in READ_ONLY_KEYS}
        if self.partial and self.instance is not None:
            raw = self._merged(raw)
        entry, problems = task_format.read_entry(raw, now=self._now())
        if problems:
            raise serializers.ValidationError(nest(problems))
        assert entry is not None
        if not self.context.get("match_by_name") and self._name_taken(entry.name):
            raise serializers.ValidationError({"name": [NAME_TAKEN]})
        return {"entry": entry}

    def _merged(self, changes: dict[str, Any]) -> dict[str, Any]:
        """A partial update: the stored task's entry with the given keys replaced (a new
        ``schedule`` object replaces the whole schedule; ``code`` replaces ``function``)."""
        current = task_format.write_entry(self.instance)
        if "code" in changes:
            current.pop("function", None)
        if "function" in changes:
            current.pop("code", None)
        return {**current, **changes}

    def _now(self) -> datetime:
        return self.context.get("now") or timezone.now()

    def _name_taken(self, name: str) -> bool:
        others = ScheduledTask.objects.filter(name=name)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        return others.exists()

    # --- saving ------------------------------------------------------------------------------

    def create(self, validated_data: dict[str, Any]) -> ScheduledTask:
        entry: task_format.TaskEntry = validated_data["entry"]
        return self._save(ScheduledTask(name=entry.name), validated_data)

    def update(self, instance: ScheduledTask, validated_data: dict[str, Any]) -> ScheduledTask:
        instance.name = validated_data["entry"].name
        return self._save(instance, validated_data)

    def _save(self, task: ScheduledTask, validated_data: dict[str, Any]) -> ScheduledTask:
        now = self._now()
        task_format.apply_entry(task, validated_data["entry"], now)
        try:
            with transaction.atomic():
                return services.save_task(task, now=now, user=validated_data.get("user"))
        except services.TaskWriteError as exc:
            raise serializers.ValidationError({"schedule": [str(exc)]}) from None
        except IntegrityError:  # another request took the name meanwhile
            raise serializers.ValidationError({"name": [NAME_TAKEN]}) from None


def nest(problems: list[task_format.Problem]) -> dict[str, Any]:
    """``[("schedule.unit", msg)]`` as DRF errors ``{"schedule": {"unit": [msg]}}``; a problem
    of the whole entry goes under ``non_field_errors``, as does one of an object that also
    has problems inside."""
    tree: dict[str, Any] = {}
    for path, message in problems:
        parts = [part for part in path.split(".") if part] or [api_settings.NON_FIELD_ERRORS_KEY]
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if isinstance(child, list):  # messages of the object itself come first
                child = node[part] = {api_settings.NON_FIELD_ERRORS_KEY: child}
            node = child
        leaf = node.setdefault(parts[-1], [])
        if isinstance(leaf, dict):
            leaf = leaf.setdefault(api_settings.NON_FIELD_ERRORS_KEY, [])
        leaf.append(message)
    return tree


def flatten(errors: object, prefix: str = "") -> list[task_format.Problem]:
    """DRF errors back to ``(field path, message)`` pairs, in their order."""
    if isinstance(errors, Mapping):
        found: list[task_format.Problem] = []
        for key, value in errors.items():
            own = key == api_settings.NON_FIELD_ERRORS_KEY
            path = prefix if own else (f"{prefix}.{key}" if prefix else str(key))
            found.extend(flatten(value, path))
        return found
    if isinstance(errors, list):
        return [pair for item in errors for pair in flatten(item, prefix)]
    return [(prefix, str(errors))]
