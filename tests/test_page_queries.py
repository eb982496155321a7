"""The SQL queries of the task page and the run page are pinned, and do not grow with the
history: ``bench/pages.py`` times the pages with a million runs, these keep their shape. (The
dashboard, the task list and the list of all runs are pinned beside their other tests.)"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scheduled_tasks import services
from scheduled_tasks.models import Execution, ExecutionLogLine
from tests.factories import T0, H, make_execution, make_task

pytestmark = pytest.mark.django_db


def queries(client: Client, url: str, params: dict[str, Any] | None = None) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params or {}).status_code == 200
    return [q["sql"] for q in captured.captured_queries]


def history(task, n: int, status: str = "completed") -> None:
    Execution.objects.bulk_create(
        Execution(
            task=task,
            status=status,
            trigger="schedule",
            scheduled_for=T0 + i * H,
            created_at=T0 + i * H,
            duration_seconds=float(i % 5),
        )
        for i in range(n)
    )


@pytest.mark.parametrize("params", [{}, {"status": "failed"}, {"status": "failed", "page": 2}])
def test_task_page_queries_are_pinned_and_do_not_grow(
    viewer_client: Client, params: dict[str, Any]
) -> None:
    task = make_task(name="busy")
    url = reverse("scheduled_tasks:task_detail", args=[task.pk])
    make_execution(task, status="failed")
    small = queries(viewer_client, url, params)
    history(task, 300)
    Execution.objects.bulk_create(
        Execution(task=task, status="failed", created_at=T0 - i * H) for i in range(60)
    )
    large = queries(viewer_client, url, params)
    assert len(large) == len(small)
    # session, user, the user's permissions (2); the task with its authors and last run; the
    # runs by status (which also say how many the history has: no second COUNT); the page of
    # the history; pending retries; the recent runs' figures.
    assert len(large) == 9
    assert not any(sql.startswith("SELECT COUNT(*)") for sql in large)


def test_run_page_queries_are_pinned_and_do_not_grow(viewer_client: Client) -> None:
    task = make_task(name="busy", code="print(1)")
    services.save_task(task, now=T0, user=None)  # keeps version 1
    history(task, 2)
    run = make_execution(task, status="completed", created_at=T0 + H / 2, output="done")
    run.version_id = task.current_version_id
    run.save(update_fields=["version"])
    url = reverse("scheduled_tasks:execution_detail", args=[run.pk])
    small = queries(viewer_client, url)
    Execution.objects.bulk_create(
        Execution(task=task, status="completed", created_at=T0 - i * H) for i in range(1, 300)
    )
    ExecutionLogLine.objects.bulk_create(
        ExecutionLogLine(execution=run, seq=s, at=T0, level=20, message=f"line {s}")
        for s in range(1, 101)
    )
    large = queries(viewer_client, url)
    assert len(large) == len(small)
    # session, user, the user's permissions (2); the run with its task, canceller and code
    # version; the newer and the older run; the attempts; the log lines.
    assert len(large) == 9
    assert "version 1" in viewer_client.get(url).content.decode()
