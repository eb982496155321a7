"""What the pages poll while runs go on (``views.live``): status, output so far, new log
lines, duration, what a pending run waits for; two queries; the pages' permissions."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scheduled_tasks.models import Execution, ExecutionLogLine
from tests.factories import T0, S, make_execution, make_task, make_user

pytestmark = pytest.mark.django_db


def live(client: Client, execution: Execution, **params: Any) -> Any:
    url = reverse("scheduled_tasks:execution_live", args=[execution.pk])
    response = client.get(url, params)
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    return response.json()


def add_lines(execution: Execution, count: int, start: int = 1) -> None:
    ExecutionLogLine.objects.bulk_create(
        ExecutionLogLine(
            execution=execution,
            seq=seq,
            at=T0 + seq * S,
            level=logging.WARNING if seq % 2 else logging.INFO,
            message=f"line <{seq}>",
        )
        for seq in range(start, start + count)
    )


def test_a_running_run_answers_its_output_so_far_and_duration(viewer_client: Client) -> None:
    started = timezone.now() - timedelta(seconds=3)
    execution = make_execution(
        make_task(), status="running", started_at=started, output="step 1\nstep 2\n"
    )
    body = live(viewer_client, execution)
    assert body["status"] == "running" and body["status_label"] == "Running"
    assert body["finished"] is False
    assert body["output"] == "step 1\nstep 2\n" and body["output_truncated"] is False
    assert 3 <= body["duration"] < 60  # so far, from its start
    assert body["waiting"] == ""
    assert body["log_lines"] == [] and body["last_seq"] == 0


def test_log_lines_come_after_the_seq_the_page_has(viewer_client: Client) -> None:
    execution = make_execution(make_task(), status="running", started_at=T0)
    add_lines(execution, 5)
    body = live(viewer_client, execution, after=3)
    assert [line["seq"] for line in body["log_lines"]] == [4, 5]
    assert body["log_lines"][0] == {
        "seq": 4,
        "at": (T0 + 4 * S).isoformat(),
        "time": "09:00:04.000",
        "level": "INFO",
        "message": "line <4>",
    }
    assert body["last_seq"] == 5 and body["more_lines"] is False
    assert live(viewer_client, execution, after=5)["last_seq"] == 5  # nothing new
    assert len(live(viewer_client, execution, after="junk")["log_lines"]) == 5


def test_a_long_log_comes_in_pieces(viewer_client: Client, monkeypatch: Any) -> None:
    from scheduled_tasks.views import live as live_view

    monkeypatch.setattr(live_view, "MAX_LINES", 3)
    execution = make_execution(make_task(), status="running", started_at=T0)
    add_lines(execution, 4)
    first = live(viewer_client, execution)
    assert (first["last_seq"], first["more_lines"]) == (3, True)
    second = live(viewer_client, execution, after=first["last_seq"])
    assert ([line["seq"] for line in second["log_lines"]], second["more_lines"]) == ([4], False)


def test_a_queued_run_says_what_it_waits_for(viewer_client: Client) -> None:
    queued = make_execution(make_task(), status="pending", not_before=T0)
    body = live(viewer_client, queued)
    assert (body["status"], body["finished"], body["duration"]) == ("pending", False, None)
    assert body["waiting"] == "queued: waiting for a free slot"
    assert body["waiting_kind"] == "queued"
    later = make_execution(
        make_task(name="later"),
        status="pending",
        trigger="retry",
        not_before=timezone.now() + timedelta(hours=1),
    )
    waiting = live(viewer_client, later)
    assert waiting["waiting"].startswith("retry at ") and waiting["waiting_kind"] == "retry"


def test_an_ended_run_is_finished_with_its_recorded_duration(viewer_client: Client) -> None:
    execution = make_execution(
        make_task(), status="failed", started_at=T0, duration_seconds=1.25, output="x"
    )
    body = live(viewer_client, execution)
    assert (body["finished"], body["duration"], body["status_label"]) == (True, 1.25, "Failed")


def test_the_poll_costs_two_queries(viewer_client: Client, django_assert_num_queries: Any) -> None:
    execution = make_execution(make_task(), status="running", started_at=T0)
    add_lines(execution, 3)
    # The session, the user and its permissions (user's and groups'), then the two of ours.
    with django_assert_num_queries(6):
        live(viewer_client, execution, after=1)


def test_the_poll_needs_the_view_permission(client: Client) -> None:
    execution = make_execution(make_task(), status="running", output="secret output")
    url = reverse("scheduled_tasks:execution_live", args=[execution.pk])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(make_user("nobody"))
    assert client.get(url).status_code == 403
    client.force_login(make_user("boss", is_superuser=True))
    assert client.get(url).status_code == 200
    assert client.post(url).status_code == 405
    missing = reverse("scheduled_tasks:execution_live", args=[999999])
    assert client.get(missing).status_code == 404
