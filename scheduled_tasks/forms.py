"""The task form shared by the web pages and the admin: every check a task must pass to be saved.

Dates and times on the form are wall-clock times in the task's own time zone (the one picked on
the form), not in the server's: "run at 09:00" means 09:00 in Europe/Madrid for a Madrid task.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from typing import Any

from django import forms
from django.conf import settings
from django.utils.text import capfirst

from scheduled_tasks import conf, registry, schedules
from scheduled_tasks.form_fields import (
    TimeZoneField,
    WallClockDateTimeField,
    next_whole_minute,
)
from scheduled_tasks.models import RUN_SETTINGS, ScheduledTask
from scheduled_tasks.schedules import kinds
from scheduled_tasks.schedules.kinds import CRON_EXAMPLE, sentence
from scheduled_tasks.validation import code_problems, field_limits, json_problem, zone_problem

RUNS_CODE = "code"
RUNS_FUNCTION = "function"
RUN_CHOICES = [(RUNS_CODE, "Python code"), (RUNS_FUNCTION, "A registered function")]

# Every kind's fields (the table of kinds says which kind reads which); on save, those of the
# other kinds are ignored.
ALL_SCHEDULE_FIELDS = kinds.model_fields()


def _bounded_int(name: str, what: str, *, required: bool = False) -> forms.IntegerField:
    low, high = field_limits(name)
    model_field = ScheduledTask._meta.get_field(name)
    message = f"{what} must be a whole number from {low:,} to {high:,}."
    return forms.IntegerField(
        label=capfirst(str(model_field.verbose_name)),
        required=required,
        initial=model_field.get_default(),
        min_value=low,
        max_value=high,
        help_text=model_field.help_text,
        error_messages={"min_value": message, "max_value": message, "invalid": message},
        widget=forms.NumberInput(attrs={"min": low, "max": high}),
    )


def _model_help(name: str) -> str:
    return str(ScheduledTask._meta.get_field(name).help_text)


def _model_label(name: str) -> str:
    return capfirst(str(ScheduledTask._meta.get_field(name).verbose_name))


_every_field = ScheduledTask._meta.get_field("every")
_catch_up_field = ScheduledTask._meta.get_field("catch_up")

# Advanced settings an empty input resets to the model's default.
DEFAULTED_FIELDS = ("catch_up", "max_instances", "max_retries", "retry_backoff_seconds", "priority")


# --- the schedule part, shared by the task form and the live preview ----------------------------


class ScheduleForm(forms.Form):
    """The schedule fields: kind, interval, cron, one-off and zone.

    Only the fields of the chosen kind are checked: a half-typed cron expression left in the
    hidden cron field does not block saving an interval task.
    """

    # Callable choices: read from the table when the form is used, so every kind is offered.
    schedule_kind = forms.ChoiceField(
        label="Schedule",
        choices=kinds.choices,
        required=False,
        initial=kinds.default().value,
        widget=forms.RadioSelect,
        help_text=_model_help("schedule_kind"),
    )
    every = forms.IntegerField(
        label=capfirst(str(_every_field.verbose_name)),
        min_value=1,
        max_value=schedules.MAX_EVERY,
        required=False,
        initial=_every_field.default,
        help_text=_every_field.help_text,
        error_messages={
            "min_value": "The frequency must be at least %(limit_value)s.",
            "max_value": "The frequency must be at most %(limit_value)s.",
            "invalid": "The frequency must be a whole number, such as 1, 5 or 30.",
        },
    )
    unit = forms.ChoiceField(
        label=_model_label("unit"),
        choices=schedules.UNIT_CHOICES,
        required=False,
        initial=schedules.Unit.HOURS.value,
        help_text="Minutes and hours count real elapsed time; days, weeks and months keep the "
        "start time's wall-clock time in the task's time zone.",
    )
    anchor = WallClockDateTimeField(
        label=_model_label("anchor"), required=False, help_text=_model_help("anchor")
    )
    cron_expression = forms.CharField(
        label=_model_label("cron_expression"),
        required=False,
        max_length=120,
        help_text=_model_help("cron_expression"),
        widget=forms.TextInput(
            attrs={
                "class": "mono",
                "placeholder": CRON_EXAMPLE,
                "spellcheck": "false",
                "autocapitalize": "off",
                "autocomplete": "off",
            }
        ),
    )
    run_at = WallClockDateTimeField(
        label=_model_label("run_at"), required=False, help_text=_model_help("run_at")
    )
    time_zone = TimeZoneField(
        label=_model_label("time_zone"), required=False, help_text=_model_help("time_zone")
    )

    # The moment the page was asked for (set by the task form): a one-off must be after it.
    now: datetime | None = None

    def _ignore(self, names: Iterable[str]) -> None:
        for name in names:
            self._errors.pop(name, None)
            self.cleaned_data.pop(name, None)

    def has_error(self, name: str) -> bool:
        return name in self._errors

    def missing(self, name: str, message: str) -> None:
        """A "required" error on ``name``, unless it has an error already."""
        if name not in self._errors:
            self.add_error(name, forms.ValidationError(message, code="required"))

    def resolve(self, name: str, value: datetime, zone: tzinfo | None) -> datetime | None:
        """A typed wall-clock time as an instant in ``zone`` (UTC), or None with an error."""
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        if zone is None:  # the zone itself is wrong; that error is shown already
            return None
        if schedules.is_imaginary(value, zone):
            self.add_error(
                name,
                f"{value:%Y-%m-%d %H:%M} does not exist in {schedules.zone_name(zone)}: the "
                "clocks skip that time when daylight-saving time starts. Pick another time.",
            )
            return None
        return schedules.resolve_wall_time(value, zone)

    def clean_schedule(self) -> schedules.Schedule | None:
        """Check the schedule fields of the chosen kind; the schedule, or None with errors."""
        cleaned = self.cleaned_data
        # An unknown value already has its error from the choice field.
        kind = kinds.get(cleaned.get("schedule_kind") or kinds.default().value)
        cleaned["schedule_kind"] = kind.value
        zone_name = cleaned.get("time_zone")
        zone = schedules.parse_zone(zone_name) if zone_name else None
        self._ignore(name for name in kinds.model_fields() if name not in kind.form_fields)
        return kind.clean_form(self, zone)


# --- the task form -------------------------------------------------------------------------------


class ScheduledTaskForm(ScheduleForm, forms.ModelForm):  # type: ignore[misc]
    runs = forms.ChoiceField(
        label="What to run",
        choices=RUN_CHOICES,
        required=False,
        widget=forms.RadioSelect,
        help_text="A Python snippet run in the sandbox, or a registered function with JSON "
        "parameters.",
    )
    function_name = forms.ChoiceField(
        label=_model_label("function_name"),
        required=False,
        help_text="Functions are registered by developers in code; pick one from the list.",
        error_messages={
            "invalid_choice": "“%(value)s” is not a registered function; pick one from the list."
        },
    )
    function_params = forms.CharField(
        label=_model_label("function_params"),
        required=False,
        strip=False,
        help_text='Keyword arguments as a JSON object, such as {"days": 30}; empty means {}.',
        widget=forms.Textarea(
            attrs={"rows": 5, "class": "json-input", "spellcheck": "false", "autocomplete": "off"}
        ),
    )
    catch_up = forms.ChoiceField(
        label=capfirst(str(_catch_up_field.verbose_name)),
        choices=_catch_up_field.choices,
        required=False,
        initial=_catch_up_field.default,
        help_text=_catch_up_field.help_text,
    )
    timeout_seconds = _bounded_int("timeout_seconds", "The timeout")
    grace_seconds = _bounded_int("grace_seconds", "The grace period")
    max_instances = _bounded_int("max_instances", "The number of parallel runs")
    max_retries = _bounded_int("max_retries", "Retries")
    retry_backoff_seconds = _bounded_int("retry_backoff_seconds", "The retry backoff")
    priority = _bounded_int("priority", "The priority")

    class Meta:
        model = ScheduledTask
        fields = [
            "name",
            "description",
            "code",
            "function_name",
            "function_params",
            "schedule_kind",
            *ALL_SCHEDULE_FIELDS,
            "time_zone",
            "is_active",
            *RUN_SETTINGS,
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
        # The moment the page was asked for, read by the view: a one-off must be after it.
        self.now = now
        task = self.instance
        initial = kwargs.get("initial") or {}
        zone_name = task.time_zone or settings.TIME_ZONE
        if zone_problem(zone_name) and not self.is_bound:
            # A stored zone this machine does not know (renamed, or an older zone database)
            # shows the server's zone selected, not the first of the list; saving stores it.
            self.initial["time_zone"] = zone_name = settings.TIME_ZONE
            self.fields["time_zone"].help_text += (
                f" The stored zone “{task.time_zone}” is unknown here; the server's zone is "
                "selected instead."
            )
        self.initial.setdefault("time_zone", zone_name)
        zone = None if zone_problem(zone_name) else schedules.parse_zone(zone_name)
        for name in ("anchor", "run_at"):
            self.fields[name].zone = zone  # type: ignore[attr-defined]
            self.fields[name].help_text += " Wall-clock time in the task's time zone."

        if task.pk is None:
            # The model default (the moment the instance was built, with microseconds) is a
            # poor suggestion; the next whole minute is what a person would type.
            for name in ("anchor", "run_at"):
                if name in initial:
                    continue
                if now is not None:
                    self.initial[name] = next_whole_minute(now)
                else:
                    self.initial.pop(name, None)

        self.initial.setdefault("runs", RUNS_FUNCTION if task.function_name else RUNS_CODE)
        if "function_params" not in initial:
            params = task.function_params
            self.initial["function_params"] = (
                json.dumps(params, indent=2, ensure_ascii=False) if params else ""
            )
        self.fields["function_name"].choices = self._function_choices(task.function_name)

        # Stripping would shift every line number the sandbox reports against the textarea.
        self.fields["code"].strip = False  # type: ignore[attr-defined]
        limit = conf.get("MAX_CODE_BYTES")
        self.fields[
            "code"
        ].help_text = f"{_model_help('code')} Up to {limit:,} bytes; checked when you save."

        default_timeout = conf.get("DEFAULT_TIMEOUT_SECONDS")
        timeout = self.fields["timeout_seconds"]
        timeout.help_text = (
            f"Wall-clock limit of one run, in seconds; empty uses the default ({default_timeout})."
        )
        timeout.widget.attrs["placeholder"] = str(default_timeout)
        self.fields["grace_seconds"].widget.attrs["placeholder"] = "no limit"

    @staticmethod
    def _function_choices(current: str) -> list[tuple[str, str]]:
        choices = [("", "Choose a function…")]
        choices += [(f.name, f.signature_text()) for f in registry.all_functions()]
        if current and all(current != value for value, _ in choices):
            # Shown so the page says what the task runs; refused if saved like this.
            choices.append((current, f"{current} (no longer registered)"))
        return choices

    def clean_code(self) -> str:
        code = self.cleaned_data.get("code") or ""
        # Browsers send CRLF; store what the sandbox compiles so line numbers agree.
        return code.replace("\r\n", "\n").replace("\r", "\n")

    def clean_function_name(self) -> str:
        name = self.cleaned_data.get("function_name") or ""
        if name:
            try:
                registry.get(name)
            except registry.UnknownFunction:
                raise forms.ValidationError(
                    f"“{name}” is not a registered function; pick one from the list.",
                    code="unknown_function",
                ) from None
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        schedule = self.clean_schedule()
        kind = kinds.get(cleaned["schedule_kind"])
        if schedule is not None and self.now is not None and cleaned.get("is_active"):
            problem = kind.active_problem(schedule, self.now)
            if problem is not None:
                self.add_error(*problem)
        # What the kind does not use is cleared, so a task holds exactly one schedule.
        for name, value in kinds.cleared_for(kind).items():
            if name not in self._errors:
                cleaned[name] = value
        self._clean_what_to_run()
        for name in DEFAULTED_FIELDS:
            if name not in self._errors and cleaned.get(name) in (None, ""):
                cleaned[name] = ScheduledTask._meta.get_field(name).get_default()
        return cleaned

    def _clean_what_to_run(self) -> None:
        """Exactly one of code and function: the one chosen is checked, the other cleared."""
        cleaned = self.cleaned_data
        runs = cleaned.get("runs")
        if not runs:
            # A client that sends no choice: whatever it filled in, but not both.
            has_function = bool(self.data.get(self.add_prefix("function_name")))
            has_code = bool((cleaned.get("code") or "").strip())
            if has_function and has_code:
                self.add_error(None, "Give either code or a registered function to run, not both.")
                return
            runs = RUNS_FUNCTION if has_function else RUNS_CODE
        cleaned["runs"] = runs

        if runs == RUNS_CODE:
            self._ignore(("function_name", "function_params"))
            cleaned["function_name"] = ""
            cleaned["function_params"] = {}
            if "code" in self._errors:
                return
            code = cleaned.get("code") or ""
            if not code:
                self.missing("code", str(self.fields["code"].error_messages["required"]))
                return
            problems = code_problems(code)
            if problems:
                self.add_error(
                    "code", [forms.ValidationError(problem, code="code") for problem in problems]
                )
            return

        self._ignore(("code",))
        cleaned["code"] = ""
        name = cleaned.get("function_name")
        if "function_name" in self._errors:
            self._errors.pop("function_params", None)
            cleaned.pop("function_params", None)
            return
        if not name:
            self.missing("function_name", "Choose the registered function to run.")
            return
        params, problem = json_problem(cleaned.get("function_params") or "")
        if problem:
            self.add_error("function_params", problem)
            return
        problems = registry.param_problems(name, params)
        if problems:
            self.add_error("function_params", [sentence(p) for p in problems])
            return
        cleaned["function_params"] = params


class SchedulePreviewForm(ScheduleForm):
    """Just the schedule fields, for the live preview on the task form."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self.built = self.clean_schedule()
        return cleaned

    def schedule(self) -> schedules.Schedule | None:
        return getattr(self, "built", None)

    def zone(self) -> tzinfo:
        return schedules.parse_zone(self.cleaned_data.get("time_zone") or settings.TIME_ZONE)
