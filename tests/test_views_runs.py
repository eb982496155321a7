"""Runs (``views.runs``): the execution page, and "Run now" with a stand-in runner and for
real."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scheduled_tasks.models import Execution, ScheduledTask
from tests.conftest import message_texts
from tests.factories import T0, S, make_editor, make_execution, make_task

pytestmark = pytest.mark.django_db


# --- execution page ------------------------------------------------------------------------


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


def test_newer_and_older_runs_step_through_ties_by_id(viewer_client: Client) -> None:
    task = make_task(name="caught up")
    other = make_execution(make_task(name="other"), created_at=T0)  # another task's: never
    first = make_execution(task, created_at=T0 - timedelta(hours=1))
    # Three runs recorded at the same moment (one claim of several missed slots).
    tied = [make_execution(task, created_at=T0) for _ in range(3)]
    last = make_execution(task, created_at=T0 + timedelta(hours=1))
    order = [first, *tied, last]

    def neighbours(run):
        context = viewer_client.get(
            reverse("scheduled_tasks:execution_detail", args=[run.pk])
        ).context
        return (
            context["older"] and context["older"].pk,
            context["newer"] and context["newer"].pk,
        )

    for n, run in enumerate(order):
        older = order[n - 1].pk if n else None
        newer = order[n + 1].pk if n + 1 < len(order) else None
        assert neighbours(run) == (older, newer), n
    assert other.pk not in {pk for run in order for pk in neighbours(run)}


def test_a_running_execution_page_follows_itself_without_reloading(viewer_client: Client) -> None:
    task = make_task(name="slow")
    execution = make_execution(task, status="running", started_at=T0)
    html = viewer_client.get(
        reverse("scheduled_tasks:execution_detail", args=[execution.pk])
    ).content.decode()
    assert "http-equiv" not in html  # no full reload: live.js polls views.live
    assert "scheduled_tasks/live.js" in html
    live = reverse("scheduled_tasks:execution_live", args=[execution.pk])
    assert f'data-live-url="{live}" data-live-status="running"' in html
    assert 'data-live-seq="0"' in html
    assert "No output yet." in html and "Nothing logged yet." in html
    assert 'id="log-lines-body"' in html  # where new lines go


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
    # Its not_before (in 2026-01) has passed and no runner holds it: it waits for a free slot.
    assert "queued: waiting for a free slot" in pending_html
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


# --- run now: queued, never run in the request ---------------------------------------------


def test_run_now_queues_a_manual_run_and_shows_its_page(
    editor_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    task = make_task(name="manual", code='print("hi")')
    with django_capture_on_commit_callbacks() as callbacks:
        response = editor_client.post(reverse("scheduled_tasks:task_run", args=[task.pk]))
    execution = Execution.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduled_tasks:execution_detail", args=[execution.pk])
    # Queued, not run: the request answered before anything ran.
    assert (execution.status, execution.trigger, execution.started_at) == (
        "pending",
        "manual",
        None,
    )
    assert execution.not_before is not None and execution.runner == ""
    # No runner is alive: the web process starts it in the background once the request commits.
    assert len(callbacks) == 1
    assert message_texts(response) == [
        f"Run #{execution.pk} of “manual” queued: no scheduler is running, so this web process "
        "starts it in the background."
    ]
    page = editor_client.get(response["Location"]).content.decode()
    assert "waiting for a free slot" in page and "data-live-url" in page


def test_run_now_leaves_the_run_to_a_live_runner(
    editor_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    from scheduled_tasks import heartbeats

    heartbeats.beat("host:1", "daemon", timezone.now())
    task = make_task(name="manual")
    with django_capture_on_commit_callbacks() as callbacks:
        response = editor_client.post(reverse("scheduled_tasks:task_run", args=[task.pk]))
    assert callbacks == []  # the daemon looks for due work every second
    assert "a runner starts it within a second or so" in message_texts(response)[0]
    assert Execution.objects.get().status == "pending"


def test_a_run_now_a_runner_started_at_once_is_not_said_to_wait_for_itself(
    editor_client: Client, monkeypatch: Any
) -> None:
    from scheduled_tasks import background, heartbeats

    heartbeats.beat("host:1", "daemon", timezone.now())
    queue_run = background.queue_run

    def claimed_at_once(task, now):
        execution, how = queue_run(task, now)
        # The daemon claims it before the page counts the runs in progress.
        Execution.objects.filter(pk=execution.pk).update(
            status="running", started_at=now, lease_expires_at=now + timedelta(minutes=1)
        )
        return execution, how

    monkeypatch.setattr(background, "queue_run", claimed_at_once)
    task = make_task(name="manual")
    response = editor_client.post(reverse("scheduled_tasks:task_run", args=[task.pk]))
    assert "a runner starts it within a second or so" in message_texts(response)[0]


def test_a_stopped_or_silent_runner_does_not_count_as_alive(
    editor_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    from scheduled_tasks import heartbeats

    now = timezone.now()
    heartbeats.beat("host:1", "daemon", now)
    heartbeats.stopped("host:1", now)
    heartbeats.beat("host:2", "embedded", now - timedelta(minutes=5))
    heartbeats.beat("host:3", "cron", now)  # a cron pass looks once a minute only
    task = make_task(name="manual")
    with django_capture_on_commit_callbacks() as callbacks:
        editor_client.post(reverse("scheduled_tasks:task_run", args=[task.pk]))
    assert len(callbacks) == 1


def test_run_now_of_a_busy_task_queues_it_behind_the_run_in_progress(
    editor_client: Client,
) -> None:
    task = make_task(name="long")
    now = timezone.now()
    make_execution(
        task, status="running", started_at=now, lease_expires_at=now + timedelta(hours=1)
    )
    response = editor_client.post(reverse("scheduled_tasks:task_run", args=[task.pk]))
    queued = Execution.objects.get(task=task, status="pending")
    assert response["Location"] == reverse("scheduled_tasks:execution_detail", args=[queued.pk])
    assert "it starts when the run in progress ends" in message_texts(response)[0]


def test_run_now_pages_say_the_run_is_queued(editor_client: Client) -> None:
    task = make_task(name="manual")
    detail = editor_client.get(reverse("scheduled_tasks:task_detail", args=[task.pk]))
    html = detail.content.decode()
    assert "in this request" not in html
    assert "The run is queued, starts within about a second" in html
    run = make_execution(task, status="completed")
    page = editor_client.get(reverse("scheduled_tasks:execution_detail", args=[run.pk]))
    assert "The run is queued and starts within about a second" in page.content.decode()


def _run_now_in_the_background(client: Client, task: ScheduledTask) -> Any:
    """Run now with no runner alive: the web process's background thread runs it."""
    from scheduled_tasks import background

    response = client.post(reverse("scheduled_tasks:task_run", args=[task.pk]))
    assert background.join(timeout=30), "the background run did not end"
    return response


@pytest.mark.django_db(transaction=True)
def test_run_now_runs_the_snippet_and_records_its_output(client: Client) -> None:
    client.force_login(make_editor("runner-editor"))
    task = make_task(name="say hi", code='print("hi")')
    response = _run_now_in_the_background(client, task)
    execution = Execution.objects.get(task=task)
    assert execution.status == "completed"
    assert execution.output == "hi\n"
    assert execution.trigger == "manual"
    assert execution.runner.endswith(":web")
    assert response["Location"] == reverse("scheduled_tasks:execution_detail", args=[execution.pk])
    html = client.get(response["Location"]).content.decode()
    assert "Completed" in html
    assert '<pre class="output" id="execution-output">hi\n</pre>' in html
    assert "data-live-url" not in html  # ended: nothing to follow
    task.refresh_from_db()
    assert task.last_status == "completed"


@pytest.mark.django_db(transaction=True)
def test_run_now_records_the_snippets_error_with_its_line(client: Client) -> None:
    client.force_login(make_editor("runner-editor"))
    task = make_task(name="divide", code="x = 1\ny = 0\nprint(x / y)")
    response = _run_now_in_the_background(client, task)
    execution = Execution.objects.get(task=task)
    assert execution.status == "failed"
    assert "ZeroDivisionError" in execution.error
    assert "line 3" in execution.error.lower()
    html = client.get(response["Location"]).content.decode()
    assert "ZeroDivisionError" in html and "Line numbers refer to the task" in html


# --- cancel --------------------------------------------------------------------------------


def test_an_editor_cancels_a_pending_run_from_its_page(editor_client: Client, editor: Any) -> None:
    task = make_task(name="nightly")
    pending = make_execution(task, status="pending", trigger="retry", attempt=2, not_before=T0)
    url = reverse("scheduled_tasks:execution_detail", args=[pending.pk])
    cancel = reverse("scheduled_tasks:execution_cancel", args=[pending.pk])
    html = editor_client.get(url).content.decode()
    assert f'action="{cancel}"' in html and "csrfmiddlewaretoken" in html
    response = editor_client.post(cancel, follow=True)
    assert response.redirect_chain[-1][0] == url
    assert any("cancelled" in m for m in message_texts(response))
    pending.refresh_from_db()
    assert (pending.status, pending.cancelled_by) == ("cancelled", editor)
    assert pending.error.startswith("Cancelled by editor at ")
    html = response.content.decode()
    assert "Cancelled by" in html and f'action="{cancel}"' not in html  # ended: no button


def test_cancelling_a_finished_run_says_why_not(editor_client: Client) -> None:
    done = make_execution(make_task(name="done"), status="completed")
    response = editor_client.post(
        reverse("scheduled_tasks:execution_cancel", args=[done.pk]), follow=True
    )
    assert any("already ended (completed)" in m for m in message_texts(response))
    assert Execution.objects.get(pk=done.pk).status == "completed"
    html = editor_client.get(reverse("scheduled_tasks:execution_detail", args=[done.pk]))
    assert "execution_cancel" not in html.content.decode()
    assert "/cancel/" not in html.content.decode()


def test_cancel_is_a_post_for_those_who_may_run_tasks(
    client: Client, viewer_client: Client
) -> None:
    pending = make_execution(make_task(name="t"), status="pending")
    cancel = reverse("scheduled_tasks:execution_cancel", args=[pending.pk])
    page = viewer_client.get(reverse("scheduled_tasks:execution_detail", args=[pending.pk]))
    assert cancel not in page.content.decode()  # no button without the permission
    assert viewer_client.post(cancel).status_code == 403
    client.force_login(make_editor("someone"))
    assert client.get(cancel).status_code == 405
    assert Execution.objects.get(pk=pending.pk).status == "pending"
    assert (
        client.post(reverse("scheduled_tasks:execution_cancel", args=[999999])).status_code == 404
    )


def test_cancel_needs_the_csrf_token(editor: Any) -> None:
    pending = make_execution(make_task(name="t"), status="pending")
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    response = client.post(reverse("scheduled_tasks:execution_cancel", args=[pending.pk]))
    assert response.status_code == 403
    assert Execution.objects.get(pk=pending.pk).status == "pending"


def test_the_task_page_offers_cancel_on_pending_and_running_runs(
    editor_client: Client, editor: Any
) -> None:
    task = make_task(name="busy")
    done = make_execution(task, status="completed", created_at=T0)
    running = make_execution(task, status="running", started_at=T0, created_at=T0 + S)
    queued = make_execution(task, status="pending", not_before=T0, created_at=T0 + 2 * S)
    detail = reverse("scheduled_tasks:task_detail", args=[task.pk])
    html = editor_client.get(detail).content.decode()
    for execution in (running, queued):
        assert (
            f'action="{reverse("scheduled_tasks:execution_cancel", args=[execution.pk])}"' in html
        )
    assert reverse("scheduled_tasks:execution_cancel", args=[done.pk]) not in html
    assert html.count('data-live-row="now"') == 2 and "scheduled_tasks/live.js" in html
    # The form sends the task page back as ``next``: the cancel lands there.
    cancel = reverse("scheduled_tasks:execution_cancel", args=[running.pk])
    response = editor_client.post(cancel, {"next": f"{detail}#history"})
    assert response["Location"] == f"{detail}#history"
    running.refresh_from_db()
    assert (running.status, running.cancelled_by) == ("cancelled", editor)


def test_cancel_ignores_a_next_page_elsewhere(editor_client: Client) -> None:
    pending = make_execution(make_task(name="t"), status="pending")
    cancel = reverse("scheduled_tasks:execution_cancel", args=[pending.pk])
    response = editor_client.post(cancel, {"next": "https://elsewhere.example/"})
    assert response["Location"] == reverse("scheduled_tasks:execution_detail", args=[pending.pk])


def test_viewers_see_no_cancel_on_the_task_page(viewer_client: Client) -> None:
    task = make_task(name="busy")
    running = make_execution(task, status="running", started_at=T0)
    html = viewer_client.get(reverse("scheduled_tasks:task_detail", args=[task.pk])).content
    assert reverse("scheduled_tasks:execution_cancel", args=[running.pk]) not in html.decode()
