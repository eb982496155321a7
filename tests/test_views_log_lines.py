"""A run's log lines on its page and in the admin (``views.runs``, ``admin``)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scheduled_tasks import loglines
from scheduled_tasks.models import Execution, ExecutionLogLine
from tests.factories import T0, make_execution, make_task

pytestmark = pytest.mark.django_db


def add_lines(execution: Execution, *messages: str, level: int = logging.INFO) -> None:
    start = execution.log_lines.count()
    ExecutionLogLine.objects.bulk_create(
        ExecutionLogLine(
            execution=execution,
            seq=start + n + 1,
            at=T0 + timedelta(seconds=n),
            level=level,
            message=message,
        )
        for n, message in enumerate(messages)
    )


def page(client: Client, execution: Execution) -> str:
    response = client.get(reverse("scheduled_tasks:execution_detail", args=[execution.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_shows_the_lines_in_order_with_time_and_level(viewer_client: Client) -> None:
    execution = make_execution(make_task(), started_at=T0)
    add_lines(execution, "first line", "second line")
    add_lines(execution, "something odd", level=logging.WARNING)
    html = page(viewer_client, execution)
    assert html.index("first line") < html.index("second line") < html.index("something odd")
    assert "WARNING" in html and "INFO" in html
    assert f'datetime="{T0.isoformat()}"' in html
    assert "more lines than are kept" not in html


def test_hostile_lines_are_shown_escaped(viewer_client: Client) -> None:
    execution = make_execution(make_task())
    add_lines(execution, "<script>alert(1)</script> \x1b[31mred \u2028 \u202eevil")
    html = page(viewer_client, execution)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<bdi>" in html  # a bidi override cannot reorder the rest of the row


def test_a_cut_log_is_noted(viewer_client: Client) -> None:
    execution = make_execution(make_task())
    add_lines(execution, "kept")
    add_lines(execution, loglines.MORE_NOT_STORED, level=logging.WARNING)
    html = page(viewer_client, execution)
    assert "more lines than are kept" in html


def test_a_run_without_lines_says_so(viewer_client: Client) -> None:
    html = page(viewer_client, make_execution(make_task()))
    assert "The run logged nothing." in html
    running = make_execution(make_task(), status="running", started_at=T0)
    assert "Nothing logged yet." in page(viewer_client, running)


def test_the_page_query_count_does_not_grow_with_the_lines(viewer_client: Client) -> None:
    def count(execution: Execution) -> int:
        with CaptureQueriesContext(connection) as queries:
            page(viewer_client, execution)
        return len(queries)

    few = make_execution(make_task(name="few"))
    add_lines(few, "one")
    many = make_execution(make_task(name="many"))
    add_lines(many, *[f"line {n}" for n in range(200)])
    assert count(few) == count(many)


def test_the_admin_shows_the_lines_read_only(admin_client: Client) -> None:
    execution = make_execution(make_task())
    add_lines(execution, "<b>from the run</b>", level=logging.ERROR)
    url = reverse("admin:scheduled_tasks_execution_change", args=[execution.pk])
    html = admin_client.get(url).content.decode()
    assert "&lt;b&gt;from the run&lt;/b&gt;" in html
    assert "ERROR" in html
    assert 'name="log_lines-0-message"' not in html  # no editable field


def test_the_admin_query_count_does_not_grow_with_the_lines(
    admin_client: Client, django_assert_max_num_queries: Any
) -> None:
    execution = make_execution(make_task())
    add_lines(execution, *[f"line {n}" for n in range(100)])
    url = reverse("admin:scheduled_tasks_execution_change", args=[execution.pk])
    with django_assert_max_num_queries(15):
        admin_client.get(url)


def test_deleting_an_execution_deletes_its_lines() -> None:
    execution = make_execution(make_task())
    add_lines(execution, "gone with it")
    execution.delete()
    assert not ExecutionLogLine.objects.exists()
