"""Form widgets and fields of the task form: wall-clock date-times in the task's zone and a
grouped time-zone picker."""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from functools import cache
from typing import Any

from django import forms
from django.conf import settings
from django.forms.fields import BaseTemporalField
from django.utils.dateparse import parse_datetime

from scheduled_tasks.validation import zone_names, zone_problem

DATETIME_LOCAL_MINUTES = "%Y-%m-%dT%H:%M"
DATETIME_LOCAL_SECONDS = "%Y-%m-%dT%H:%M:%S"


def next_whole_minute(moment: datetime) -> datetime:
    """``moment`` rounded up to a whole minute (a whole minute stays as it is)."""
    whole = moment.replace(second=0, microsecond=0)
    return whole if whole == moment else whole + timedelta(minutes=1)


def _has_seconds(value: Any) -> bool:
    return isinstance(value, datetime) and bool(value.second or value.microsecond)


class LocalDateTimeInput(forms.DateTimeInput):
    """A browser ``datetime-local`` picker."""

    input_type = "datetime-local"

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, datetime):
            return value.strftime(
                DATETIME_LOCAL_SECONDS if _has_seconds(value) else DATETIME_LOCAL_MINUTES
            )
        return super().format_value(value)

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        # The picker's default step is a minute; a stored time with seconds would then fail
        # the browser's own validation and block the submit.
        typed_seconds = isinstance(value, str) and value.count(":") > 1
        if _has_seconds(value) or typed_seconds:
            context["widget"]["attrs"]["step"] = "1"
        return context


class WallClockDateTimeField(forms.DateTimeField):
    """A date and time as typed, *not* read in the server's zone: the form resolves the naive
    value in the task's zone. A value with an explicit offset keeps that instant. Stored
    instants are shown in ``zone``."""

    widget = LocalDateTimeInput

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone: tzinfo | None = None

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
        try:
            result = parse_datetime(str(value).strip())
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if result is None:
            # The other accepted formats (DATETIME_INPUT_FORMATS), still without a zone.
            result = BaseTemporalField.to_python(self, value)
        return result

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None and self.zone is not None:
            return value.astimezone(self.zone).replace(tzinfo=None)
        return value

    def has_changed(self, initial: Any, data: Any) -> bool:
        return super().has_changed(self.prepare_value(initial), data)


@cache
def zone_choices() -> list[tuple[str, Any]]:
    """The IANA zones grouped by region, for a <select> with <optgroup>s."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(zone_names()):
        region = name.split("/", 1)[0] if "/" in name else "Other"
        groups.setdefault(region, []).append((name, name))
    return [(region, options) for region, options in sorted(groups.items())]


class TimeZoneField(forms.ChoiceField):
    """An IANA zone picked from a grouped list; empty means the server's ``TIME_ZONE``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "error_messages",
            {
                "invalid_choice": "Unknown time zone “%(value)s”. Pick an IANA zone such as "
                "Europe/Madrid from the list."
            },
        )
        super().__init__(choices=zone_choices, **kwargs)

    def valid_value(self, value: Any) -> bool:
        if not zone_names():  # no zone database: accept what zoneinfo can load
            return zone_problem(value) is None
        return super().valid_value(value)

    def clean(self, value: Any) -> str:
        cleaned = super().clean(value)
        return cleaned or settings.TIME_ZONE
