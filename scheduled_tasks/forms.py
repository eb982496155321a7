"""The task form shared by the web pages and the admin: every check a task must pass to be saved."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from scheduled_tasks import conf, schedules
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.validation import code_problems

DATETIME_LOCAL_MINUTES = "%Y-%m-%dT%H:%M"
DATETIME_LOCAL_SECONDS = "%Y-%m-%dT%H:%M:%S"


def next_whole_minute(moment: datetime) -> datetime:
    """``moment`` rounded up to a whole minute (a whole minute stays as it is)."""
    whole = moment.replace(second=0, microsecond=0)
    return whole if whole == moment else whole + timedelta(minutes=1)


def _has_seconds(value: Any) -> bool:
    return isinstance(value, datetime) and bool(value.second or value.microsecond)


class LocalDateTimeInput(forms.DateTimeInput):
    """A browser ``datetime-local`` picker; the form reads it in the current time zone."""

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


_anchor_field = ScheduledTask._meta.get_field("anchor")
_every_field = ScheduledTask._meta.get_field("every")


class ScheduledTaskForm(forms.ModelForm):
    # Declared so that "0" and "-3" get the same message ("at least 1"), and so that the admin
    # keeps these widgets instead of its own.
    every = forms.IntegerField(
        label=str(_every_field.verbose_name).capitalize(),
        min_value=1,
        max_value=schedules.MAX_EVERY,
        initial=_every_field.default,
        help_text=_every_field.help_text,
        error_messages={
            "min_value": "The frequency must be at least %(limit_value)s.",
            "max_value": "The frequency must be at most %(limit_value)s.",
            "invalid": "The frequency must be a whole number, such as 1, 5 or 30.",
        },
    )
    anchor = forms.DateTimeField(
        label=str(_anchor_field.verbose_name).capitalize(),
        widget=LocalDateTimeInput(),
        help_text=_anchor_field.help_text,
    )

    class Meta:
        model = ScheduledTask
        fields = [
            "name",
            "description",
            "code",
            "every",
            "unit",
            "anchor",
            "is_active",
            "timeout_seconds",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "code": forms.Textarea(
                attrs={
                    "rows": 18,
                    "class": "code-input",
                    "spellcheck": "false",
                    "autocapitalize": "off",
                    "autocomplete": "off",
                    "wrap": "off",
                }
            ),
        }

    def __init__(self, *args: Any, now: datetime | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and "anchor" not in (kwargs.get("initial") or {}):
            # The model default (the moment the instance was built, with microseconds) is a
            # poor suggestion; the next whole minute is what a person would type.
            if now is not None:
                self.initial["anchor"] = next_whole_minute(now)
            else:
                self.initial.pop("anchor", None)

        zone = timezone.get_current_timezone_name()
        anchor = self.fields["anchor"]
        anchor.help_text = f"{anchor.help_text} Entered in {zone} time."

        # Stripping would shift every line number the sandbox reports against the textarea.
        self.fields["code"].strip = False
        limit = conf.get("MAX_CODE_BYTES")
        self.fields[
            "code"
        ].help_text = (
            f"{self.fields['code'].help_text} Up to {limit:,} bytes; checked when you save."
        )

        default_timeout = conf.get("DEFAULT_TIMEOUT_SECONDS")
        timeout = self.fields["timeout_seconds"]
        timeout.help_text = (
            f"Wall-clock limit of one run, in seconds; empty uses the default ({default_timeout})."
        )
        timeout.widget.attrs.update(
            {"min": 1, "max": 24 * 3600, "placeholder": str(default_timeout)}
        )

    def clean_code(self) -> str:
        code = self.cleaned_data.get("code") or ""
        # Browsers send CRLF; store what the sandbox compiles so line numbers agree.
        code = code.replace("\r\n", "\n").replace("\r", "\n")
        problems = code_problems(code)
        if problems:
            raise forms.ValidationError(
                [forms.ValidationError(problem, code="code") for problem in problems]
            )
        return code

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        every, unit, anchor = (cleaned.get(k) for k in ("every", "unit", "anchor"))
        limit = schedules.MAX_EVERY_BY_UNIT.get(unit) if unit else None
        if every is not None and limit is not None and every > limit:
            # Said next to the field: "every" alone is fine, it is too large for this unit.
            self.add_error("every", f"The frequency must be at most {limit:,} for {unit}.")
        elif every is not None and unit and anchor is not None:
            try:
                schedules.IntervalSchedule.build(
                    every, unit, anchor, timezone.get_default_timezone()
                )
            except schedules.ScheduleError as exc:
                self.add_error(None, f"The schedule is invalid: {exc}.")
        return cleaned


class SchedulePreviewForm(forms.Form):
    """Just the schedule fields, for the live preview on the task form."""

    every = forms.IntegerField(label="Every", min_value=1, max_value=schedules.MAX_EVERY)
    unit = forms.ChoiceField(label="Unit", choices=schedules.UNIT_CHOICES)
    anchor = forms.DateTimeField(label="Start time")

    def schedule(self) -> schedules.IntervalSchedule:
        data = self.cleaned_data
        return schedules.IntervalSchedule.build(
            data["every"], data["unit"], data["anchor"], timezone.get_default_timezone()
        )


# What a save after editing writes: the edited fields and what follows from them. Leaving out
# the runner's columns (last_status, last_run_at) keeps a run that finishes while the form is
# open from being overwritten with stale values.
EDITED_FIELDS: list[str] = [
    *ScheduledTaskForm.Meta.fields,
    "next_run_at",
    "updated_by",
    "updated_at",
]
