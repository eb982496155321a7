"""ScheduledTaskForm: the checks every task passes before it is saved (web pages and admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from scheduled_tasks.forms import LocalDateTimeInput, ScheduledTaskForm, next_whole_minute
from scheduled_tasks.models import ScheduledTask
from tests.factories import T0, make_task

pytestmark = pytest.mark.django_db


def data(**overrides: Any) -> dict[str, Any]:
    values = {
        "name": "digest",
        "description": "",
        "code": "print('hi')",
        "every": "1",
        "unit": "hours",
        "anchor": "2026-01-05T09:00",
        "is_active": "on",
        "timeout_seconds": "",
    }
    values.update(overrides)
    return values


def code_errors(code: str) -> list[str]:
    form = ScheduledTaskForm(data(code=code))
    assert not form.is_valid()
    return form.errors["code"]


def test_valid_input_builds_an_unsaved_task() -> None:
    form = ScheduledTaskForm(data(every="15", unit="minutes", timeout_seconds="5"))
    assert form.is_valid(), form.errors
    task = form.save(commit=False)
    assert (task.every, task.unit, task.anchor, task.timeout_seconds) == (15, "minutes", T0, 5)
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


@pytest.mark.parametrize("every", ["0", "-1", "100001", "1.5", ""])
def test_frequency_must_be_a_whole_number_of_at_least_one(every: str) -> None:
    form = ScheduledTaskForm(data(every=every))
    assert not form.is_valid()
    assert "every" in form.errors


def test_frequency_is_capped_per_unit() -> None:
    form = ScheduledTaskForm(data(every="1201", unit="months"))
    assert not form.is_valid()
    assert form.errors["every"] == ["The frequency must be at most 1,200 for months."]
    assert ScheduledTaskForm(data(every="1200", unit="months")).is_valid()


def test_unit_must_be_one_of_the_choices() -> None:
    form = ScheduledTaskForm(data(unit="years"))
    assert not form.is_valid()
    assert "Select a valid choice" in form.errors["unit"][0]


def test_anchor_is_read_in_the_current_time_zone(settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Madrid"
    form = ScheduledTaskForm(data(anchor="2026-01-05T10:00"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["anchor"] == T0  # 10:00 CET is 09:00 UTC
    assert "Entered in Europe/Madrid time." in form.fields["anchor"].help_text


def test_anchor_in_a_skipped_hour_is_refused(settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Madrid"
    form = ScheduledTaskForm(data(anchor="2026-03-29T02:30"))
    assert not form.is_valid()
    assert "Europe/Madrid" in form.errors["anchor"][0]


def test_anchor_with_seconds_is_accepted() -> None:
    form = ScheduledTaskForm(data(anchor="2026-01-05T09:00:30"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["anchor"] == T0.replace(second=30)


def test_new_form_suggests_the_next_whole_minute() -> None:
    now = datetime(2026, 1, 5, 9, 0, 12, 345, tzinfo=UTC)
    form = ScheduledTaskForm(now=now)
    assert form.initial["anchor"] == datetime(2026, 1, 5, 9, 1, tzinfo=UTC)
    assert 'value="2026-01-05T09:01"' in str(form["anchor"])


def test_new_form_without_a_clock_leaves_the_anchor_empty() -> None:
    assert ScheduledTaskForm().initial.get("anchor") is None


def test_edit_form_shows_the_stored_anchor() -> None:
    task = make_task(anchor=T0)
    html = str(ScheduledTaskForm(instance=task, now=T0.replace(hour=12))["anchor"])
    assert 'type="datetime-local"' in html
    assert 'value="2026-01-05T09:00"' in html
    assert "step" not in html


def test_anchor_with_seconds_is_shown_with_seconds_and_a_matching_step() -> None:
    task = make_task(anchor=T0.replace(second=30))
    html = str(ScheduledTaskForm(instance=task)["anchor"])
    assert 'value="2026-01-05T09:00:30"' in html
    assert 'step="1"' in html


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


def test_next_whole_minute_rounds_up() -> None:
    assert next_whole_minute(T0) == T0
    assert next_whole_minute(T0.replace(microsecond=1)) == T0.replace(minute=1)
    assert next_whole_minute(T0.replace(minute=59, second=59)) == T0.replace(hour=10)


def test_local_datetime_input_leaves_strings_alone() -> None:
    widget = LocalDateTimeInput()
    assert widget.format_value("2026-01-05T09:00") == "2026-01-05T09:00"
    assert widget.format_value(None) is None
