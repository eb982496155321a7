"""The scheduler's Django admin: pages render, saves validate code like the web form, actions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scheduled_tasks import last_outcome
from scheduled_tasks.models import Execution, ScheduledTask
from tests.factories import T0, make_execution, make_task, make_user, task_form_data

pytestmark = pytest.mark.django_db


def with_last_run(task: ScheduledTask, status: str, **fields: Any) -> ScheduledTask:
    """``task`` whose latest run (the one it points at) has ``status``: its last status."""
    task.last_execution = make_execution(task, status=status, **fields)
    ScheduledTask.objects.filter(pk=task.pk).update(
        last_execution=task.last_execution,
        last_failed=last_outcome.is_failing(task.last_execution.status),
    )
    return task


@pytest.fixture
def superuser() -> User:
    return User.objects.create_superuser("root", "root@example.com", "pw-12345-secret")


@pytest.fixture
def admin_client(client: Client, superuser: User) -> Client:
    client.force_login(superuser)
    return client


def admin_data(**overrides: Any) -> dict[str, Any]:
    return task_form_data(
        **{"name": "admin task", "every": "2", "code": "print('from admin')", **overrides}
    )


def test_task_changelist_renders_with_schedule_and_status(admin_client: Client) -> None:
    with_last_run(make_task(name="hourly", every=1, unit="hours", last_run_at=T0), "timeout")
    make_task(name="never", is_active=False, next_run_at=None)
    response = admin_client.get(reverse("admin:scheduled_tasks_scheduledtask_changelist"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Every hour at minute 00" in html
    assert "Timed out" in html
    assert "never run" in html
    assert "column-schedule_kind" in html
    assert "column-priority" in html


def test_task_changelist_search_and_filters_work(admin_client: Client) -> None:
    with_last_run(make_task(name="findme"), "failed")
    make_task(name="other", is_active=False, next_run_at=None)
    url = reverse("admin:scheduled_tasks_scheduledtask_changelist")

    def names(**params: str) -> list[str]:
        response = admin_client.get(url, params)
        assert response.status_code == 200
        return [t.name for t in response.context["cl"].result_list]

    assert names(q="findme") == ["findme"]
    assert names(is_active__exact="0") == ["other"]
    assert names(last_status="failed") == ["findme"]
    assert names(last_status="never") == ["other"]
    assert "Never run" in admin_client.get(url).content.decode()


def test_task_change_page_renders_with_recent_executions(admin_client: Client) -> None:
    task = make_task(name="with history")
    execution = make_execution(task, status="failed", started_at=T0)
    response = admin_client.get(
        reverse("admin:scheduled_tasks_scheduledtask_change", args=[task.pk])
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="code-input' in html
    assert 'type="datetime-local"' in html
    for name in ("schedule_kind", "time_zone", "cron_expression", "run_at", "runs",
                 "function_name", "function_params", "catch_up", "grace_seconds",
                 "max_instances", "max_retries", "retry_backoff_seconds", "priority"):  # fmt: skip
        assert f'name="{name}"' in html, name
    assert "scheduled_tasks/admin.js" in html
    assert reverse("admin:scheduled_tasks_execution_change", args=[execution.pk]) in html
    assert f"?task__id__exact={task.pk}" in html
    assert "scheduled_tasks/admin.css" in html


def test_task_add_page_suggests_a_start_time(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:scheduled_tasks_scheduledtask_add"))
    assert response.status_code == 200
    anchor = response.context["adminform"].form.initial["anchor"]
    assert anchor.second == 0
    assert anchor >= timezone.now() - timedelta(minutes=1)


def test_admin_add_sets_authors_and_next_run(admin_client: Client, superuser: User) -> None:
    response = admin_client.post(reverse("admin:scheduled_tasks_scheduledtask_add"), admin_data())
    assert response.status_code == 302
    task = ScheduledTask.objects.get()
    assert task.created_by == superuser
    assert task.updated_by == superuser
    assert task.next_run_at == task.first_run_after(timezone.now())


def test_admin_edit_reschedules_and_keeps_the_creator(
    admin_client: Client, superuser: User
) -> None:
    creator = make_user("creator")
    task = with_last_run(make_task(name="admin task", created_by=creator, next_run_at=T0), "failed")
    response = admin_client.post(
        reverse("admin:scheduled_tasks_scheduledtask_change", args=[task.pk]),
        admin_data(every="1", unit="days", anchor="2026-01-05T06:15"),
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.created_by == creator
    assert task.updated_by == superuser
    assert (task.next_run_at.hour, task.next_run_at.minute) == (6, 15)
    assert task.next_run_at > timezone.now()
    assert task.last_status == "failed"


@pytest.mark.parametrize(
    "code,message",
    [
        ("x = 1\ny = x._private", "Line 2:"),
        ("def broken(:\n    pass", "Line 1: SyntaxError"),
        ("   ", "The code is empty."),
    ],
)
def test_admin_save_validates_code_like_the_web_form(
    admin_client: Client, code: str, message: str
) -> None:
    task = make_task(name="admin task", code="print('stored')")
    response = admin_client.post(
        reverse("admin:scheduled_tasks_scheduledtask_change", args=[task.pk]),
        admin_data(code=code),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["code"]
    assert any(message in e for e in errors)
    task.refresh_from_db()
    assert task.code == "print('stored')"


def test_admin_add_with_bad_code_saves_nothing(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:scheduled_tasks_scheduledtask_add"), admin_data(code="a._b")
    )
    assert response.status_code == 200
    assert ScheduledTask.objects.count() == 0


def test_admin_refuses_an_every_of_zero(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:scheduled_tasks_scheduledtask_add"), admin_data(every="0")
    )
    assert "every" in response.context["adminform"].form.errors
    assert ScheduledTask.objects.count() == 0


def test_activate_and_deactivate_actions(admin_client: Client, superuser: User) -> None:
    on = make_task(name="on", next_run_at=T0)
    off = make_task(name="off", is_active=False, next_run_at=None)
    url = reverse("admin:scheduled_tasks_scheduledtask_changelist")

    admin_client.post(url, {"action": "deactivate_tasks", "_selected_action": [on.pk, off.pk]})
    on.refresh_from_db()
    assert on.is_active is False
    assert on.next_run_at is None
    assert on.updated_by == superuser

    response = admin_client.post(
        url, {"action": "activate_tasks", "_selected_action": [on.pk, off.pk]}, follow=True
    )
    assert "Activated 2 tasks." in response.content.decode()
    now = timezone.now()
    for task in (on, off):
        task.refresh_from_db()
        assert task.is_active is True
        assert task.next_run_at == task.first_run_after(now)


def test_actions_need_the_change_permission(client: Client) -> None:
    staff = make_user("looker", perms=("view_scheduledtask",), is_staff=True)
    client.force_login(staff)
    response = client.get(reverse("admin:scheduled_tasks_scheduledtask_changelist"))
    assert response.status_code == 200
    assert "activate_tasks" not in response.content.decode()


def test_execution_changelist_renders(admin_client: Client) -> None:
    task = make_task(name="ran")
    make_execution(task, status="completed", trigger="schedule", scheduled_for=T0, started_at=T0)
    make_execution(task, status="failed", trigger="manual", started_at=T0, duration_seconds=1.25)
    url = reverse("admin:scheduled_tasks_execution_changelist")
    response = admin_client.get(url)
    assert response.status_code == 200
    assert "ran" in response.content.decode()
    filtered = admin_client.get(url, {"status__exact": "failed", "task__id__exact": task.pk})
    assert [e.status for e in filtered.context["cl"].result_list] == ["failed"]


def test_execution_changelist_query_count_does_not_grow(
    admin_client: Client, django_assert_max_num_queries: Any
) -> None:
    for n in range(5):
        make_execution(make_task(name=f"t{n}"))
    url = reverse("admin:scheduled_tasks_execution_changelist")
    with django_assert_max_num_queries(12):
        admin_client.get(url)


def test_executions_are_read_only(admin_client: Client) -> None:
    execution = make_execution(make_task(), output="kept", error="Line 1: boom")
    response = admin_client.get(
        reverse("admin:scheduled_tasks_execution_change", args=[execution.pk])
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Line 1: boom" in html
    assert 'name="_save"' not in html
    assert admin_client.get(reverse("admin:scheduled_tasks_execution_add")).status_code == 403
    posted = admin_client.post(
        reverse("admin:scheduled_tasks_execution_change", args=[execution.pk]),
        {"status": "completed", "output": "rewritten"},
    )
    assert posted.status_code == 403
    execution.refresh_from_db()
    assert (execution.status, execution.output) == ("completed", "kept")


def test_deleting_a_task_with_history_works_in_the_admin(admin_client: Client) -> None:
    task = make_task(name="doomed")
    make_execution(task)
    response = admin_client.post(
        reverse("admin:scheduled_tasks_scheduledtask_delete", args=[task.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert ScheduledTask.objects.count() == 0
    assert Execution.objects.count() == 0


def test_task_changelist_filters_by_kind_and_priority(admin_client: Client) -> None:
    make_task(name="hourly", priority=5)
    make_task(name="cron", schedule_kind="cron", cron_expression="0 9 * * *")
    url = reverse("admin:scheduled_tasks_scheduledtask_changelist")

    def names(**params: str) -> list[str]:
        response = admin_client.get(url, params)
        assert response.status_code == 200
        return [t.name for t in response.context["cl"].result_list]

    assert names(schedule_kind__exact="cron") == ["cron"]
    assert names(priority__exact="5") == ["hourly"]
    assert "At 09:00 AM (UTC)" in admin_client.get(url).content.decode()


def test_admin_adds_a_cron_task_in_its_zone(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:scheduled_tasks_scheduledtask_add"),
        admin_data(
            schedule_kind="cron",
            cron_expression="30 8 * * MON-FRI",
            time_zone="Europe/Madrid",
            every="",
            anchor="",
            max_retries="3",
            priority="9",
        ),
    )
    assert response.status_code == 302
    task = ScheduledTask.objects.get()
    assert (task.schedule_kind, task.cron_expression, task.time_zone) == (
        "cron",
        "30 8 * * MON-FRI",
        "Europe/Madrid",
    )
    assert (task.max_retries, task.priority) == (3, 9)
    assert task.next_run_at == task.first_run_after(timezone.now())
    local = task.next_run_at.astimezone(ZoneInfo("Europe/Madrid"))
    assert (local.hour, local.minute, local.weekday() < 5) == (8, 30, True)


def test_admin_adds_a_one_off_task(admin_client: Client) -> None:
    when = (timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)
    response = admin_client.post(
        reverse("admin:scheduled_tasks_scheduledtask_add"),
        admin_data(schedule_kind="once", run_at=when.strftime("%Y-%m-%dT%H:%M")),
    )
    assert response.status_code == 302
    task = ScheduledTask.objects.get()
    assert task.run_at == when
    assert task.next_run_at == when


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"schedule_kind": "cron", "cron_expression": "0 0 31 2 *"}, "cron_expression", "never"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "Unknown time zone"),
        ({"schedule_kind": "once", "run_at": "2020-01-01T09:00"}, "run_at", "in the past"),
        ({"max_retries": "-2"}, "max_retries", "Retries must be a whole number from 0 to 20."),
        ({"runs": "function", "function_name": "no.such"}, "function_name", "not a registered"),
    ],
)
def test_admin_refuses_bad_schedules_and_settings(
    admin_client: Client, overrides: dict[str, str], field: str, message: str
) -> None:
    response = admin_client.post(
        reverse("admin:scheduled_tasks_scheduledtask_add"), admin_data(**overrides)
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors[field]
    assert any(message in e for e in errors), errors
    assert ScheduledTask.objects.count() == 0


def test_admin_add_page_suggests_a_one_off_time(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:scheduled_tasks_scheduledtask_add"))
    initial = response.context["adminform"].form.initial
    assert initial["run_at"] == initial["anchor"]


def test_execution_change_page_shows_retries(admin_client: Client) -> None:
    task = make_task(name="flaky")
    first = make_execution(task, status="failed")
    retry = make_execution(task, status="pending", trigger="retry", attempt=2, retry_of=first,
                           not_before=T0)  # fmt: skip
    html = admin_client.get(
        reverse("admin:scheduled_tasks_execution_change", args=[retry.pk])
    ).content.decode()
    assert "Retry of" in html
    assert "Not before" in html
    assert "Slots skipped" in html
    listing = admin_client.get(reverse("admin:scheduled_tasks_execution_changelist"))
    assert "column-attempt" in listing.content.decode()
