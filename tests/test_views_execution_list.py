"""``/tasks/executions/``: every run newest first, filters, pages by key, query count pinned."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from scheduled_tasks.models import Execution
from scheduled_tasks.views import executions as view
from tests.factories import T0, H, make_execution, make_task, make_user

pytestmark = pytest.mark.django_db

URL = "/tasks/executions/"
S = Execution.Status


def listed(client: Client, **params: Any) -> list[int]:
    response = client.get(URL, params)
    assert response.status_code == 200
    return [e.pk for e in response.context["executions"]]


def test_the_url_is_named() -> None:
    assert reverse("scheduled_tasks:execution_list") == URL


def test_runs_are_listed_newest_first_with_links_badges_and_zoned_times(
    viewer_client: Client,
) -> None:
    task = make_task(name="<i>nightly</i>")
    old = make_execution(task, status=S.COMPLETED, created_at=T0, started_at=T0, runner="h:1")
    new = make_execution(task, status=S.FAILED, created_at=T0 + H, duration_seconds=1.5)
    response = viewer_client.get(URL)
    page = response.content.decode()
    assert [e.pk for e in response.context["executions"]] == [new.pk, old.pk]
    assert f'href="{reverse("scheduled_tasks:execution_detail", args=[new.pk])}"' in page
    assert f'href="{reverse("scheduled_tasks:task_detail", args=[task.pk])}"' in page
    assert '<span class="badge badge-failed">Failed</span>' in page
    assert '<span class="badge badge-completed">Completed</span>' in page
    assert "5 Jan 2026, 09:00:00 UTC" in page and "5 Jan 2026, 10:00:00 UTC" in page
    assert "1.50 s" in page and "h:1" in page
    assert "&lt;i&gt;nightly&lt;/i&gt;" in page and "<i>nightly</i>" not in page


def test_empty_history_says_so(viewer_client: Client) -> None:
    page = viewer_client.get(URL).content.decode()
    assert "No runs yet." in page
    assert 'rel="next"' not in page


def test_filter_by_status_trigger_and_task(viewer_client: Client) -> None:
    one, two = make_task(name="alpha"), make_task(name="beta")
    a = make_execution(one, status=S.FAILED, trigger=Execution.Trigger.SCHEDULE, scheduled_for=T0)
    b = make_execution(one, status=S.COMPLETED, trigger=Execution.Trigger.MANUAL)
    c = make_execution(two, status=S.FAILED, trigger=Execution.Trigger.MANUAL)
    assert listed(viewer_client, status="failed") == [c.pk, a.pk]
    assert listed(viewer_client, trigger="manual") == [c.pk, b.pk]
    assert listed(viewer_client, task=one.pk) == [b.pk, a.pk]
    assert listed(viewer_client, task_name="BET") == [c.pk]
    assert listed(viewer_client, status="failed", task=one.pk) == [a.pk]
    page = viewer_client.get(URL, {"task": one.pk}).content.decode()
    assert "task <a href=" in page and ">alpha</a>" in page
    assert "Clear</a>" in page


def test_filter_by_time_in_the_current_zone(viewer_client: Client, settings: Any) -> None:
    task = make_task()
    early = make_execution(task, created_at=T0)
    middle = make_execution(task, created_at=T0 + 2 * H)
    late = make_execution(task, created_at=T0 + 4 * H)
    assert listed(viewer_client, since="2026-01-05T10:00") == [late.pk, middle.pk]
    assert listed(viewer_client, until="2026-01-05T12:00") == [middle.pk, early.pk]
    assert listed(viewer_client, since="2026-01-05T10:00", until="2026-01-05T12:00") == [middle.pk]
    settings.TIME_ZONE = "Europe/Madrid"  # UTC+1 in January
    assert listed(viewer_client, since="2026-01-05T11:00") == [late.pk, middle.pk]


def test_bad_filter_values_are_reported_and_ignored(viewer_client: Client) -> None:
    run = make_execution(make_task())
    response = viewer_client.get(URL, {"status": "exploded", "since": "yesterday"})
    assert response.status_code == 200
    assert [e.pk for e in response.context["executions"]] == [run.pk]
    assert 'class="errorlist"' in response.content.decode()


def test_pages_by_key_older_and_newer(viewer_client: Client, monkeypatch: Any) -> None:
    monkeypatch.setattr(view, "PER_PAGE", 2)
    task = make_task()
    runs = [make_execution(task, created_at=T0 + n * timedelta(minutes=1)).pk for n in range(5)]
    newest = runs[::-1]
    first = viewer_client.get(URL, {"status": "completed"})
    assert [e.pk for e in first.context["executions"]] == newest[:2]
    assert first.context["older_before"] == newest[1]
    assert first.context["newer_after"] is None
    page = first.content.decode()
    assert f"?status=completed&amp;before={newest[1]}" in page
    second = viewer_client.get(URL, {"status": "completed", "before": newest[1]})
    assert [e.pk for e in second.context["executions"]] == newest[2:4]
    assert second.context["newer_after"] == newest[2]
    third = viewer_client.get(URL, {"before": newest[3]})
    assert [e.pk for e in third.context["executions"]] == newest[4:]
    assert third.context["older_before"] is None
    assert 'rel="next"' not in third.content.decode()
    back = viewer_client.get(URL, {"after": newest[2]})
    assert [e.pk for e in back.context["executions"]] == newest[:2]
    assert back.context["newer_after"] is None
    assert back.context["older_before"] == newest[1]
    middle = viewer_client.get(URL, {"after": newest[4]})
    assert [e.pk for e in middle.context["executions"]] == newest[2:4]
    assert middle.context["newer_after"] == newest[2]


def test_query_count_is_pinned_and_does_not_grow_with_the_rows(
    viewer_client: Client, django_assert_num_queries: Any
) -> None:
    task = make_task()
    make_execution(task)
    # session, user, the user's permissions (2), the page of runs with their tasks.
    with django_assert_num_queries(5):
        viewer_client.get(URL)
    for n in range(30):
        make_execution(make_task(name=f"t{n}"), status=S.FAILED)
    with django_assert_num_queries(5):
        viewer_client.get(URL, {"status": "failed", "task_name": "t"})
    # ... and one more for the name of the task filtered on.
    with django_assert_num_queries(6):
        viewer_client.get(URL, {"task": task.pk, "before": 10**6})


def test_the_list_needs_the_view_permission(client: Client) -> None:
    assert client.get(URL).status_code == 302
    client.force_login(make_user("nobody"))
    assert client.get(URL).status_code == 403
