"""Bulk actions on the task list (``views.task_actions.task_bulk``): a confirmation page, then
enable / disable / run now / delete, each behind its own permission, with CSRF; and the list
staying cheap with 10 000 tasks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.views.task_actions import MAX_BULK_TASKS
from tests.conftest import message_texts
from tests.factories import T0, make_task, make_user

pytestmark = pytest.mark.django_db

BULK = reverse("scheduled_tasks:task_bulk")
LIST = reverse("scheduled_tasks:task_list")
ALL_PERMS = ("view_scheduledtask", "change_scheduledtask", "run_scheduledtask",
             "delete_scheduledtask", "add_scheduledtask")  # fmt: skip


def login(client: Client, *perms: str) -> Client:
    client.force_login(make_user("staffer", perms=perms))
    return client


def post(client: Client, action: str, tasks: list[ScheduledTask], **extra: Any) -> Any:
    data = {"action": action, "ids": [t.pk for t in tasks], **extra}
    return client.post(BULK, data)


def test_list_offers_the_actions_the_user_may_take(client: Client) -> None:
    make_task(name="a")
    login(client, "view_scheduledtask", "change_scheduledtask")
    response = client.get(LIST)
    html = response.content.decode()
    assert [key for key, _ in response.context["bulk_actions"]] == ["enable", "disable"]
    assert 'name="ids"' in html
    assert 'name="all_on_page"' in html
    assert f'action="{BULK}"' in html


def test_a_viewer_gets_no_checkboxes(client: Client) -> None:
    make_task(name="a")
    login(client, "view_scheduledtask")
    html = client.get(LIST).content.decode()
    assert 'name="ids"' not in html
    assert BULK not in html


def test_the_first_post_only_asks_for_confirmation(client: Client) -> None:
    login(client, *ALL_PERMS)
    a, b = make_task(name="alpha"), make_task(name="beta")
    response = post(client, "disable", [a, b])
    html = response.content.decode()
    assert response.status_code == 200
    assert "Disable 2 tasks" in html
    assert "alpha" in html and "beta" in html
    assert 'name="confirmed" value="1"' in html
    assert ScheduledTask.objects.filter(is_active=True).count() == 2


def test_disable_then_enable_after_confirmation(client: Client) -> None:
    login(client, *ALL_PERMS)
    a, b = make_task(name="alpha"), make_task(name="beta", is_active=False)
    response = post(client, "disable", [a, b], confirmed="1", next=LIST + "?q=al")
    assert response.status_code == 302
    assert response["Location"] == LIST + "?q=al"
    assert "1 task disabled (1 already disabled)." in message_texts(response)
    assert not ScheduledTask.objects.filter(is_active=True).exists()

    response = post(client, "enable", [a, b], confirmed="1")
    assert response["Location"] == LIST
    assert "2 tasks enabled." in message_texts(response)
    assert ScheduledTask.objects.filter(is_active=True, next_run_at__isnull=False).count() == 2


def test_enable_reports_a_task_that_cannot_run(client: Client) -> None:
    login(client, *ALL_PERMS)
    ok = make_task(name="hourly", is_active=False)
    past = make_task(name="old one-off", schedule_kind="once", run_at=T0, is_active=False,
                     next_run_at=None)  # fmt: skip
    response = post(client, "enable", [ok, past], confirmed="1")
    texts = message_texts(response)
    assert "1 task enabled." in texts
    assert any("old one-off" in text for text in texts[1:])
    past.refresh_from_db()
    assert not past.is_active


def test_run_now_queues_one_manual_run_per_task(client: Client) -> None:
    login(client, *ALL_PERMS)
    a, b = make_task(name="alpha"), make_task(name="beta", is_active=False)
    response = post(client, "run", [a, b], confirmed="1")
    assert "2 tasks queued to run now" in message_texts(response)[0]
    runs = Execution.objects.order_by("task__name")
    assert [(r.task_id, r.status, r.trigger) for r in runs] == [
        (a.pk, "pending", "manual"),
        (b.pk, "pending", "manual"),
    ]


def test_delete_removes_the_tasks_and_their_runs(client: Client) -> None:
    login(client, *ALL_PERMS)
    a, b, kept = make_task(name="alpha"), make_task(name="beta"), make_task(name="kept")
    Execution.objects.create(task=a, status="completed", trigger="manual")
    confirm = post(client, "delete", [a, b])
    assert "cannot be undone" in confirm.content.decode()
    response = post(client, "delete", [a, b], confirmed="1")
    assert "2 tasks deleted with their run history." in message_texts(response)
    assert list(ScheduledTask.objects.values_list("name", flat=True)) == [kept.name]
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    ("action", "perms"),
    [
        ("enable", ("view_scheduledtask", "run_scheduledtask")),
        ("disable", ("view_scheduledtask", "run_scheduledtask")),
        ("run", ("view_scheduledtask", "change_scheduledtask")),
        ("delete", ("view_scheduledtask", "change_scheduledtask", "run_scheduledtask")),
    ],
)
def test_each_action_needs_its_permission(client: Client, action: str, perms: tuple) -> None:
    login(client, *perms)
    task = make_task(name="alpha")
    assert post(client, action, [task]).status_code == 403
    assert post(client, action, [task], confirmed="1").status_code == 403
    task.refresh_from_db()
    assert task.is_active
    assert not Execution.objects.exists()


def test_anonymous_users_are_sent_to_log_in(client: Client) -> None:
    task = make_task(name="alpha")
    response = post(client, "delete", [task], confirmed="1")
    assert response.status_code == 302
    assert reverse("login") in response["Location"]
    assert ScheduledTask.objects.exists()


def test_a_post_without_the_csrf_token_is_refused() -> None:
    client = Client(enforce_csrf_checks=True)
    login(client, *ALL_PERMS)
    task = make_task(name="alpha")
    assert post(client, "delete", [task], confirmed="1").status_code == 403
    assert ScheduledTask.objects.exists()


def test_get_is_not_allowed(client: Client) -> None:
    login(client, *ALL_PERMS)
    assert client.get(BULK).status_code == 405


def test_all_on_this_page_uses_the_pages_tasks(client: Client) -> None:
    login(client, *ALL_PERMS)
    a, b, other = make_task(name="alpha"), make_task(name="beta"), make_task(name="other")
    response = client.post(BULK, {"action": "disable", "all_on_page": "1", "ids": [a.pk],
                                  "page_ids": [a.pk, b.pk], "confirmed": "1"})  # fmt: skip
    assert "2 tasks disabled." in message_texts(response)
    assert list(ScheduledTask.objects.filter(is_active=True)) == [other]


def test_nothing_selected_says_so(client: Client) -> None:
    login(client, *ALL_PERMS)
    make_task(name="alpha")
    response = client.post(BULK, {"action": "disable"})
    assert response.status_code == 302
    assert "Select at least one task first." in message_texts(response)


@pytest.mark.parametrize(
    "data",
    [
        {"action": "explode", "ids": ["1"]},
        {"action": "disable", "ids": ["1", "x"]},
        {"action": "disable", "ids": [str(n) for n in range(MAX_BULK_TASKS + 1)]},
    ],
)
def test_bad_input_is_a_400(client: Client, data: dict) -> None:
    login(client, *ALL_PERMS)
    assert client.post(BULK, data).status_code == 400


def test_a_foreign_next_url_is_ignored(client: Client) -> None:
    login(client, *ALL_PERMS)
    task = make_task(name="alpha")
    response = post(client, "disable", [task], confirmed="1", next="https://evil.example/")
    assert response["Location"] == LIST


# --- the list with 10 000 tasks -------------------------------------------------------------


def test_filters_and_pages_stay_cheap_with_ten_thousand_tasks(client: Client) -> None:
    now = timezone.now()
    ScheduledTask.objects.bulk_create(
        [
            ScheduledTask(
                name=f"task-{n:05d}",
                code="print(1)",
                every=1,
                unit="hours",
                anchor=T0,
                is_active=n % 3 != 0,
                next_run_at=now + timedelta(minutes=n),
            )
            for n in range(10_000)
        ],
        batch_size=1000,
    )
    login(client, *ALL_PERMS)
    queries = []
    for params in ({}, {"page": 100}, {"q": "task-09", "state": "active", "page": 3},
                   {"kind": "interval", "sort": "-next_run", "page": 50}):  # fmt: skip
        with CaptureQueriesContext(connection) as captured:
            response = client.get(LIST, params)
        assert response.status_code == 200
        assert len(response.context["page"].object_list) == 50
        queries.append(len(captured.captured_queries))
    # session, user, permissions (2), totals with the page count, page rows: never one per row.
    assert queries == [6, 6, 6, 6]
    page = client.get(LIST, {"q": "task-09", "state": "active", "page": 3}).context["page"]
    assert page.paginator.count == 666  # task-09000 .. task-09999 less every third
    assert all(t.is_active and t.name.startswith("task-09") for t in page)
