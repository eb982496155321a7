"""The task form pages (``views.tasks.task_create`` and ``task_edit``): creating and
editing tasks of every kind, zone and registered function, and invalid input that saves
nothing and explains why."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from scheduled_tasks import registry
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.registry import JobContext
from tests.conftest import message_texts, snapshot
from tests.factories import MONDAY_0900_UTC, T0, form_data, make_execution, make_task, make_user

pytestmark = pytest.mark.django_db


# --- create --------------------------------------------------------------------------------


def test_create_form_suggests_the_next_whole_minute(editor_client: Client) -> None:
    before = timezone.now()
    response = editor_client.get(reverse("scheduled_tasks:task_create"))
    after = timezone.now()
    assert response.status_code == 200
    anchor = response.context["form"].initial["anchor"]
    assert anchor.second == 0 and anchor.microsecond == 0
    assert before <= anchor <= after + timedelta(minutes=1)
    assert f'value="{anchor:%Y-%m-%dT%H:%M}"' in response.content.decode()
    html = response.content.decode()
    assert 'type="datetime-local"' in html
    assert 'class="code-input"' in html


def test_editor_creates_a_task(editor_client: Client, editor: Any) -> None:
    response = editor_client.post(
        reverse("scheduled_tasks:task_create"), form_data(timeout_seconds="30")
    )
    task = ScheduledTask.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduled_tasks:task_detail", args=[task.pk])
    assert task.name == "Nightly report"
    assert task.created_by == editor
    assert task.updated_by == editor
    assert task.timeout_seconds == 30
    assert task.anchor == T0  # 09:00 in the test time zone (UTC)
    now = timezone.now()
    assert task.next_run_at == task.first_run_after(now)
    assert now <= task.next_run_at <= now + timedelta(days=1)
    assert task.next_run_at.time() == T0.time()
    assert any("created" in m and "Next run" in m for m in message_texts(response))


def test_created_task_starts_at_a_future_anchor(editor_client: Client) -> None:
    future = (timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    editor_client.post(
        reverse("scheduled_tasks:task_create"),
        form_data(anchor=timezone.localtime(future).strftime("%Y-%m-%dT%H:%M")),
    )
    assert ScheduledTask.objects.get().next_run_at == future


def test_an_inactive_task_is_created_without_a_next_run(editor_client: Client) -> None:
    data = form_data()
    del data["is_active"]
    editor_client.post(reverse("scheduled_tasks:task_create"), data)
    task = ScheduledTask.objects.get()
    assert task.is_active is False
    assert task.next_run_at is None


INVALID_INPUTS = [
    ({"every": "0"}, "every", "at least 1"),
    ({"every": "-3"}, "every", "at least 1"),
    ({"every": "abc"}, "every", "must be a whole number"),
    ({"unit": "fortnights"}, "unit", "Select a valid choice"),
    ({"anchor": "not a date"}, "anchor", "Enter a valid date/time"),
    ({"anchor": ""}, "anchor", "This field is required"),
    ({"name": ""}, "name", "This field is required"),
    ({"code": ""}, "code", "This field is required"),
    ({"code": "   \n  "}, "code", "The code is empty."),
    ({"code": "x = 1\nif x\n    print(x)"}, "code", "Line 2: SyntaxError"),
    ({"code": "data = {}\nsecret = data._hidden"}, "code", 'Line 2: "_hidden"'),
    ({"code": "x = 1\n\ny = x.__class__"}, "code", 'Line 3: "__class__"'),
    ({"timeout_seconds": "0"}, "timeout_seconds", "from 1 to 86,400"),
    ({"timeout_seconds": "999999"}, "timeout_seconds", "from 1 to 86,400"),
    ({"every": "36501", "unit": "days"}, "every", "at most 36,500 for days"),
    (
        {"schedule_kind": "cron", "cron_expression": "0 0 31 2 *"},
        "cron_expression",
        "The cron expression '0 0 31 2 *' never runs",
    ),
    ({"schedule_kind": "cron", "cron_expression": "* * *"}, "cron_expression", "5 fields"),
    ({"schedule_kind": "cron", "cron_expression": ""}, "cron_expression", "Enter a cron"),
    ({"time_zone": "Mars/Olympus"}, "time_zone", "Unknown time zone “Mars/Olympus”"),
    ({"schedule_kind": "once", "run_at": "2020-01-01T09:00"}, "run_at", "in the past"),
    ({"schedule_kind": "once", "run_at": ""}, "run_at", "Enter the date and time"),
    ({"max_retries": "-1"}, "max_retries", "Retries must be a whole number from 0 to 20."),
    ({"max_retries": "99"}, "max_retries", "Retries must be a whole number from 0 to 20."),
    ({"max_instances": "0"}, "max_instances", "from 1 to 50"),
    ({"priority": "500"}, "priority", "from -100 to 100"),
    ({"grace_seconds": "-1"}, "grace_seconds", "The grace period must be"),
    ({"runs": "function", "function_name": "tests.nope"}, "function_name", "not a registered"),
    ({"runs": "function", "function_name": ""}, "function_name", "Choose the registered"),
]


@pytest.mark.parametrize("overrides,field,message", INVALID_INPUTS)
def test_invalid_create_saves_nothing_and_explains(
    editor_client: Client, overrides: dict[str, str], field: str, message: str
) -> None:
    response = editor_client.post(reverse("scheduled_tasks:task_create"), form_data(**overrides))
    assert response.status_code == 200
    assert ScheduledTask.objects.count() == 0
    errors = response.context["form"].errors
    assert field in errors
    assert any(message in e for e in errors[field]), errors[field]
    html = response.content.decode()
    assert "Nothing was saved." in html
    assert 'class="errorlist field-errors"' in html


def test_code_with_several_problems_lists_each_with_its_line(editor_client: Client) -> None:
    code = "a = {}\nb = a._x\nc = 2\nd = a._y\n"
    response = editor_client.post(reverse("scheduled_tasks:task_create"), form_data(code=code))
    errors = response.context["form"].errors["code"]
    assert any(e.startswith("Line 2:") for e in errors)
    assert any(e.startswith("Line 4:") for e in errors)
    assert ScheduledTask.objects.count() == 0


def test_code_over_the_size_limit_is_refused(editor_client: Client, settings: Any) -> None:
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "MAX_CODE_BYTES": 100}
    code = "x = 1\n" * 20  # 120 bytes
    response = editor_client.post(reverse("scheduled_tasks:task_create"), form_data(code=code))
    assert ScheduledTask.objects.count() == 0
    assert "The code is 120 bytes; the limit is 100 bytes." in response.content.decode()


def test_duplicate_name_is_refused(editor_client: Client) -> None:
    make_task(name="Nightly report")
    response = editor_client.post(reverse("scheduled_tasks:task_create"), form_data())
    assert ScheduledTask.objects.count() == 1
    assert "already exists" in " ".join(response.context["form"].errors["name"])


def test_failed_create_keeps_what_was_typed(editor_client: Client) -> None:
    response = editor_client.post(
        reverse("scheduled_tasks:task_create"), form_data(code="x = 1\ny = x._z", name="Keep me")
    )
    html = response.content.decode()
    assert 'value="Keep me"' in html
    assert "y = x._z" in html


# --- edit ----------------------------------------------------------------------------------


def test_editor_edits_a_task_and_it_is_rescheduled(editor_client: Client, editor: Any) -> None:
    creator = make_user("creator")
    task = make_task(
        name="digest",
        every=1,
        unit="hours",
        anchor=T0,
        created_by=creator,
        next_run_at=T0,
        last_run_at=T0,
    )
    failed = make_execution(task, status="failed")
    ScheduledTask.objects.filter(pk=task.pk).update(last_execution=failed, last_failed=True)
    page = editor_client.get(reverse("scheduled_tasks:task_edit", args=[task.pk]))
    assert page.status_code == 200
    assert 'value="2026-01-05T09:00"' in page.content.decode()

    response = editor_client.post(
        reverse("scheduled_tasks:task_edit", args=[task.pk]),
        form_data(name="digest", every="3", unit="days", anchor="2026-01-05T07:30"),
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.every, task.unit) == (3, "days")
    assert task.updated_by == editor
    assert task.created_by == creator
    now = timezone.now()
    assert task.next_run_at == task.first_run_after(now)
    assert task.next_run_at != T0
    assert (task.next_run_at.hour, task.next_run_at.minute) == (7, 30)
    # The runner's columns are not the form's to change.
    assert task.last_status == "failed"
    assert task.last_run_at == T0
    assert any("saved" in m for m in message_texts(response))


def test_deactivating_in_the_form_clears_the_next_run(editor_client: Client) -> None:
    task = make_task(name="digest")
    data = form_data(name="digest")
    del data["is_active"]
    editor_client.post(reverse("scheduled_tasks:task_edit", args=[task.pk]), data)
    task.refresh_from_db()
    assert task.is_active is False
    assert task.next_run_at is None


@pytest.mark.parametrize("overrides,field,message", INVALID_INPUTS)
def test_invalid_edit_changes_nothing(
    editor_client: Client, overrides: dict[str, str], field: str, message: str
) -> None:
    task = make_task(name="digest", code="print('original')")
    before = snapshot(task)
    response = editor_client.post(
        reverse("scheduled_tasks:task_edit", args=[task.pk]),
        form_data(**{"name": "digest", **overrides}),
    )
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert snapshot(task) == before
    # The heading names the stored task, not the rejected input.
    assert response.context["task"].name == "digest"


def test_edit_to_a_taken_name_is_refused(editor_client: Client) -> None:
    make_task(name="taken")
    task = make_task(name="mine")
    before = snapshot(task)
    response = editor_client.post(
        reverse("scheduled_tasks:task_edit", args=[task.pk]), form_data(name="taken")
    )
    assert "name" in response.context["form"].errors
    assert snapshot(task) == before


def test_edit_form_shows_times_in_the_tasks_zone(editor_client: Client) -> None:
    task = make_task(name="madrid", anchor=T0, time_zone="Europe/Madrid")
    html = editor_client.get(reverse("scheduled_tasks:task_edit", args=[task.pk])).content.decode()
    assert 'value="2026-01-05T10:00"' in html
    assert '<option value="Europe/Madrid" selected>Europe/Madrid</option>' in html


def test_editing_a_task_to_cron_keeps_one_schedule(editor_client: Client) -> None:
    task = make_task(name="digest", every=1, unit="hours")
    with time_machine.travel(MONDAY_0900_UTC, tick=False):
        editor_client.post(
            reverse("scheduled_tasks:task_edit", args=[task.pk]),
            form_data(name="digest", schedule_kind="cron", cron_expression="0 12 * * *"),
        )
    task.refresh_from_db()
    assert (task.schedule_kind, task.cron_expression, task.run_at) == ("cron", "0 12 * * *", None)
    assert task.next_run_at == datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_form_page_renders_the_preview_of_a_cron_task(editor_client: Client) -> None:
    task = make_task(name="cron", schedule_kind="cron", cron_expression="0 9 * * *")
    html = editor_client.get(reverse("scheduled_tasks:task_edit", args=[task.pk])).content.decode()
    assert '<p class="preview-description">At 09:00 AM (UTC)</p>' in html


# --- schedule kinds, zones and registered functions ----------------------------------------


def example(ctx: JobContext, *, days: int, label: str = "tickets") -> str:
    """Count things older than ``days`` days."""
    return f"{days} {label}"


@pytest.fixture
def example_function() -> Iterator[registry.RegisteredFunction]:
    registry.register("tests.example", description="Counts old things.")(example)
    yield registry.get("tests.example")
    registry._REGISTRY.pop("tests.example", None)


def test_create_form_offers_every_kind_zones_and_advanced_settings(editor_client: Client) -> None:
    html = editor_client.get(reverse("scheduled_tasks:task_create")).content.decode()
    for value in ("interval", "cron", "once"):
        assert f'name="schedule_kind" value="{value}"' in html
    assert 'data-switch-panel="kind" data-switch-value="cron"' in html
    assert '<option value="Europe/Madrid">Europe/Madrid</option>' in html
    assert "Cron syntax" in html
    assert 'name="cron_expression"' in html
    assert 'name="run_at"' in html
    assert 'name="runs" value="function"' in html
    for name in ("catch_up", "grace_seconds", "max_instances", "max_retries",
                 "retry_backoff_seconds", "priority", "timeout_seconds"):  # fmt: skip
        assert f'name="{name}"' in html
    assert "Advanced" in html


def test_create_form_lists_registered_functions_with_signature_and_description(
    editor_client: Client, example_function: registry.RegisteredFunction
) -> None:
    html = editor_client.get(reverse("scheduled_tasks:task_create")).content.decode()
    assert '<option value="tests.example">' in html
    assert 'data-function-info="tests.example"' in html
    assert "tests.example(days, label=&#x27;tickets&#x27;)" in html
    assert "Counts old things." in html
    assert "data-defaults=" in html


def test_editor_creates_a_cron_task_in_madrid(editor_client: Client) -> None:
    with time_machine.travel(MONDAY_0900_UTC, tick=False):
        response = editor_client.post(
            reverse("scheduled_tasks:task_create"),
            form_data(
                schedule_kind="cron",
                cron_expression="30 8 * * MON-FRI",
                time_zone="Europe/Madrid",
                every="",
                anchor="",
                max_retries="2",
                priority="5",
            ),
        )
    assert response.status_code == 302
    task = ScheduledTask.objects.get()
    assert (task.schedule_kind, task.cron_expression, task.time_zone) == (
        "cron",
        "30 8 * * MON-FRI",
        "Europe/Madrid",
    )
    assert (task.max_retries, task.priority, task.run_at) == (2, 5, None)
    # 08:30 in Madrid (CET) on Tuesday: Monday's 08:30 was before 10:00 local.
    assert task.next_run_at == datetime(2026, 1, 6, 7, 30, tzinfo=UTC)
    detail = editor_client.get(response["Location"]).content.decode()
    assert "At 08:30 AM, Monday through Friday (Europe/Madrid)" in detail
    assert "<code>30 8 * * MON-FRI</code>" in detail


def test_editor_creates_a_one_off_task(editor_client: Client) -> None:
    with time_machine.travel(MONDAY_0900_UTC, tick=False):
        response = editor_client.post(
            reverse("scheduled_tasks:task_create"),
            form_data(schedule_kind="once", run_at="2026-01-05T12:00", time_zone="Europe/Madrid"),
        )
        assert response.status_code == 302
        task = ScheduledTask.objects.get()
        assert task.schedule_kind == "once"
        assert task.run_at == datetime(2026, 1, 5, 11, 0, tzinfo=UTC)
        assert task.next_run_at == task.run_at
        detail = editor_client.get(response["Location"])
    assert detail.context["upcoming"] == [task.run_at]
    assert "Once, at 2026-01-05 12:00 (Europe/Madrid)" in detail.content.decode()


def test_editor_creates_an_interval_task_in_another_zone(editor_client: Client) -> None:
    with time_machine.travel(MONDAY_0900_UTC, tick=False):
        editor_client.post(
            reverse("scheduled_tasks:task_create"),
            form_data(unit="days", anchor="2026-01-05T10:30", time_zone="Europe/Madrid"),
        )
    task = ScheduledTask.objects.get()
    assert task.anchor == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    assert task.next_run_at == task.anchor


def test_editor_creates_a_function_task_and_its_page_shows_it(
    editor_client: Client, example_function: registry.RegisteredFunction
) -> None:
    response = editor_client.post(
        reverse("scheduled_tasks:task_create"),
        form_data(
            runs="function", code="", function_name="tests.example", function_params='{"days": 3}'
        ),
    )
    assert response.status_code == 302
    task = ScheduledTask.objects.get()
    assert (task.code, task.function_name, task.function_params) == (
        "",
        "tests.example",
        {"days": 3},
    )
    html = editor_client.get(response["Location"]).content.decode()
    assert "Registered function" in html
    assert "tests.example(days, label=&#x27;tickets&#x27;)" in html
    assert "Counts old things." in html
    assert "&quot;days&quot;: 3" in html
    assert 'aria-label="Task code"' not in html


def test_function_parameters_are_checked_against_the_signature(
    editor_client: Client, example_function: registry.RegisteredFunction
) -> None:
    for params, message in [
        ("{days: 3}", "Invalid JSON at line 1, column 2"),
        ('{"weeks": 3}', "Tests.example has no parameter 'weeks'"),
        ("", "Tests.example needs the parameter 'days'."),
    ]:
        response = editor_client.post(
            reverse("scheduled_tasks:task_create"),
            form_data(runs="function", function_name="tests.example", function_params=params),
        )
        errors = response.context["form"].errors["function_params"]
        assert any(message in e for e in errors), errors
        # What was typed is shown again, as typed.
        assert f">\n{escape(params)}</textarea>" in response.content.decode()
    assert ScheduledTask.objects.count() == 0
