"""The task page (``views.tasks.task_detail``): code, schedule, settings and upcoming runs,
the run history with its retries and skipped slots, and query counts that do not grow with
the history."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scheduled_tasks import last_outcome
from scheduled_tasks.models import Execution, ScheduledTask
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


# --- task page -----------------------------------------------------------------------------


def test_task_page_shows_code_schedule_and_upcoming_runs(viewer_client: Client) -> None:
    task = make_task(name="weekly", every=1, unit="weeks", code="a = 1\nprint(a)")
    response = viewer_client.get(reverse("scheduled_tasks:task_detail", args=[task.pk]))
    html = response.content.decode()
    assert "Every week on Monday at 09:00 (UTC)" in html
    assert '<span class="nb">print</span><span class="p">(</span><span class="n">a</span>' in html
    upcoming = response.context["upcoming"]
    assert len(upcoming) == 5
    assert all(b - a == timedelta(weeks=1) for a, b in itertools.pairwise(upcoming))
    assert "This task has not run yet." in html


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


def test_a_task_whose_function_was_unregistered_says_so(viewer_client: Client) -> None:
    task = make_task(name="orphan", code="", function_name="tests.gone", function_params={})
    html = viewer_client.get(
        reverse("scheduled_tasks:task_detail", args=[task.pk])
    ).content.decode()
    assert "not registered" in html
    assert "tests.gone" in html


def test_task_page_words_depend_on_the_status_constants(editor_client: Client) -> None:
    """The templates compare with ``Status`` from the context: a missing one would silently
    make every comparison false."""
    task = with_last_run(make_task(name="busy"), Execution.Status.RUNNING)
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


# --- history -------------------------------------------------------------------------------


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


# --- query counts --------------------------------------------------------------------------


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


# --- figures: success rate and durations over 30 days ---------------------------------------


def test_task_figures_rate_and_percentiles_over_the_last_30_days() -> None:
    from django.utils import timezone

    from scheduled_tasks.task_stats import task_figures

    now = timezone.now()
    task, other = make_task(name="measured"), make_task(name="other")
    for seconds in range(1, 11):  # 1..10 s: p50 5.5, p95 9.55 (linear interpolation)
        make_execution(task, status="completed", duration_seconds=float(seconds),
                       created_at=now - timedelta(hours=seconds))  # fmt: skip
    make_execution(task, status="failed", created_at=now - timedelta(hours=1))
    make_execution(task, status="skipped", created_at=now - timedelta(hours=1))
    # Not counted: a test run, a run older than the window, another task's run.
    make_execution(task, status="failed", trigger="test", duration_seconds=99.0, created_at=now)
    make_execution(task, status="failed", duration_seconds=99.0,
                   created_at=now - timedelta(days=31))  # fmt: skip
    make_execution(other, status="failed", duration_seconds=99.0, created_at=now)

    figures = task_figures(task, now)
    assert (figures.finished, figures.completed, figures.timed) == (11, 10, 10)
    assert figures.success_percent == 90.9
    assert (figures.p50_seconds, figures.p95_seconds) == (5.5, 9.55)


def test_task_figures_without_runs_are_empty() -> None:
    from django.utils import timezone

    from scheduled_tasks.task_stats import task_figures

    figures = task_figures(make_task(name="idle"), timezone.now())
    assert figures.success_rate is None
    assert (figures.p50_seconds, figures.p95_seconds) == (None, None)


def test_task_page_shows_the_figures_card(viewer_client: Client) -> None:
    task = make_task(name="measured")
    make_execution(task, status="completed", duration_seconds=2.0)
    make_execution(task, status="failed", duration_seconds=4.0)
    html = viewer_client.get(reverse("scheduled_tasks:task_detail", args=[task.pk])).content
    text = html.decode()
    assert "Last 30 days" in text
    assert "50.0 %" in text
    assert "Duration p50 3.0 s · p95 3.9 s" in text


def test_task_figures_cost_one_bounded_query_whatever_the_history(
    viewer_client: Client,
) -> None:
    task = make_task(name="busy")
    make_execution(task, duration_seconds=1.0)
    url = reverse("scheduled_tasks:task_detail", args=[task.pk])
    with CaptureQueriesContext(connection) as small:
        viewer_client.get(url)
    for n in range(60):
        make_execution(task, duration_seconds=float(n))
    with CaptureQueriesContext(connection) as large:
        viewer_client.get(url)
    assert len(large.captured_queries) == len(small.captured_queries)
    figure_queries = [
        q["sql"]
        for q in large.captured_queries
        if q["sql"].endswith("LIMIT 1001")  # the latest RECENT_RUNS runs, and one to tell more
    ]
    assert len(figure_queries) == 1


# --- Duplicate and Delete --------------------------------------------------------------------


def test_task_page_offers_duplicate_and_delete_by_permission(client: Client) -> None:
    from tests.factories import make_user

    task = make_task(name="source")
    url = reverse("scheduled_tasks:task_detail", args=[task.pk])
    client.force_login(make_user("viewer", perms=("view_scheduledtask",)))
    html = client.get(url).content.decode()
    assert "Duplicate" not in html and "/delete/" not in html
    client.force_login(make_user("admin-ish", perms=("view_scheduledtask", "add_scheduledtask",
                                                     "delete_scheduledtask")))  # fmt: skip
    html = client.get(url).content.decode()
    assert reverse("scheduled_tasks:task_duplicate", args=[task.pk]) in html
    assert reverse("scheduled_tasks:task_delete", args=[task.pk]) in html


def test_duplicate_opens_the_create_form_prefilled(editor_client: Client) -> None:
    task = make_task(name="nightly", code="print('x')", schedule_kind="cron",
                     cron_expression="0 3 * * *", time_zone="Europe/Madrid", priority=4)  # fmt: skip
    response = editor_client.get(reverse("scheduled_tasks:task_duplicate", args=[task.pk]))
    assert response.status_code == 200
    form = response.context["form"]
    assert form["name"].value() == "copy of nightly"
    assert form["code"].value() == "print('x')"
    assert form["cron_expression"].value() == "0 3 * * *"
    assert form["time_zone"].value() == "Europe/Madrid"
    assert form["priority"].value() == 4
    assert form["is_active"].value() is False
    assert response.context["task"] is None  # a new task, not an edit


def test_duplicate_picks_a_free_name(editor_client: Client) -> None:
    task = make_task(name="nightly")
    make_task(name="copy of nightly")
    response = editor_client.get(reverse("scheduled_tasks:task_duplicate", args=[task.pk]))
    assert response.context["form"]["name"].value() == "copy of nightly (2)"


def test_saving_a_duplicate_creates_a_new_task(editor_client: Client) -> None:
    from tests.factories import task_form_data

    task = make_task(name="nightly")
    response = editor_client.post(
        reverse("scheduled_tasks:task_duplicate", args=[task.pk]),
        task_form_data(name="copy of nightly"),
    )
    copy = ScheduledTask.objects.get(name="copy of nightly")
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduled_tasks:task_detail", args=[copy.pk])
    assert ScheduledTask.objects.filter(name="nightly").exists()


def test_duplicate_needs_the_add_permission(viewer_client: Client) -> None:
    task = make_task(name="nightly")
    response = viewer_client.get(reverse("scheduled_tasks:task_duplicate", args=[task.pk]))
    assert response.status_code == 403


def test_duplicate_needs_the_view_permission_too(client: Client) -> None:
    from tests.factories import make_user

    client.force_login(make_user("adder", perms=("add_scheduledtask",)))
    task = make_task(name="secret-bearing")
    response = client.get(reverse("scheduled_tasks:task_duplicate", args=[task.pk]))
    assert response.status_code == 403


def test_delete_asks_then_deletes(client: Client) -> None:
    from tests.conftest import message_texts
    from tests.factories import make_user

    client.force_login(make_user("deleter", perms=("view_scheduledtask", "delete_scheduledtask")))
    task = make_task(name="doomed")
    make_execution(task)
    url = reverse("scheduled_tasks:task_delete", args=[task.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "its 1 recorded run?" in confirm.content.decode()
    assert ScheduledTask.objects.filter(pk=task.pk).exists()
    response = client.post(url)
    assert response["Location"] == reverse("scheduled_tasks:task_list")
    assert "Task “doomed” deleted with its run history." in message_texts(response)
    assert not ScheduledTask.objects.filter(pk=task.pk).exists()
    assert not Execution.objects.exists()


def test_delete_needs_the_delete_permission(editor_client: Client) -> None:
    task = make_task(name="kept")
    url = reverse("scheduled_tasks:task_delete", args=[task.pk])
    assert editor_client.get(url).status_code == 403
    assert editor_client.post(url).status_code == 403
    assert ScheduledTask.objects.filter(pk=task.pk).exists()


def test_task_figures_look_at_the_latest_runs_only_when_there_are_many() -> None:
    from django.utils import timezone

    from scheduled_tasks.task_stats import task_figures

    now = timezone.now()
    task = make_task(name="busy")
    # Oldest: 3 failures; newest: 4 completed runs of 1..4 s.
    for minutes in (50, 40, 30):
        make_execution(task, status="failed", created_at=now - timedelta(minutes=minutes))
    for n in range(4):
        make_execution(task, status="completed", duration_seconds=float(n + 1),
                       created_at=now - timedelta(minutes=n))  # fmt: skip

    figures = task_figures(task, now, limit=4)
    assert figures.capped and figures.runs == 4
    assert (figures.finished, figures.completed, figures.timed) == (4, 4, 4)
    assert (figures.p50_seconds, figures.p95_seconds) == (2.5, 3.85)
    whole = task_figures(task, now)
    assert not whole.capped and (whole.runs, whole.finished, whole.completed) == (7, 7, 4)


def test_task_page_names_the_runs_its_figures_cover(viewer_client: Client) -> None:
    from scheduled_tasks import task_stats

    task = make_task(name="busy")
    for _ in range(3):
        make_execution(task, status="completed", duration_seconds=1.0)
    url = reverse("scheduled_tasks:task_detail", args=[task.pk])
    assert "Last 30 days" in viewer_client.get(url).content.decode()
    with mock.patch.object(task_stats, "RECENT_RUNS", 2):
        html = viewer_client.get(url).content.decode()
    assert "Last 2 runs" in html
