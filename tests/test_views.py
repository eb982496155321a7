"""The scheduler's web pages: access rules, create/edit/toggle/run, history and query counts."""

from __future__ import annotations

import itertools
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from scheduled_tasks import registry
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.registry import JobContext
from tests.factories import T0, make_editor, make_execution, make_task, make_user, task_form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(client: Client) -> Client:
    client.force_login(make_user("viewer"))
    return client


@pytest.fixture
def editor() -> Any:
    return make_editor("editor")


@pytest.fixture
def editor_client(client: Client, editor: Any) -> Client:
    client.force_login(editor)
    return client


def form_data(**overrides: Any) -> dict[str, Any]:
    return task_form_data(
        **{
            "name": "Nightly report",
            "description": "Counts open tickets.",
            "code": 'print("hi")',
            "unit": "days",
            **overrides,
        }
    )


def message_texts(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def snapshot(task: ScheduledTask) -> dict[str, Any]:
    task.refresh_from_db()
    return {
        f.name: getattr(task, f.attname)
        for f in ScheduledTask._meta.concrete_fields
        if f.name != "updated_at"
    }


# --- access ----------------------------------------------------------------------------------


def all_urls(task: ScheduledTask, execution: Execution) -> list[tuple[str, str]]:
    return [
        ("get", reverse("scheduled_tasks:task_list")),
        ("get", reverse("scheduled_tasks:task_create")),
        ("get", reverse("scheduled_tasks:task_detail", args=[task.pk])),
        ("get", reverse("scheduled_tasks:task_edit", args=[task.pk])),
        ("post", reverse("scheduled_tasks:task_toggle", args=[task.pk])),
        ("post", reverse("scheduled_tasks:task_run", args=[task.pk])),
        ("get", reverse("scheduled_tasks:execution_detail", args=[execution.pk])),
        ("get", reverse("scheduled_tasks:schedule_preview")),
    ]


def test_every_page_sends_anonymous_visitors_to_the_login_page(client: Client) -> None:
    task = make_task(name="secret")
    execution = make_execution(task)
    before = snapshot(task)
    for method, url in all_urls(task, execution):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"{reverse('login')}?next="), url
    assert snapshot(task) == before
    assert Execution.objects.count() == 1


def test_root_redirects_to_the_task_list(viewer_client: Client) -> None:
    response = viewer_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduled_tasks:task_list")


def test_login_page_renders_and_logs_in(client: Client) -> None:
    make_user("ada")
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content
    response = client.post(reverse("login"), {"username": "ada", "password": "pw-12345-secret"})
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduled_tasks:task_list")


def test_login_page_reports_bad_credentials(client: Client) -> None:
    make_user("ada")
    response = client.post(reverse("login"), {"username": "ada", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_logout_is_a_post_form_in_the_navigation(viewer_client: Client) -> None:
    page = viewer_client.get(reverse("scheduled_tasks:task_list")).content.decode()
    assert f'action="{reverse("logout")}"' in page
    response = viewer_client.post(reverse("logout"))
    assert response.status_code == 302
    assert viewer_client.get(reverse("scheduled_tasks:task_list")).status_code == 302


def test_viewer_sees_the_list_and_the_task_page_without_edit_buttons(
    viewer_client: Client,
) -> None:
    task = make_task(name="visible task")
    execution = make_execution(task, output="all good\n")
    listing = viewer_client.get(reverse("scheduled_tasks:task_list"))
    detail = viewer_client.get(reverse("scheduled_tasks:task_detail", args=[task.pk]))
    run_page = viewer_client.get(reverse("scheduled_tasks:execution_detail", args=[execution.pk]))
    for response in (listing, detail, run_page):
        assert response.status_code == 200
        html = response.content.decode()
        assert "visible task" in html
        assert reverse("scheduled_tasks:task_create") not in html
        assert reverse("scheduled_tasks:task_edit", args=[task.pk]) not in html
        assert reverse("scheduled_tasks:task_toggle", args=[task.pk]) not in html
        assert reverse("scheduled_tasks:task_run", args=[task.pk]) not in html
        assert "Run now" not in html


def test_editor_sees_the_edit_buttons(editor_client: Client) -> None:
    task = make_task(name="editable")
    listing = editor_client.get(reverse("scheduled_tasks:task_list")).content.decode()
    detail = editor_client.get(
        reverse("scheduled_tasks:task_detail", args=[task.pk])
    ).content.decode()
    assert reverse("scheduled_tasks:task_create") in listing
    assert reverse("scheduled_tasks:task_edit", args=[task.pk]) in detail
    assert reverse("scheduled_tasks:task_toggle", args=[task.pk]) in detail
    assert reverse("scheduled_tasks:task_run", args=[task.pk]) in detail
    assert "Admin" not in listing  # not staff


def test_staff_see_the_admin_link(client: Client) -> None:
    client.force_login(make_user("staff", is_staff=True))
    assert (
        reverse("admin:index") in client.get(reverse("scheduled_tasks:task_list")).content.decode()
    )


@pytest.mark.parametrize(
    "method,name",
    [
        ("get", "task_create"),
        ("post", "task_create"),
        ("get", "task_edit"),
        ("post", "task_edit"),
        ("post", "task_toggle"),
        ("post", "task_run"),
    ],
)
def test_viewer_is_refused_every_change(viewer_client: Client, method: str, name: str) -> None:
    task = make_task(name="protected")
    before = snapshot(task)
    args = [] if name == "task_create" else [task.pk]
    response = getattr(viewer_client, method)(
        reverse(f"scheduled_tasks:{name}", args=args), form_data(name="hijacked")
    )
    assert response.status_code == 403
    assert snapshot(task) == before
    assert ScheduledTask.objects.count() == 1
    assert Execution.objects.count() == 0


def test_add_permission_alone_does_not_allow_editing(client: Client) -> None:
    client.force_login(make_user("adder", perms=("add_scheduledtask",)))
    task = make_task()
    assert client.get(reverse("scheduled_tasks:task_create")).status_code == 200
    assert client.get(reverse("scheduled_tasks:task_edit", args=[task.pk])).status_code == 403


def test_toggle_and_run_refuse_get(editor_client: Client) -> None:
    task = make_task()
    for name in ("task_toggle", "task_run"):
        response = editor_client.get(reverse(f"scheduled_tasks:{name}", args=[task.pk]))
        assert response.status_code == 405
    assert ScheduledTask.objects.get().is_active is True


def test_unknown_ids_are_404(editor_client: Client) -> None:
    for name in ("task_detail", "task_edit", "execution_detail"):
        assert editor_client.get(reverse(f"scheduled_tasks:{name}", args=[999])).status_code == 404
    assert editor_client.post(reverse("scheduled_tasks:task_toggle", args=[999])).status_code == 404


# --- list ------------------------------------------------------------------------------------


def test_list_shows_schedule_in_words_status_and_next_run(viewer_client: Client) -> None:
    make_task(name="hourly", every=2, unit="hours", last_status="failed")
    make_task(name="paused", is_active=False, next_run_at=None)
    html = viewer_client.get(reverse("scheduled_tasks:task_list")).content.decode()
    assert "Every 2 hours at minute 00" in html
    assert 'class="badge badge-failed">Failed<' in html
    assert 'class="badge badge-none">Never run<' in html
    assert 'badge-inactive">Inactive<' in html
    assert "2 tasks" in html
    assert "1 failing" in html


def test_list_filters_by_search_state_and_status(viewer_client: Client) -> None:
    make_task(name="invoice reminder", last_status="completed")
    make_task(name="ticket digest", last_status="timeout")
    make_task(name="old cleanup", is_active=False, next_run_at=None)
    url = reverse("scheduled_tasks:task_list")

    def names(**params: str) -> set[str]:
        page = viewer_client.get(url, params).context["page"]
        return {t.name for t in page}

    assert names(q="digest") == {"ticket digest"}
    assert names(state="inactive") == {"old cleanup"}
    assert names(state="active") == {"invoice reminder", "ticket digest"}
    assert names(status="problem") == {"ticket digest"}
    assert names(status="never") == {"old cleanup"}
    assert names(status="completed") == {"invoice reminder"}


def test_list_sorts_by_next_run(viewer_client: Client) -> None:
    make_task(name="a", next_run_at=T0 + timedelta(hours=3))
    make_task(name="b", next_run_at=T0 + timedelta(hours=1))
    make_task(name="c", next_run_at=T0 + timedelta(hours=2))
    page = viewer_client.get(reverse("scheduled_tasks:task_list"), {"sort": "next_run"})
    assert [t.name for t in page.context["page"]] == ["b", "c", "a"]
    page = viewer_client.get(reverse("scheduled_tasks:task_list"), {"sort": "bogus"})
    assert [t.name for t in page.context["page"]] == ["a", "b", "c"]


def test_empty_list_invites_an_editor_to_create_a_task(editor_client: Client) -> None:
    html = editor_client.get(reverse("scheduled_tasks:task_list")).content.decode()
    assert "No scheduled tasks yet" in html
    assert "Create the first task" in html


def list_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("scheduled_tasks:task_list"))
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_task_list_query_count_does_not_grow_with_the_number_of_tasks(
    editor_client: Client, django_assert_num_queries: Any
) -> None:
    first = make_task(name="task-00", last_status="completed", last_run_at=T0)
    make_execution(first)
    one = list_queries(editor_client)
    for n in range(1, 20):
        task = make_task(name=f"task-{n:02d}", last_status="failed", last_run_at=T0)
        make_execution(task, status="failed", error="boom")
    assert list_queries(editor_client) == one
    # session, user, the user's two permission queries, totals, page count, page rows.
    with django_assert_num_queries(7):
        editor_client.get(reverse("scheduled_tasks:task_list"))


def test_task_list_paginates(viewer_client: Client) -> None:
    for n in range(55):
        make_task(name=f"task-{n:03d}")
    first = viewer_client.get(reverse("scheduled_tasks:task_list"))
    second = viewer_client.get(reverse("scheduled_tasks:task_list"), {"page": 2})
    assert len(first.context["page"].object_list) == 50
    assert [t.name for t in second.context["page"]] == [f"task-{n:03d}" for n in range(50, 55)]
    assert "Page 1 of 2" in first.content.decode()


# --- create ----------------------------------------------------------------------------------


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


# --- edit ------------------------------------------------------------------------------------


def test_editor_edits_a_task_and_it_is_rescheduled(editor_client: Client, editor: Any) -> None:
    creator = make_user("creator")
    task = make_task(
        name="digest",
        every=1,
        unit="hours",
        anchor=T0,
        created_by=creator,
        next_run_at=T0,
        last_status="failed",
        last_run_at=T0,
    )
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


# --- toggle ----------------------------------------------------------------------------------


def test_toggle_deactivates_and_activates(editor_client: Client, editor: Any) -> None:
    task = make_task(name="flip", next_run_at=T0)
    url = reverse("scheduled_tasks:task_toggle", args=[task.pk])

    response = editor_client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduled_tasks:task_detail", args=[task.pk])
    task.refresh_from_db()
    assert task.is_active is False
    assert task.next_run_at is None
    assert task.updated_by == editor
    assert any("deactivated" in m for m in message_texts(response))

    response = editor_client.post(url)
    task.refresh_from_db()
    assert task.is_active is True
    assert task.next_run_at == task.first_run_after(timezone.now())
    assert any("activated" in m for m in message_texts(response))


# --- task page and history -------------------------------------------------------------------


def test_task_page_shows_code_schedule_and_upcoming_runs(viewer_client: Client) -> None:
    task = make_task(name="weekly", every=1, unit="weeks", code="a = 1\nprint(a)")
    response = viewer_client.get(reverse("scheduled_tasks:task_detail", args=[task.pk]))
    html = response.content.decode()
    assert "Every week on Monday at 09:00 (UTC)" in html
    assert '<span class="code-line">print(a)' in html
    upcoming = response.context["upcoming"]
    assert len(upcoming) == 5
    assert all(b - a == timedelta(weeks=1) for a, b in itertools.pairwise(upcoming))
    assert "This task has not run yet." in html


def test_history_is_paginated_newest_first(viewer_client: Client) -> None:
    task = make_task(name="busy")
    for n in range(30):
        make_execution(task, created_at=T0 + timedelta(minutes=n), output=f"run {n}\n")
    url = reverse("scheduled_tasks:task_detail", args=[task.pk])
    first = viewer_client.get(url)
    second = viewer_client.get(url, {"page": 2})
    first_page = list(first.context["page"])
    second_page = list(second.context["page"])
    assert len(first_page) == 25
    assert len(second_page) == 5
    assert first_page[0].output_head == "run 29\n"
    assert second_page[-1].output_head == "run 0\n"
    assert "Page 1 of 2" in first.content.decode()
    assert viewer_client.get(url, {"page": "junk"}).status_code == 200


def test_history_rows_show_status_duration_trigger_and_truncation(viewer_client: Client) -> None:
    task = make_task(name="rows")
    make_execution(
        task,
        status="timeout",
        trigger="schedule",
        scheduled_for=T0,
        started_at=T0,
        duration_seconds=10.004,
        slots_covered=3,
        output="partial",
        output_truncated=True,
        error="Timed out after 10 s",
    )
    html = viewer_client.get(
        reverse("scheduled_tasks:task_detail", args=[task.pk])
    ).content.decode()
    assert 'class="badge badge-timeout">Timed out<' in html
    assert "10.00 s" in html
    assert "Schedule" in html
    assert "covers 3 slots" in html
    assert "truncated" in html
    assert "Timed out after 10 s" in html


def test_history_filters_by_status(viewer_client: Client) -> None:
    task = make_task(name="mixed")
    make_execution(task, status="completed")
    make_execution(task, status="failed")
    make_execution(task, status="failed")
    url = reverse("scheduled_tasks:task_detail", args=[task.pk])
    response = viewer_client.get(url, {"status": "failed"})
    assert [e.status for e in response.context["page"]] == ["failed", "failed"]
    assert response.context["total_runs"] == 3
    assert viewer_client.get(url, {"status": "nonsense"}).context["page"].paginator.count == 3


def test_task_page_query_count_does_not_grow_with_history(
    viewer_client: Client,
) -> None:
    task = make_task(name="history")
    make_execution(task)
    url = reverse("scheduled_tasks:task_detail", args=[task.pk])
    with CaptureQueriesContext(connection) as small:
        viewer_client.get(url)
    for _ in range(40):
        make_execution(task)
    with CaptureQueriesContext(connection) as large:
        viewer_client.get(url)
    assert len(large.captured_queries) == len(small.captured_queries)


# --- execution page --------------------------------------------------------------------------


def test_execution_page_shows_output_error_and_details(viewer_client: Client) -> None:
    task = make_task(name="broken")
    older = make_execution(task, created_at=T0)
    execution = make_execution(
        task,
        status="failed",
        trigger="schedule",
        scheduled_for=T0 + timedelta(hours=1),
        slots_covered=2,
        started_at=T0 + timedelta(hours=1),
        finished_at=T0 + timedelta(hours=1, seconds=2),
        duration_seconds=1.5,
        output="step 1 <ok>\n",
        output_truncated=True,
        error="Traceback (most recent call last):\n  Line 3, in <snippet>\nZeroDivisionError: division by zero",
        created_at=T0 + timedelta(hours=1),
    )
    response = viewer_client.get(reverse("scheduled_tasks:execution_detail", args=[execution.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert '<pre class="output" id="execution-output">step 1 &lt;ok&gt;\n</pre>' in html
    assert '<pre class="output output-error">' in html
    assert "Line 3, in &lt;snippet&gt;" in html
    assert "ZeroDivisionError: division by zero" in html
    assert "only its beginning was kept" in html
    assert 'class="badge badge-failed">Failed<' in html
    assert "1.500 s" in html
    assert "missed slots collapsed" in html
    assert response.context["older"].pk == older.pk
    assert response.context["newer"] is None
    assert "http-equiv" not in html  # finished runs do not refresh


def test_a_running_execution_page_refreshes_itself(viewer_client: Client) -> None:
    task = make_task(name="slow")
    execution = make_execution(task, status="running", started_at=T0)
    html = viewer_client.get(
        reverse("scheduled_tasks:execution_detail", args=[execution.pk])
    ).content.decode()
    assert '<meta http-equiv="refresh" content="5">' in html
    assert "No output yet." in html


# --- schedule preview ------------------------------------------------------------------------


def test_schedule_preview_describes_and_lists_the_next_runs(viewer_client: Client) -> None:
    response = viewer_client.get(
        reverse("scheduled_tasks:schedule_preview"),
        {"every": "2", "unit": "days", "anchor": "2026-01-05T09:00"},
    )
    data = response.json()
    assert response.status_code == 200
    assert data["description"] == "Every 2 days at 09:00 (UTC)"
    assert len(data["runs"]) == 5


def test_schedule_preview_explains_bad_input(viewer_client: Client) -> None:
    response = viewer_client.get(
        reverse("scheduled_tasks:schedule_preview"), {"every": "0", "unit": "x", "anchor": ""}
    )
    assert response.status_code == 400
    data = response.json()
    assert data["ok"] is False
    assert len(data["errors"]) == 3
    assert any(e.startswith("Start time:") for e in data["errors"])


# --- run now ---------------------------------------------------------------------------------


@pytest.fixture
def fake_runner(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A stand-in for the runner, to test the view's handling in isolation."""
    from scheduled_tasks.views import runs

    class TaskBusy(Exception):
        pass

    state = types.SimpleNamespace(calls=[], busy=None)

    def run_task_now(task: ScheduledTask, *, now: Any, trigger: str) -> Execution:
        state.calls.append((task.pk, now, trigger))
        if state.busy:
            raise TaskBusy(state.busy)
        return make_execution(
            task, status="failed", trigger=trigger, duration_seconds=0.25, error="Line 1: boom"
        )

    monkeypatch.setattr(runs, "TaskBusy", TaskBusy)
    monkeypatch.setattr(runs, "run_task_now", run_task_now)
    return state


def test_run_now_reports_a_failed_run_and_shows_it(
    editor_client: Client, fake_runner: types.SimpleNamespace
) -> None:
    task = make_task(name="manual")
    response = editor_client.post(reverse("scheduled_tasks:task_run", args=[task.pk]))
    execution = Execution.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduled_tasks:execution_detail", args=[execution.pk])
    assert fake_runner.calls[0][0] == task.pk
    assert fake_runner.calls[0][2] == "manual"
    assert message_texts(response) == ["Ran “manual” now: failed in 0.25 s. See the error below."]


def test_run_now_on_a_busy_task_says_so(
    editor_client: Client, fake_runner: types.SimpleNamespace
) -> None:
    task = make_task(name="manual")
    fake_runner.busy = "Task “manual” is already running; try again when it ends."
    response = editor_client.post(reverse("scheduled_tasks:task_run", args=[task.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduled_tasks:task_detail", args=[task.pk])
    assert message_texts(response) == [fake_runner.busy]
    assert Execution.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_run_now_runs_the_snippet_and_records_its_output(client: Client) -> None:
    client.force_login(make_editor("runner-editor"))
    task = make_task(name="say hi", code='print("hi")')
    response = client.post(reverse("scheduled_tasks:task_run", args=[task.pk]), follow=True)
    execution = Execution.objects.get(task=task)
    assert execution.status == "completed"
    assert execution.output == "hi\n"
    assert execution.trigger == "manual"
    assert response.redirect_chain[-1][0] == reverse(
        "scheduled_tasks:execution_detail", args=[execution.pk]
    )
    html = response.content.decode()
    assert "completed" in html
    assert '<pre class="output" id="execution-output">hi\n</pre>' in html
    task.refresh_from_db()
    assert task.last_status == "completed"


@pytest.mark.django_db(transaction=True)
def test_run_now_records_the_snippets_error_with_its_line(client: Client) -> None:
    client.force_login(make_editor("runner-editor"))
    task = make_task(name="divide", code="x = 1\ny = 0\nprint(x / y)")
    response = client.post(reverse("scheduled_tasks:task_run", args=[task.pk]), follow=True)
    execution = Execution.objects.get(task=task)
    assert execution.status == "failed"
    assert "ZeroDivisionError" in execution.error
    assert "line 3" in execution.error.lower()
    assert "See the error below." in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_run_now_refuses_while_a_run_is_in_progress(client: Client) -> None:
    client.force_login(make_editor("runner-editor"))
    task = make_task(name="long")
    now = timezone.now()
    make_execution(
        task, status="running", started_at=now, lease_expires_at=now + timedelta(hours=1)
    )
    response = client.post(reverse("scheduled_tasks:task_run", args=[task.pk]))
    assert response["Location"] == reverse("scheduled_tasks:task_detail", args=[task.pk])
    assert "already running" in message_texts(response)[0]
    assert Execution.objects.filter(task=task).count() == 1


# --- schedule kinds, zones and registered functions end to end ---------------------------------


MONDAY_0900_UTC = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


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


def test_a_task_whose_function_was_unregistered_says_so(viewer_client: Client) -> None:
    task = make_task(name="orphan", code="", function_name="tests.gone", function_params={})
    html = viewer_client.get(
        reverse("scheduled_tasks:task_detail", args=[task.pk])
    ).content.decode()
    assert "not registered" in html
    assert "tests.gone" in html


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


def test_activating_a_past_one_off_is_refused(editor_client: Client) -> None:
    past = timezone.now() - timedelta(days=1)
    task = make_task(
        name="done", schedule_kind="once", run_at=past, is_active=False, next_run_at=None
    )
    before = snapshot(task)
    response = editor_client.post(reverse("scheduled_tasks:task_toggle", args=[task.pk]))
    assert response.status_code == 302
    assert snapshot(task) == before
    assert "was not activated" in message_texts(response)[0]


def test_list_shows_each_kind_zone_and_function(viewer_client: Client) -> None:
    make_task(name="cron", schedule_kind="cron", cron_expression="30 8 * * MON-FRI",
              time_zone="Europe/Madrid", priority=5)  # fmt: skip
    make_task(name="once", schedule_kind="once", run_at=T0 + timedelta(days=400))
    make_task(name="fn", code="", function_name="crm.something", function_params={})
    html = viewer_client.get(reverse("scheduled_tasks:task_list")).content.decode()
    assert "At 08:30 AM, Monday through Friday (Europe/Madrid)" in html
    assert "Cron expression · Europe/Madrid · priority 5" in html
    assert "Once, at 2027-02-09 09:00 (UTC)" in html
    assert "runs <code>crm.something</code>" in html


def test_list_filters_by_kind(viewer_client: Client) -> None:
    make_task(name="hourly")
    make_task(name="cron", schedule_kind="cron", cron_expression="0 9 * * *")
    page = viewer_client.get(reverse("scheduled_tasks:task_list"), {"kind": "cron"})
    assert [t.name for t in page.context["page"]] == ["cron"]
    everything = viewer_client.get(reverse("scheduled_tasks:task_list"), {"kind": "bogus"})
    assert len(everything.context["page"].object_list) == 2


def test_list_query_count_is_constant_with_every_kind(editor_client: Client) -> None:
    make_task(name="a")
    one = list_queries(editor_client)
    for n in range(10):
        make_task(name=f"cron-{n}", schedule_kind="cron", cron_expression="*/5 * * * *",
                  time_zone="Europe/Madrid")  # fmt: skip
        make_task(name=f"once-{n}", schedule_kind="once", run_at=T0 + timedelta(days=n))
        make_task(name=f"fn-{n}", code="", function_name="x.y", priority=n)
    assert list_queries(editor_client) == one


def test_history_shows_retries_and_skipped_slots(viewer_client: Client) -> None:
    task = make_task(name="flaky", max_retries=2)
    first = make_execution(task, status="failed", trigger="schedule", scheduled_for=T0,
                           started_at=T0, created_at=T0)  # fmt: skip
    second = make_execution(task, status="failed", trigger="retry", attempt=2, retry_of=first,
                            started_at=T0 + timedelta(minutes=1),
                            created_at=T0 + timedelta(minutes=1))  # fmt: skip
    pending = make_execution(task, status="pending", trigger="retry", attempt=3, retry_of=first,
                             not_before=T0 + timedelta(minutes=3),
                             created_at=T0 + timedelta(minutes=2))  # fmt: skip
    make_execution(task, status="skipped", trigger="schedule", scheduled_for=T0 + timedelta(hours=5),
                   slots_covered=0, slots_skipped=4, created_at=T0 + timedelta(hours=5))  # fmt: skip
    response = viewer_client.get(reverse("scheduled_tasks:task_detail", args=[task.pk]))
    html = response.content.decode()
    first_url = reverse("scheduled_tasks:execution_detail", args=[first.pk])
    assert f'attempt 2, retry of <a href="{first_url}">#{first.pk}</a>' in html
    assert f'attempt 3, retry of <a href="{first_url}">#{first.pk}</a>' in html
    assert 'class="badge badge-skipped">Skipped<' in html
    assert "skipped 4 slots" in html
    assert "not before" in html
    assert "Pending retries" in html
    assert [r.pk for r in response.context["pending_retries"]] == [pending.pk]
    assert second.pk != pending.pk


def test_task_page_shows_the_settings(viewer_client: Client) -> None:
    task = make_task(name="tuned", catch_up="skip", grace_seconds=90, max_instances=3,
                     max_retries=4, retry_backoff_seconds=30, priority=-2,
                     time_zone="America/New_York")  # fmt: skip
    html = viewer_client.get(
        reverse("scheduled_tasks:task_detail", args=[task.pk])
    ).content.decode()
    assert "Skip missed slots, run only the latest; skipped when more than 90 s late" in html
    assert "at most 3" in html
    assert "4, first after 30 s, then doubling" in html
    assert "America/New_York" in html
    assert " EST)" in html  # upcoming runs also shown in the task's zone


def test_task_page_query_count_is_the_same_for_a_function_task_with_retries(
    viewer_client: Client,
) -> None:
    plain = make_task(name="plain")
    make_execution(plain)
    fn = make_task(name="fn", code="", function_name="x.y", schedule_kind="cron",
                   cron_expression="0 9 * * *")  # fmt: skip
    first = make_execution(fn, status="failed")
    for attempt in range(2, 6):
        make_execution(fn, status="pending", trigger="retry", attempt=attempt, retry_of=first,
                       not_before=T0)  # fmt: skip
    with CaptureQueriesContext(connection) as small:
        viewer_client.get(reverse("scheduled_tasks:task_detail", args=[plain.pk]))
    with CaptureQueriesContext(connection) as large:
        viewer_client.get(reverse("scheduled_tasks:task_detail", args=[fn.pk]))
    assert len(large.captured_queries) == len(small.captured_queries)


def test_execution_page_shows_the_attempts_of_a_retried_run(viewer_client: Client) -> None:
    task = make_task(name="flaky", max_retries=3)
    first = make_execution(task, status="failed", created_at=T0)
    second = make_execution(task, status="timeout", trigger="retry", attempt=2, retry_of=first,
                            created_at=T0 + timedelta(minutes=1))  # fmt: skip
    third = make_execution(task, status="pending", trigger="retry", attempt=3, retry_of=first,
                           not_before=T0 + timedelta(minutes=5),
                           created_at=T0 + timedelta(minutes=2))  # fmt: skip
    response = viewer_client.get(reverse("scheduled_tasks:execution_detail", args=[second.pk]))
    html = response.content.decode()
    assert [a.pk for a in response.context["attempts"]] == [first.pk, second.pk, third.pk]
    assert "Attempts of this run" in html
    first_url = reverse("scheduled_tasks:execution_detail", args=[first.pk])
    assert f'retry of <a href="{first_url}">#{first.pk}</a>' in html

    pending = viewer_client.get(reverse("scheduled_tasks:execution_detail", args=[third.pk]))
    pending_html = pending.content.decode()
    assert "http-equiv" not in pending_html  # a retry may wait long: no refresh loop
    assert "Not before" in pending_html
    assert "waiting to be retried" in pending_html
    single = viewer_client.get(
        reverse("scheduled_tasks:execution_detail", args=[make_execution(task).pk])
    )
    assert single.context["attempts"] == []


def test_execution_page_of_a_skipped_slot(viewer_client: Client) -> None:
    task = make_task(name="late", grace_seconds=60)
    execution = make_execution(task, status="skipped", trigger="schedule", scheduled_for=T0,
                               slots_covered=0, slots_skipped=3, finished_at=T0)  # fmt: skip
    html = viewer_client.get(
        reverse("scheduled_tasks:execution_detail", args=[execution.pk])
    ).content.decode()
    assert "Slots skipped" in html
    assert "past the grace period" in html
    assert "Not run: the slot was skipped." in html


def test_task_page_words_depend_on_the_status_constants(editor_client: Client) -> None:
    """The templates compare with ``Status`` from the context: a missing one would silently
    make every comparison false."""
    task = make_task(name="busy", last_status=Execution.Status.RUNNING)
    make_execution(task, status=Execution.Status.SKIPPED, started_at=None, slots_skipped=2)
    make_execution(
        task, status=Execution.Status.PENDING, trigger=Execution.Trigger.RETRY, attempt=2,
        not_before=T0,
    )  # fmt: skip
    html = editor_client.get(reverse("scheduled_tasks:task_detail", args=[task.pk])).content
    html = html.decode()
    assert 'title="A run is already in progress"' in html
    assert '<span class="muted">not run</span>' in html
    assert '<span class="muted">not before' in html


def test_execution_error_of_a_function_task_points_to_its_parameters(
    viewer_client: Client,
) -> None:
    task = make_task(name="fn", code="", function_name="x.y")
    execution = make_execution(task, status="failed", error="ValueError: nope")
    html = viewer_client.get(
        reverse("scheduled_tasks:execution_detail", args=[execution.pk])
    ).content.decode()
    assert "The task runs the registered function <code>x.y</code>" in html
    assert "Line numbers refer" not in html


# --- the live preview for every kind -------------------------------------------------------------


def preview(client: Client, **params: str) -> tuple[int, dict[str, Any]]:
    response = client.get(reverse("scheduled_tasks:schedule_preview"), params)
    return response.status_code, response.json()


def test_preview_of_a_cron_schedule_in_its_zone(viewer_client: Client) -> None:
    with time_machine.travel(MONDAY_0900_UTC, tick=False):
        status, data = preview(
            viewer_client,
            schedule_kind="cron",
            cron_expression="30 8 * * MON-FRI",
            time_zone="Europe/Madrid",
        )
    assert status == 200
    assert data["description"] == "At 08:30 AM, Monday through Friday (Europe/Madrid)"
    assert data["time_zone"] == "Europe/Madrid"
    assert [r["iso"] for r in data["runs"][:2]] == [
        "2026-01-06T07:30:00+00:00",
        "2026-01-07T07:30:00+00:00",
    ]
    assert data["runs"][0]["display"] == "Tue 6 Jan 2026, 08:30 CET"


def test_preview_of_a_cron_schedule_across_the_spring_change(viewer_client: Client) -> None:
    with time_machine.travel(datetime(2026, 3, 27, 12, 0, tzinfo=UTC), tick=False):
        _, data = preview(
            viewer_client,
            schedule_kind="cron",
            cron_expression="30 2 * * *",
            time_zone="Europe/Madrid",
        )
    assert [r["display"] for r in data["runs"][:3]] == [
        "Sat 28 Mar 2026, 02:30 CET",
        "Sun 29 Mar 2026, 03:00 CEST",  # 02:30 does not exist: the end of the gap
        "Mon 30 Mar 2026, 02:30 CEST",
    ]


def test_preview_of_a_one_off(viewer_client: Client) -> None:
    with time_machine.travel(MONDAY_0900_UTC, tick=False):
        _, future = preview(
            viewer_client, schedule_kind="once", run_at="2026-02-01T10:00", time_zone="UTC"
        )
        _, past = preview(viewer_client, schedule_kind="once", run_at="2026-01-01T10:00")
    assert future["description"] == "Once, at 2026-02-01 10:00 (UTC)"
    assert [r["iso"] for r in future["runs"]] == ["2026-02-01T10:00:00+00:00"]
    assert future["note"] == ""
    assert past["runs"] == []
    assert "This time has passed" in past["note"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"schedule_kind": "cron", "cron_expression": "0 0 31 2 *"}, "never runs"),
        ({"schedule_kind": "cron", "cron_expression": ""}, "Cron expression: Enter a cron"),
        ({"schedule_kind": "once", "run_at": "soon"}, "Run at: Enter a valid date/time."),
        (
            {"schedule_kind": "cron", "cron_expression": "* * * * *", "time_zone": "Nowhere/X"},
            "Time zone: Unknown time zone “Nowhere/X”",
        ),
        ({"schedule_kind": "weekly"}, "Schedule: Select a valid choice."),
    ],
)
def test_preview_explains_bad_input_of_every_kind(
    viewer_client: Client, params: dict[str, str], message: str
) -> None:
    status, data = preview(viewer_client, **params)
    assert status == 400
    assert data["ok"] is False
    assert any(message in e for e in data["errors"]), data["errors"]


def test_form_page_renders_the_preview_of_a_cron_task(editor_client: Client) -> None:
    task = make_task(name="cron", schedule_kind="cron", cron_expression="0 9 * * *")
    html = editor_client.get(reverse("scheduled_tasks:task_edit", args=[task.pk])).content.decode()
    assert '<p class="preview-description">At 09:00 AM (UTC)</p>' in html


# --- error pages ---------------------------------------------------------------------------------


def test_permission_errors_and_missing_pages_use_the_app_layout(viewer_client: Client) -> None:
    forbidden = viewer_client.get(reverse("scheduled_tasks:task_create"))
    missing = viewer_client.get(reverse("scheduled_tasks:task_detail", args=[999]))
    nowhere = viewer_client.get("/no/such/page/")
    assert forbidden.status_code == 403
    assert missing.status_code == 404
    assert nowhere.status_code == 404
    for response, heading in [
        (forbidden, "You cannot do that"),
        (missing, "Page not found"),
        (nowhere, "Page not found"),
    ]:
        html = response.content.decode()
        assert heading in html
        assert "TicketProo" in html
        assert "scheduled_tasks/scheduler.css" in html
        assert reverse("scheduled_tasks:task_list") in html
