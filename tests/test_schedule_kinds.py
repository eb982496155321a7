"""The table of schedule kinds (``scheduled_tasks/schedules/kinds.py``): each kind declared once,
and forms, import/export, pages and the preview command reading the table."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, tzinfo
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.template.loader import get_template
from django.test import Client
from django.urls import reverse

from scheduled_tasks import schedules, services
from scheduled_tasks.forms import ScheduledTaskForm
from scheduled_tasks.import_export import (
    ImportValidationError,
    export_tasks,
    import_tasks,
)
from scheduled_tasks.management.commands.preview_schedule import Command as PreviewCommand
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.schedules import ScheduleError, kinds
from scheduled_tasks.schedules.interval import IntervalSchedule
from scheduled_tasks.views.tasks import schedule_preview_data
from tests.factories import T0, claim_slot, make_editor, task_form_data

APP = Path(__file__).resolve().parent.parent / "scheduled_tasks"

# One example of every built-in kind, as typed on the form (T0 is Monday 2026-01-05 09:00 UTC).
FORM_EXAMPLES: dict[str, dict[str, str]] = {
    "interval": {"every": "2", "unit": "days", "anchor": "2026-01-06T09:30"},
    "cron": {"cron_expression": "30  8 * * MON-FRI"},
    "once": {"run_at": "2026-02-01T10:00"},
}


# --- the table itself ----------------------------------------------------------------------------


def test_the_built_in_kinds_in_order_with_interval_the_default() -> None:
    assert [kind.value for kind in kinds.registered()] == ["interval", "cron", "once"]
    assert kinds.default() is kinds.INTERVAL
    assert [kind.value for kind in kinds.registered() if kind.is_one_off] == ["once"]


def test_the_model_field_offers_the_kinds_of_the_table() -> None:
    # The model's choices are recorded by a migration; they must be the table's.
    assert ScheduledTask._meta.get_field("schedule_kind").choices == kinds.choices()
    assert ScheduledTask._meta.get_field("schedule_kind").default == kinds.default().value


@pytest.mark.parametrize("kind", kinds.registered(), ids=lambda kind: kind.value)
def test_each_kind_names_real_columns_templates_and_its_own_json_keys(
    kind: kinds.ScheduleKind,
) -> None:
    columns = {field.name for field in ScheduledTask._meta.concrete_fields}
    assert set(kind.model_fields) <= columns
    assert set(kind.cleared) <= set(kind.model_fields)
    get_template(kind.form_template)
    get_template(kind.detail_template)
    others = {key for other in kinds.registered() if other is not kind for key in other.json_keys}
    assert not others & set(kind.json_keys), "a JSON key must say which kind it belongs to"
    assert "kind" not in kind.json_keys


def test_lookups_by_value_and_by_schedule() -> None:
    cron = schedules.CronSchedule.build("0 9 * * *", "UTC")
    assert kinds.get("cron") is kinds.CRON
    assert kinds.for_schedule(cron) is kinds.CRON
    assert kinds.lookup("yearly") is None
    assert kinds.lookup(["cron"]) is None
    with pytest.raises(ScheduleError, match="unknown schedule kind 'yearly'; use one of: interval"):
        kinds.get("yearly")


def test_columns_of_the_other_kinds_are_cleared() -> None:
    assert kinds.cleared_for(kinds.INTERVAL) == {"cron_expression": "", "run_at": None}
    assert kinds.cleared_for(kinds.CRON) == {"run_at": None}
    # An interval's columns cannot be empty: they are kept on a task of another kind.
    assert kinds.cleared_for(kinds.ONCE) == {"cron_expression": ""}


def test_a_task_of_an_unknown_kind_says_so() -> None:
    task = ScheduledTask(name="t", schedule_kind="yearly", time_zone="UTC")
    assert task.is_one_off is False
    assert task.schedule_description.startswith("invalid schedule: unknown schedule kind")


# --- every kind round-trips: form data -> model -> JSON -> model --------------------------------


def _schedule_columns(task: ScheduledTask) -> dict[str, Any]:
    kind = task.kind
    names = ("schedule_kind", "time_zone", "next_run_at", *kind.model_fields)
    return {name: getattr(task, name) for name in (*names, *kinds.cleared_for(kind))}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", kinds.registered(), ids=lambda kind: kind.value)
def test_every_kind_round_trips_from_the_form_through_json(kind: kinds.ScheduleKind) -> None:
    assert kind.value in FORM_EXAMPLES, "give the new kind an example above"
    data = task_form_data(
        name=f"{kind.value} task",
        schedule_kind=kind.value,
        time_zone="Europe/Madrid",
        **FORM_EXAMPLES[kind.value],
    )
    form = ScheduledTaskForm(data, now=T0)
    assert form.is_valid(), form.errors
    task = services.save_task(form.instance, now=T0)
    assert task.kind is kind
    assert kinds.for_schedule(task.schedule) is kind
    assert task.next_run_at is not None
    stored = _schedule_columns(task)

    exported = json.loads(json.dumps(export_tasks([task])))
    assert set(exported[0]["schedule"]) == {"kind", *kind.json_keys}
    assert exported[0]["schedule"]["kind"] == kind.value

    ScheduledTask.objects.all().delete()
    import_tasks(exported, now=T0)
    imported = ScheduledTask.objects.get(name=task.name)
    assert _schedule_columns(imported) == stored
    assert imported.schedule == task.schedule
    assert export_tasks([imported]) == exported


# --- a fourth kind, registered without touching anything else --------------------------------------


class DailySchedule(IntervalSchedule):
    """Every day at the start time's wall-clock time: the fake kind's own class."""


class DailyKind(kinds.ScheduleKind):
    value = "daily"
    label = "Every day"
    schedule_class = DailySchedule
    model_fields = ("anchor",)
    json_keys = ("time",)
    # It reads the interval's start time, so the interval's templates show it well enough.
    form_template = kinds.INTERVAL.form_template
    detail_template = kinds.INTERVAL.detail_template
    cli = kinds.CliOption("daily_at", "Every day at this time.", metavar="ISO")
    cli_summary = "every day at a time (--daily-at)"

    def build(self, values: Mapping[str, Any], tz: str | tzinfo) -> schedules.Schedule:
        if values.get("anchor") is None:
            raise ScheduleError("a daily schedule needs a time")
        return DailySchedule.build(1, "days", values["anchor"], tz)

    def model_values(self, schedule: DailySchedule) -> dict[str, Any]:
        return {"anchor": schedule.anchor}

    def clean_form(self, form: kinds.FormInput, zone: tzinfo | None) -> schedules.Schedule | None:
        typed = form.cleaned_data.get("anchor")
        if typed is None:
            form.missing("anchor", "Enter the time of day.")
            return None
        at = form.resolve("anchor", typed, zone)
        if at is None or zone is None:
            return None
        form.cleaned_data["anchor"] = at
        return DailySchedule.build(1, "days", at, zone)

    def read_json(
        self, raw: Mapping[str, Any], reader: kinds.JsonInput, zone: tzinfo | None, is_active: bool
    ) -> schedules.Schedule | None:
        at = reader.moment("time", raw["time"], zone) if "time" in raw else None
        return None if at is None or zone is None else DailySchedule.build(1, "days", at, zone)

    def write_json(self, task: Any, zone: tzinfo) -> dict[str, Any]:
        return {"time": task.anchor.astimezone(zone).isoformat()}

    def from_cli(self, options: kinds.CliInput) -> schedules.Schedule:
        return DailySchedule.build(1, "days", options.moment("daily_at"), options.zone)


@pytest.fixture
def daily(monkeypatch: pytest.MonkeyPatch) -> Iterator[kinds.ScheduleKind]:
    kind = kinds.register(DailyKind())
    # A kind declared in kinds.py is in the model's choices from the start (and in a
    # migration); one registered at run time is added the same way.
    field = ScheduledTask._meta.get_field("schedule_kind")
    monkeypatch.setattr(field, "choices", kinds.choices())
    yield kind
    kinds.unregister(kind.value)


def _daily_form(**overrides: str) -> ScheduledTaskForm:
    data = task_form_data(schedule_kind="daily", anchor="2026-01-05T18:15", **overrides)
    return ScheduledTaskForm(data, now=T0)


@pytest.mark.django_db
def test_a_registered_kind_is_offered_checked_saved_and_claimed(
    daily: kinds.ScheduleKind,
) -> None:
    form = _daily_form(time_zone="Europe/Madrid", cron_expression="left over")
    assert ("daily", "Every day") in list(form.fields["schedule_kind"].choices)
    assert form.is_valid(), form.errors
    task = services.save_task(form.instance, now=T0)

    task.refresh_from_db()
    assert (task.schedule_kind, task.cron_expression, task.run_at) == ("daily", "", None)
    assert task.kind is daily
    assert isinstance(task.schedule, DailySchedule)
    assert task.schedule_description == "Every day at 18:15 (Europe/Madrid)"
    assert task.next_run_at == datetime(2026, 1, 5, 17, 15, tzinfo=UTC)
    assert task.get_schedule_kind_display() == "Every day"

    # The runner claims its slot and puts the next one a day later.
    claim = claim_slot(task.pk, task.next_run_at, task.next_run_at)
    assert claim is not None and claim.runs
    task.refresh_from_db()
    assert task.next_run_at == datetime(2026, 1, 6, 17, 15, tzinfo=UTC)

    missing = ScheduledTaskForm(task_form_data(schedule_kind="daily", anchor=""), now=T0)
    assert not missing.is_valid()
    assert missing.errors["anchor"] == ["Enter the time of day."]


@pytest.mark.django_db
def test_a_registered_kind_is_exported_and_imported(daily: kinds.ScheduleKind) -> None:
    entry = {"name": "d", "code": "print(1)", "time_zone": "UTC"}
    report = import_tasks(
        [{**entry, "schedule": {"kind": "daily", "time": "2026-01-05T18:15:00+00:00"}}], now=T0
    )
    assert report.created == ["d"]
    task = ScheduledTask.objects.get(name="d")
    assert (task.schedule_kind, task.anchor) == ("daily", datetime(2026, 1, 5, 18, 15, tzinfo=UTC))
    assert export_tasks([task])[0]["schedule"] == {
        "kind": "daily",
        "time": "2026-01-05T18:15:00+00:00",
    }

    with pytest.raises(ImportValidationError) as refused:
        import_tasks(
            [
                {**entry, "name": "e", "schedule": {"kind": "daily", "cron": "* * * * *"}},
                {**entry, "name": "f", "schedule": {"kind": "weekly"}},
            ],
            now=T0,
        )
    assert [str(problem) for problem in refused.value.problems] == [
        'entry 1 ("e"), schedule.time: missing (required)',
        "entry 1 (\"e\"), schedule.cron: not used by a schedule of kind 'daily'",
        "entry 2 (\"f\"), schedule.kind: unknown schedule kind 'weekly'; use one of: interval, "
        "cron, once, daily",
    ]


@pytest.mark.django_db
def test_a_registered_kind_on_the_pages_and_in_the_live_preview(
    daily: kinds.ScheduleKind, client: Client
) -> None:
    client.force_login(make_editor())
    form_page = client.get(reverse("scheduled_tasks:task_create")).content.decode()
    assert 'data-switch-value="daily"' in form_page
    assert 'value="daily"' in form_page

    response = client.get(
        reverse("scheduled_tasks:schedule_preview"),
        {"schedule_kind": "daily", "anchor": "2026-01-05T18:15", "time_zone": "UTC"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["description"] == "Every day at 18:15 (UTC)"

    form = _daily_form()
    assert form.is_valid(), form.errors
    task = services.save_task(form.instance, now=T0)
    detail = client.get(reverse("scheduled_tasks:task_detail", args=[task.pk])).content.decode()
    assert "Start time" in detail
    assert "Every day" in detail


def test_the_preview_note_of_an_ended_schedule_comes_from_its_kind() -> None:
    past = schedules.OneOffSchedule.build(datetime(2026, 1, 1, tzinfo=UTC), "UTC")
    assert schedule_preview_data(past, T0)["note"] == kinds.ONCE.ended_note
    assert kinds.ONCE.ended_note.startswith("This time has passed")


def test_a_registered_kind_in_the_preview_command(daily: kinds.ScheduleKind) -> None:
    out = StringIO()
    call_command(
        "preview_schedule",
        "--daily-at", "2026-01-05T18:15", "--tz", "UTC", "--after", "2026-01-05T00:00",
        "--count", "2",
        stdout=out,
    )  # fmt: skip
    assert out.getvalue().splitlines() == ["2026-01-05T18:15:00+00:00", "2026-01-06T18:15:00+00:00"]
    parser = PreviewCommand().create_parser("manage.py", "preview_schedule")
    usage = " ".join(parser.format_help().split())
    assert "or every day at a time (--daily-at)" in usage
    assert "--daily-at ISO" in usage
    with pytest.raises(CommandError, match="--unit is only for --every, not for --daily-at"):
        call_command("preview_schedule", "--daily-at", "2026-01-05T18:15", "--unit", "days")


# --- nothing outside the table branches on kinds --------------------------------------------------

_KIND_BRANCHES = [
    re.compile(r"isinstance\([^)]*\b(IntervalSchedule|CronSchedule|OneOffSchedule)\b"),
    re.compile(r"\bKind\.(INTERVAL|CRON|ONCE)\b"),
    re.compile(r"schedule_kind\s*[!=]=|[!=]=\s*\S*schedule_kind\b"),
    re.compile(r"""[!=]=\s*["'](interval|cron|once)["']"""),
]


def _sources() -> Iterator[Path]:
    for path in sorted(APP.rglob("*")):
        relative = path.relative_to(APP).parts
        if relative[0] in ("schedules", "migrations") or path.suffix not in (".py", ".html"):
            continue
        yield path


def test_no_kind_is_branched_on_outside_the_table() -> None:
    found = [
        f"{path.relative_to(APP)}:{number}: {line.strip()}"
        for path in _sources()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if any(pattern.search(line) for pattern in _KIND_BRANCHES)
    ]
    assert found == []


def test_the_scan_would_see_a_branch() -> None:
    lines = [
        "if isinstance(schedule, schedules.OneOffSchedule):",
        "if task.schedule_kind == schedules.Kind.ONCE:",
        "{% if task.schedule_kind == 'once' %}",
    ]
    assert all(any(p.search(line) for p in _KIND_BRANCHES) for line in lines)
    assert list(_sources())
