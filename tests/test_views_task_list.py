"""The task list (``views.tasks.task_list``): schedules in words, filters, sorting,
pagination and a query count that does not grow with the tasks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scheduled_tasks import last_outcome
from scheduled_tasks.models import ScheduledTask
from tests.factories import T0, make_execution, make_task

pytestmark = pytest.mark.django_db


def with_last_run(task: ScheduledTask, status: str, **fields: Any) -> ScheduledTask:
    """``task`` whose latest run (the one it points at) has ``status``: its last status."""
    task.last_execution = make_execution(task, status=status, **fields)
    ScheduledTask.objects.filter(pk=task.pk).update(
        last_execution=task.last_execution,
        last_failed=last_outcome.is_failing(task.last_execution.status),
    )
    return task


def test_list_shows_schedule_in_words_status_and_next_run(viewer_client: Client) -> None:
    with_last_run(make_task(name="hourly", every=2, unit="hours"), "failed")
    make_task(name="paused", is_active=False, next_run_at=None)
    html = viewer_client.get(reverse("scheduled_tasks:task_list")).content.decode()
    assert "Every 2 hours at minute 00" in html
    assert 'class="badge badge-failed">Failed<' in html
    assert 'class="badge badge-none">Never run<' in html
    assert 'badge-inactive">Inactive<' in html
    assert "2 tasks" in html
    assert "1 failing" in html


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


def test_list_filters_by_search_state_and_status(viewer_client: Client) -> None:
    with_last_run(make_task(name="invoice reminder"), "completed")
    with_last_run(make_task(name="ticket digest"), "timeout")
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


def test_list_filters_by_kind(viewer_client: Client) -> None:
    make_task(name="hourly")
    make_task(name="cron", schedule_kind="cron", cron_expression="0 9 * * *")
    page = viewer_client.get(reverse("scheduled_tasks:task_list"), {"kind": "cron"})
    assert [t.name for t in page.context["page"]] == ["cron"]
    everything = viewer_client.get(reverse("scheduled_tasks:task_list"), {"kind": "bogus"})
    assert len(everything.context["page"].object_list) == 2


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


def test_task_list_paginates(viewer_client: Client) -> None:
    for n in range(55):
        make_task(name=f"task-{n:03d}")
    first = viewer_client.get(reverse("scheduled_tasks:task_list"))
    second = viewer_client.get(reverse("scheduled_tasks:task_list"), {"page": 2})
    assert len(first.context["page"].object_list) == 50
    assert [t.name for t in second.context["page"]] == [f"task-{n:03d}" for n in range(50, 55)]
    assert "Page 1 of 2" in first.content.decode()


# --- query counts --------------------------------------------------------------------------


def list_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("scheduled_tasks:task_list"))
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_task_list_query_count_does_not_grow_with_the_number_of_tasks(
    editor_client: Client, django_assert_num_queries: Any
) -> None:
    with_last_run(make_task(name="task-00", last_run_at=T0), "completed")
    one = list_queries(editor_client)
    for n in range(1, 20):
        task = make_task(name=f"task-{n:02d}", last_run_at=T0)
        with_last_run(task, "failed", error="boom")
    assert list_queries(editor_client) == one
    # session, user, the user's two permission queries, the totals (with the count of the
    # tasks the filters match: the page count), the page's rows.
    with django_assert_num_queries(6):
        editor_client.get(reverse("scheduled_tasks:task_list"))


def test_list_query_count_is_constant_with_every_kind(editor_client: Client) -> None:
    make_task(name="a")
    one = list_queries(editor_client)
    for n in range(10):
        make_task(name=f"cron-{n}", schedule_kind="cron", cron_expression="*/5 * * * *",
                  time_zone="Europe/Madrid")  # fmt: skip
        make_task(name=f"once-{n}", schedule_kind="once", run_at=T0 + timedelta(days=n))
        make_task(name=f"fn-{n}", code="", function_name="x.y", priority=n)
    assert list_queries(editor_client) == one


def test_status_filters_read_the_latest_run_only(viewer_client: Client) -> None:
    recovered = make_task(name="recovered")
    make_execution(recovered, status="failed", created_at=T0)
    with_last_run(recovered, "completed", created_at=T0 + timedelta(hours=1))
    make_execution(recovered, status="failed", trigger="test", created_at=T0 + timedelta(hours=2))
    broken = with_last_run(make_task(name="broken"), "abandoned")
    make_task(name="tested only").executions.create(status="completed", trigger="test")
    url = reverse("scheduled_tasks:task_list")

    def names(**params: str) -> set[str]:
        return {t.name for t in viewer_client.get(url, params).context["page"]}

    assert names(status="failed") == set()  # an older run and a test run do not count
    assert names(status="completed") == {"recovered"}
    assert names(status="problem") == {broken.name}
    assert names(status="never") == {"tested only"}
    assert viewer_client.get(url).context["totals"]["problems"] == 1
