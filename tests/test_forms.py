"""ScheduledTaskForm: the checks every task passes before it is saved (web pages and admin)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scheduled_tasks import registry, services
from scheduled_tasks.form_fields import LocalDateTimeInput, next_whole_minute
from scheduled_tasks.forms import ScheduledTaskForm, SchedulePreviewForm
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.registry import JobContext
from scheduled_tasks.validation import cron_problem
from tests.factories import T0, make_task, task_form_data

pytestmark = pytest.mark.django_db


def data(**overrides: Any) -> dict[str, Any]:
    return task_form_data(**overrides)


def errors_of(field: str, now: datetime | None = T0, **overrides: Any) -> list[str]:
    form = ScheduledTaskForm(data(**overrides), now=now)
    assert not form.is_valid()
    assert field in form.errors, form.errors
    return form.errors[field]


def saved(now: datetime = T0, **overrides: Any) -> ScheduledTask:
    form = ScheduledTaskForm(data(**overrides), now=now)
    assert form.is_valid(), form.errors
    task = form.save(commit=False)
    task.next_run_at = services.next_run_for(task, now)
    task.save()
    task.refresh_from_db()
    return task


def code_errors(code: str) -> list[str]:
    return errors_of("code", code=code)


def example(ctx: JobContext, *, days: int, label: str = "tickets") -> str:
    """Count things older than ``days`` days."""
    return f"{days} {label}"


@pytest.fixture
def example_function() -> Iterator[registry.RegisteredFunction]:
    registry.register("tests.example")(example)
    yield registry.get("tests.example")
    registry._REGISTRY.pop("tests.example", None)


# --- code ----------------------------------------------------------------------------------------


def test_valid_input_builds_an_unsaved_task() -> None:
    form = ScheduledTaskForm(data(every="15", unit="minutes", timeout_seconds="5"))
    assert form.is_valid(), form.errors
    task = form.save(commit=False)
    assert (task.every, task.unit, task.anchor, task.timeout_seconds) == (15, "minutes", T0, 5)
    assert (task.schedule_kind, task.time_zone, task.cron_expression, task.run_at) == (
        "interval",
        "UTC",
        "",
        None,
    )
    assert ScheduledTask.objects.count() == 0


def test_syntax_error_is_reported_with_its_line() -> None:
    errors = code_errors("total = 0\nfor n in range(3)\n    total += n\n")
    assert len(errors) == 1
    assert errors[0].startswith("Line 2: SyntaxError")


def test_underscore_attribute_is_refused_with_its_line() -> None:
    assert code_errors("x = []\n\n\nx._secret")[0].startswith('Line 4: "_secret"')


def test_dunder_escape_is_refused() -> None:
    errors = code_errors("().__class__.__bases__[0].__subclasses__()")
    assert all(e.startswith("Line 1:") for e in errors)
    assert any("__class__" in e for e in errors)


def test_every_problem_is_listed() -> None:
    errors = code_errors("a = 1\nb = a._x\nc = a._y\nd = a.__dict__")
    assert [e.split(":")[0] for e in errors] == ["Line 2", "Line 3", "Line 4"]


def test_try_star_is_refused() -> None:
    code = "try:\n    pass\nexcept* ValueError:\n    pass\n"
    assert any("except*" in e for e in code_errors(code))


def test_leading_blank_lines_keep_line_numbers_right() -> None:
    # Stripping the input would report line 1 for what the user sees on line 3.
    assert code_errors("\n\nx = y._z\n")[0].startswith("Line 3:")


def test_windows_line_endings_are_normalised() -> None:
    form = ScheduledTaskForm(data(code="a = 1\r\nprint(a)\r\n"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["code"] == "a = 1\nprint(a)\n"


def test_blank_code_is_refused() -> None:
    assert code_errors("   \n\t\n") == ["The code is empty."]
    assert code_errors("") == ["This field is required."]


def test_code_size_limit_comes_from_settings(settings: Any) -> None:
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "MAX_CODE_BYTES": 10}
    assert code_errors("print('hello')") == ["The code is 14 bytes; the limit is 10 bytes."]
    assert ScheduledTaskForm(data(code="print(1)")).is_valid()


def test_code_size_counts_bytes_not_characters(settings: Any) -> None:
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "MAX_CODE_BYTES": 12}
    assert code_errors("print('ñññ')") == ["The code is 15 bytes; the limit is 12 bytes."]


def test_code_is_a_monospace_textarea() -> None:
    html = str(ScheduledTaskForm()["code"])
    assert html.startswith("<textarea")
    assert 'class="code-input"' in html
    assert 'spellcheck="false"' in html


def test_duplicate_name_is_refused() -> None:
    make_task(name="digest")
    form = ScheduledTaskForm(data())
    assert not form.is_valid()
    assert "already exists" in form.errors["name"][0]


# --- interval schedules --------------------------------------------------------------------------


@pytest.mark.parametrize("every", ["0", "-1", "100001", "1.5", ""])
def test_frequency_must_be_a_whole_number_of_at_least_one(every: str) -> None:
    form = ScheduledTaskForm(data(every=every))
    assert not form.is_valid()
    assert "every" in form.errors


def test_frequency_is_capped_per_unit() -> None:
    assert errors_of("every", every="1201", unit="months") == [
        "The frequency must be at most 1,200 for months."
    ]
    assert errors_of("every", every="5201", unit="weeks") == [
        "The frequency must be at most 5,200 for weeks."
    ]
    assert ScheduledTaskForm(data(every="1200", unit="months")).is_valid()


def test_unit_must_be_one_of_the_choices() -> None:
    assert "Select a valid choice" in errors_of("unit", unit="years")[0]


def test_anchor_is_required_for_an_interval() -> None:
    assert errors_of("anchor", anchor="") == ["This field is required."]


def test_anchor_is_read_in_the_tasks_time_zone() -> None:
    form = ScheduledTaskForm(data(anchor="2026-01-05T10:00", time_zone="Europe/Madrid"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["anchor"] == T0  # 10:00 CET is 09:00 UTC
    assert "time zone" in form.fields["anchor"].help_text


def test_an_empty_zone_means_the_servers_zone(settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Madrid"
    form = ScheduledTaskForm(data(anchor="2026-01-05T10:00", time_zone=""))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["time_zone"] == "Europe/Madrid"
    assert form.cleaned_data["anchor"] == T0


def test_anchor_with_an_offset_keeps_its_instant() -> None:
    form = ScheduledTaskForm(data(anchor="2026-01-05T04:00-05:00", time_zone="Europe/Madrid"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["anchor"] == T0


def test_anchor_in_a_skipped_hour_is_refused() -> None:
    errors = errors_of("anchor", anchor="2026-03-29T02:30", time_zone="Europe/Madrid")
    assert "does not exist in Europe/Madrid" in errors[0]


def test_anchor_in_a_repeated_hour_is_its_first_occurrence() -> None:
    form = ScheduledTaskForm(data(anchor="2026-10-25T02:30", time_zone="Europe/Madrid"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["anchor"] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # CEST


def test_anchor_with_seconds_is_accepted() -> None:
    form = ScheduledTaskForm(data(anchor="2026-01-05T09:00:30"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["anchor"] == T0.replace(second=30)


def test_days_keep_the_wall_clock_time_of_the_tasks_zone() -> None:
    # 09:00 in Madrid, before and after the spring change: 08:00 UTC, then 07:00 UTC.
    task = saved(
        now=datetime(2026, 3, 28, 12, 0, tzinfo=UTC),
        unit="days",
        anchor="2026-03-01T09:00",
        time_zone="Europe/Madrid",
    )
    assert task.next_run_at == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert task.schedule_description == "Every day at 09:00 (Europe/Madrid)"


def test_new_form_suggests_the_next_whole_minute() -> None:
    now = datetime(2026, 1, 5, 9, 0, 12, 345, tzinfo=UTC)
    form = ScheduledTaskForm(now=now)
    assert form.initial["anchor"] == datetime(2026, 1, 5, 9, 1, tzinfo=UTC)
    assert 'value="2026-01-05T09:01"' in str(form["anchor"])
    assert 'value="2026-01-05T09:01"' in str(form["run_at"])


def test_new_form_shows_the_suggestion_in_the_default_zone(settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Madrid"
    form = ScheduledTaskForm(now=T0)
    assert 'value="2026-01-05T10:00"' in str(form["anchor"])
    assert form["time_zone"].value() == "Europe/Madrid"


def test_new_form_without_a_clock_leaves_the_anchor_empty() -> None:
    assert ScheduledTaskForm().initial.get("anchor") is None


def test_edit_form_shows_the_stored_anchor_in_the_tasks_zone() -> None:
    task = make_task(anchor=T0, time_zone="Europe/Madrid")
    html = str(ScheduledTaskForm(instance=task, now=T0.replace(hour=12))["anchor"])
    assert 'type="datetime-local"' in html
    assert 'value="2026-01-05T10:00"' in html
    assert "step" not in html


def test_an_unchanged_anchor_is_not_reported_as_changed() -> None:
    task = make_task(anchor=T0, time_zone="Europe/Madrid")
    form = ScheduledTaskForm(
        data(name=task.name, anchor="2026-01-05T10:00", time_zone="Europe/Madrid"), instance=task
    )
    assert form.is_valid(), form.errors
    assert "anchor" not in form.changed_data


def test_anchor_with_seconds_is_shown_with_seconds_and_a_matching_step() -> None:
    task = make_task(anchor=T0.replace(second=30))
    html = str(ScheduledTaskForm(instance=task)["anchor"])
    assert 'value="2026-01-05T09:00:30"' in html
    assert 'step="1"' in html


# --- time zones ----------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Mars/Olympus", "europe/madrid", "../etc/passwd", "CET+1"])
def test_an_unknown_zone_is_refused(zone: str) -> None:
    errors = errors_of("time_zone", time_zone=zone)
    assert errors == [
        f"Unknown time zone “{zone}”. Pick an IANA zone such as Europe/Madrid from the list."
    ]


def test_the_zone_list_is_grouped_by_region() -> None:
    html = str(ScheduledTaskForm()["time_zone"])
    assert '<optgroup label="Europe">' in html
    assert '<option value="Europe/Madrid">Europe/Madrid</option>' in html


# --- cron schedules ------------------------------------------------------------------------------


def test_cron_task_in_madrid_gets_its_next_run_in_utc() -> None:
    # Monday 2026-01-05 09:00 UTC is 10:00 in Madrid: today's 08:30 has passed; next is Tuesday.
    task = saved(
        schedule_kind="cron",
        cron_expression="  30 8  * * MON-FRI ",
        time_zone="Europe/Madrid",
        every="bogus",  # the interval fields are not used, so not checked
        anchor="",
    )
    assert task.schedule_kind == "cron"
    assert task.cron_expression == "30 8 * * MON-FRI"
    assert task.run_at is None
    assert task.next_run_at == datetime(2026, 1, 6, 7, 30, tzinfo=UTC)
    assert task.schedule_description == "At 08:30 AM, Monday through Friday (Europe/Madrid)"


def test_cron_in_summer_uses_summer_time() -> None:
    task = saved(
        now=datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
        schedule_kind="cron",
        cron_expression="30 8 * * MON-FRI",
        time_zone="Europe/Madrid",
    )
    assert task.next_run_at == datetime(2026, 7, 2, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 0 31 2 *", "The cron expression '0 0 31 2 *' never runs: day 31 of the month never"),
        ("0 0 30 2 *", "never runs: day 30 of the month never falls in month 2"),
        ("0 0 31 4,6,9,11 *", "never runs"),
        ("61 * * * *", "Invalid cron expression '61 * * * *': Bad minute"),
        ("0 24 * * *", "Bad hour"),
        ("0 0 * * 8", "Bad day-of-week"),
        ("* * *", "A cron expression has 5 fields"),
        ("@daily", "A cron expression has 5 fields"),
        ("", "Enter a cron expression, such as 30 8 * * MON-FRI."),
    ],
)
def test_a_bad_cron_expression_is_refused(expression: str, message: str) -> None:
    errors = errors_of("cron_expression", schedule_kind="cron", cron_expression=expression)
    assert len(errors) == 1
    assert message in errors[0]


def test_a_cron_day_that_exists_in_some_month_is_accepted() -> None:
    assert ScheduledTaskForm(data(schedule_kind="cron", cron_expression="0 0 31 1-3 *")).is_valid()
    assert ScheduledTaskForm(data(schedule_kind="cron", cron_expression="0 0 29 2 *")).is_valid()


def test_cron_problem_is_none_for_a_good_expression() -> None:
    assert cron_problem("30 8 * * MON-FRI", "Europe/Madrid") is None


def test_switching_to_interval_clears_the_cron_expression() -> None:
    task = make_task(schedule_kind="cron", cron_expression="0 9 * * *", next_run_at=None)
    form = ScheduledTaskForm(data(name=task.name, cron_expression="junk junk"), instance=task)
    assert form.is_valid(), form.errors
    assert form.save().cron_expression == ""


# --- one-off schedules ---------------------------------------------------------------------------


def test_one_off_task_runs_at_its_time_in_its_zone() -> None:
    task = saved(schedule_kind="once", run_at="2026-01-06T10:00", time_zone="Europe/Madrid")
    assert task.schedule_kind == "once"
    assert task.run_at == datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
    assert task.next_run_at == task.run_at
    assert task.schedule_description == "Once, at 2026-01-06 10:00 (Europe/Madrid)"


def test_one_off_in_the_past_is_refused() -> None:
    errors = errors_of(
        "run_at", schedule_kind="once", run_at="2026-01-05T09:59", time_zone="Europe/Madrid"
    )
    assert errors == [
        "This time is in the past (it is now 2026-01-05 10:00 in Europe/Madrid). Pick a later "
        "time, or untick “Active”."
    ]


def test_one_off_exactly_now_is_accepted() -> None:
    task = saved(schedule_kind="once", run_at="2026-01-05T09:00")
    assert task.next_run_at == T0


def test_an_inactive_one_off_may_keep_a_past_time() -> None:
    # A finished one-off deactivated itself; editing its description must still be possible.
    task = saved(schedule_kind="once", run_at="2025-12-01T09:00", is_active="")
    assert task.run_at == datetime(2025, 12, 1, 9, 0, tzinfo=UTC)
    assert task.next_run_at is None


def test_one_off_needs_a_time_and_not_a_skipped_one() -> None:
    assert errors_of("run_at", schedule_kind="once", run_at="") == [
        "Enter the date and time of the run."
    ]
    errors = errors_of(
        "run_at", schedule_kind="once", run_at="2026-03-29T02:30", time_zone="Europe/Madrid"
    )
    assert "does not exist in Europe/Madrid" in errors[0]


def test_an_unknown_kind_is_refused() -> None:
    assert "Select a valid choice" in errors_of("schedule_kind", schedule_kind="yearly")[0]


# --- advanced settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_retries", "-1", "Retries must be a whole number from 0 to 20."),
        ("max_retries", "21", "Retries must be a whole number from 0 to 20."),
        ("max_retries", "two", "Retries must be a whole number from 0 to 20."),
        ("max_instances", "0", "The number of parallel runs must be a whole number from 1 to 50."),
        ("retry_backoff_seconds", "0", "The retry backoff must be a whole number from 1 to"),
        ("priority", "101", "The priority must be a whole number from -100 to 100."),
        ("priority", "-101", "The priority must be a whole number from -100 to 100."),
        ("grace_seconds", "-5", "The grace period must be a whole number from 0 to"),
        ("timeout_seconds", "0", "The timeout must be a whole number from 1 to 86,400."),
        ("timeout_seconds", "86401", "The timeout must be a whole number from 1 to 86,400."),
        ("catch_up", "sometimes", "Select a valid choice"),
    ],
)
def test_advanced_settings_out_of_range_are_refused(field: str, value: str, message: str) -> None:
    errors = errors_of(field, **{field: value})
    assert any(message in e for e in errors), errors


def test_advanced_settings_are_saved() -> None:
    task = saved(
        catch_up="skip",
        grace_seconds="300",
        max_instances="3",
        max_retries="5",
        retry_backoff_seconds="30",
        priority="-7",
        timeout_seconds="120",
    )
    assert (
        task.catch_up,
        task.grace_seconds,
        task.max_instances,
        task.max_retries,
        task.retry_backoff_seconds,
        task.priority,
        task.timeout_seconds,
    ) == ("skip", 300, 3, 5, 30, -7, 120)


def test_empty_advanced_settings_take_their_defaults() -> None:
    task = saved(
        catch_up="",
        grace_seconds="",
        max_instances="",
        max_retries="",
        retry_backoff_seconds="",
        priority="",
        timeout_seconds="",
    )
    assert (
        task.catch_up,
        task.grace_seconds,
        task.max_instances,
        task.max_retries,
        task.retry_backoff_seconds,
        task.priority,
        task.timeout_seconds,
    ) == ("run_once", None, 1, 0, 60, 0, None)


# --- registered functions ------------------------------------------------------------------------


def function_data(**overrides: Any) -> dict[str, Any]:
    values = {
        "runs": "function",
        "code": "",
        "function_name": "tests.example",
        "function_params": '{"days": 30}',
    }
    values.update(overrides)
    return values


def test_a_function_task_stores_the_function_and_its_parameters(
    example_function: registry.RegisteredFunction,
) -> None:
    task = saved(**function_data(code="print('left over in the hidden editor')"))
    assert task.function_name == "tests.example"
    assert task.function_params == {"days": 30}
    assert task.code == ""
    assert task.runs_function


def test_registered_functions_are_offered_with_their_signature(
    example_function: registry.RegisteredFunction,
) -> None:
    html = str(ScheduledTaskForm()["function_name"])
    assert '<option value="tests.example">tests.example(days, label=&#x27;tickets&#x27;)' in html


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"function_name": "tests.nope"}, "function_name", "“tests.nope” is not a registered"),
        ({"function_name": ""}, "function_name", "Choose the registered function to run."),
        ({"function_params": "{days: 30}"}, "function_params", "Invalid JSON at line 1, column 2"),
        ({"function_params": "[30]"}, "function_params", "must be a JSON object"),
        (
            {"function_params": '{"days": 1, "label": "a\\u0000b"}'},
            "function_params",
            "must not contain a NUL character",
        ),
        ({"function_params": "{}"}, "function_params", "needs the parameter 'days'"),
        (
            {"function_params": '{"days": 1, "colour": "red"}'},
            "function_params",
            "Tests.example has no parameter 'colour' (parameters: days, label).",
        ),
    ],
)
def test_bad_function_choices_are_refused(
    example_function: registry.RegisteredFunction,
    overrides: dict[str, str],
    field: str,
    message: str,
) -> None:
    errors = errors_of(field, **function_data(**overrides))
    assert any(message in e for e in errors), errors


def test_empty_parameters_mean_none(example_function: registry.RegisteredFunction) -> None:
    registry.register("tests.no_params")(lambda ctx: None)
    try:
        task = saved(**function_data(function_name="tests.no_params", function_params="  "))
    finally:
        registry._REGISTRY.pop("tests.no_params", None)
    assert task.function_params == {}


def test_choosing_code_clears_the_function(example_function: registry.RegisteredFunction) -> None:
    task = make_task(code="", function_name="tests.example", function_params={"days": 1})
    form = ScheduledTaskForm(
        data(name=task.name, runs="code", function_name="tests.nope", function_params="{oops"),
        instance=task,
    )
    assert form.is_valid(), form.errors
    task = form.save()
    assert (task.code, task.function_name, task.function_params) == ("print('hi')", "", {})


def test_without_a_choice_code_and_function_together_are_refused(
    example_function: registry.RegisteredFunction,
) -> None:
    form = ScheduledTaskForm(data(**function_data(runs="", code="print(1)")))
    assert not form.is_valid()
    assert form.non_field_errors() == [
        "Give either code or a registered function to run, not both."
    ]
    form = ScheduledTaskForm(data(**function_data(runs="")))
    assert form.is_valid(), form.errors


def test_a_function_that_is_no_longer_registered_is_shown_but_refused() -> None:
    task = make_task(code="", function_name="tests.gone", function_params={})
    form = ScheduledTaskForm(instance=task)
    assert "tests.gone (no longer registered)" in str(form["function_name"])
    assert form["runs"].value() == "function"
    bound = ScheduledTaskForm(
        data(name=task.name, **function_data(function_name="tests.gone", function_params="")),
        instance=task,
    )
    assert not bound.is_valid()
    assert "not a registered function" in bound.errors["function_name"][0]


def test_edit_form_shows_the_parameters_as_json(
    example_function: registry.RegisteredFunction,
) -> None:
    task = make_task(code="", function_name="tests.example", function_params={"days": 7})
    assert ScheduledTaskForm(instance=task)["function_params"].value() == '{\n  "days": 7\n}'


# --- the preview form ----------------------------------------------------------------------------


def test_preview_form_checks_only_the_chosen_kind() -> None:
    form = SchedulePreviewForm(
        {"schedule_kind": "cron", "cron_expression": "0 9 * * *", "every": "x", "unit": "?"}
    )
    assert form.is_valid(), form.errors
    assert form.schedule().describe() == "At 09:00 AM (UTC)"


# --- helpers -------------------------------------------------------------------------------------


def test_next_whole_minute_rounds_up() -> None:
    assert next_whole_minute(T0) == T0
    assert next_whole_minute(T0.replace(microsecond=1)) == T0.replace(minute=1)
    assert next_whole_minute(T0.replace(minute=59, second=59)) == T0.replace(hour=10)


def test_local_datetime_input_leaves_strings_alone() -> None:
    widget = LocalDateTimeInput()
    assert widget.format_value("2026-01-05T09:00") == "2026-01-05T09:00"
    assert widget.format_value(None) is None


def test_the_past_check_uses_the_clock_given_by_the_caller() -> None:
    later = T0 + timedelta(days=2)
    form = ScheduledTaskForm(data(schedule_kind="once", run_at="2026-01-06T09:00"), now=later)
    assert not form.is_valid()
    # Without a clock (a caller that does not say when "now" is) the check cannot be made.
    assert ScheduledTaskForm(data(schedule_kind="once", run_at="2026-01-06T09:00")).is_valid()


def test_new_form_shows_the_default_settings() -> None:
    form = ScheduledTaskForm(now=T0)
    values = {
        name: form[name].value()
        for name in ("schedule_kind", "runs", "time_zone", "every", "unit", "catch_up",
                     "max_instances", "max_retries", "retry_backoff_seconds", "priority")
    }  # fmt: skip
    assert values == {
        "schedule_kind": "interval",
        "runs": "code",
        "time_zone": "UTC",
        "every": 1,
        "unit": "hours",
        "catch_up": "run_once",
        "max_instances": 1,
        "max_retries": 0,
        "retry_backoff_seconds": 60,
        "priority": 0,
    }
    assert 'value="1"' in str(form["max_instances"])


def test_edit_form_of_a_cron_task_shows_its_values() -> None:
    task = make_task(
        schedule_kind="cron", cron_expression="0 9 * * 1", time_zone="Asia/Tokyo", priority=4
    )
    form = ScheduledTaskForm(instance=task)
    assert form["schedule_kind"].value() == "cron"
    assert form["cron_expression"].value() == "0 9 * * 1"
    assert form["time_zone"].value() == "Asia/Tokyo"
    assert form["priority"].value() == 4
