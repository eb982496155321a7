"""Seen from outside: a run waiting for a free slot says so on the task list, the task's page
and the run's page; the pages show which runner ran what, at a flat query count."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from scheduled_tasks import last_outcome
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.queue_state import QUEUED_TEXT
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


def page(client: Client, name: str, *args: object) -> str:
    response = client.get(reverse(f"scheduled_tasks:{name}", args=args))
    assert response.status_code == 200
    return response.content.decode()


def test_the_list_shows_a_due_task_queued_and_the_runner_of_the_last_run(
    viewer_client: Client,
) -> None:
    due = make_task(name="due", next_run_at=T0, last_run_at=T0)
    with_last_run(due, "completed", runner="web-1:4242", created_at=T0)
    make_task(name="later", next_run_at=timezone.now() + timedelta(hours=1))
    with_last_run(make_task(name="busy", next_run_at=T0, last_run_at=T0), "running")
    html = page(viewer_client, "task_list")
    rows = {
        row.split("</a>")[0].rsplit(">", 1)[-1]: row for row in html.split('class="task-name"')[1:]
    }
    assert QUEUED_TEXT in rows["due"]
    assert 'data-queue="queued"' in rows["due"]
    assert f'datetime="{T0.isoformat()}"' in rows["due"]  # queued since its slot
    assert "web-1:4242" in rows["due"]
    assert QUEUED_TEXT not in rows["later"]
    assert QUEUED_TEXT not in rows["busy"]  # running: shown as running, not as queued


def test_the_list_shows_the_runner_of_the_latest_run_a_runner_took(viewer_client: Client) -> None:
    task = make_task(name="t", last_run_at=T0)
    make_execution(task, runner="old:1", created_at=T0 - timedelta(hours=2))
    with_last_run(task, "completed", runner="new:2", created_at=T0 - timedelta(hours=1))
    make_execution(task, status="pending", runner="", created_at=T0)  # handed back: no runner
    html = page(viewer_client, "task_list")
    assert "new:2" in html and "old:1" not in html


def test_the_task_page_shows_it_queued_and_each_runs_runner(viewer_client: Client) -> None:
    task = make_task(name="due", next_run_at=T0, last_run_at=T0)
    make_execution(task, runner="host-a:11", created_at=T0 - timedelta(hours=1))
    with_last_run(task, "completed", runner="host-b:22", created_at=T0)
    html = page(viewer_client, "task_detail", task.pk)
    assert QUEUED_TEXT in html
    assert '<th scope="col">Runner</th>' in html
    assert "host-a:11" in html and "host-b:22" in html


def test_the_task_page_shows_a_queued_retry_and_one_waiting_for_its_time(
    viewer_client: Client,
) -> None:
    task = make_task(name="flaky", is_active=False, next_run_at=None, max_retries=3)
    first = make_execution(task, status="failed", runner="h:1", created_at=T0)
    make_execution(task, status="pending", trigger="retry", attempt=2, retry_of=first,
                   not_before=T0 + timedelta(minutes=1), created_at=T0)  # fmt: skip
    later = timezone.now() + timedelta(days=1)
    make_execution(task, status="pending", trigger="retry", attempt=2,
                   not_before=later, created_at=T0)  # fmt: skip
    html = page(viewer_client, "task_detail", task.pk)
    assert html.count('data-queue="queued"') == 2  # in the history and in "Pending retries"
    assert html.count('data-queue="retry"') == 2
    assert f'retry at <time datetime="{later.isoformat()}"' in html


def test_the_run_page_of_a_queued_run_says_it_waits_for_a_free_slot(
    viewer_client: Client,
) -> None:
    task = make_task(name="t")
    queued = make_execution(task, status="pending", trigger="retry", attempt=2,
                            not_before=T0, runner="")  # fmt: skip
    html = page(viewer_client, "execution_detail", queued.pk)
    assert QUEUED_TEXT in html
    assert "http-equiv" not in html  # waiting may be long: no refresh loop
    assert "Queued: waiting for a free slot." in html


def test_the_run_page_of_a_retry_before_its_time_says_when(viewer_client: Client) -> None:
    task = make_task(name="t")
    at = timezone.now() + timedelta(hours=2)
    retry = make_execution(task, status="pending", trigger="retry", attempt=2, not_before=at)
    html = page(viewer_client, "execution_detail", retry.pk)
    assert QUEUED_TEXT not in html
    assert 'data-queue="retry"' in html
    assert "waiting to be retried" in html


def test_the_run_page_shows_its_runner(viewer_client: Client) -> None:
    task = make_task(name="t")
    done = make_execution(task, runner="worker-7:31337")
    html = page(viewer_client, "execution_detail", done.pk)
    assert "<code>worker-7:31337</code>" in html
    assert QUEUED_TEXT not in html


# --- query counts --------------------------------------------------------------------------


def queries(client: Client, name: str, *args: object) -> int:
    with CaptureQueriesContext(connection) as captured:
        page(client, name, *args)
    return len(captured.captured_queries)


def test_the_list_with_queued_tasks_and_runners_keeps_a_flat_query_count(
    viewer_client: Client,
) -> None:
    first = make_task(name="task-00", next_run_at=T0, last_run_at=T0)
    with_last_run(first, "completed", runner="a:1")
    one = queries(viewer_client, "task_list")
    for n in range(1, 20):
        task = make_task(name=f"task-{n:02d}", next_run_at=T0, last_run_at=T0)
        with_last_run(task, "failed", runner=f"a:{n}")
    assert queries(viewer_client, "task_list") == one


def test_the_task_page_with_queued_runs_keeps_a_flat_query_count(viewer_client: Client) -> None:
    task = make_task(name="t", next_run_at=T0)
    make_execution(task, status="pending", not_before=T0, created_at=T0)
    small = queries(viewer_client, "task_detail", task.pk)
    for n in range(20):
        make_execution(task, status="pending", trigger="retry", attempt=2, not_before=T0,
                       runner="" if n % 2 else f"r:{n}", created_at=T0)  # fmt: skip
    assert queries(viewer_client, "task_detail", task.pk) == small
