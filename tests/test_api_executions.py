"""The API's executions: history with filters, one run whole (output, error, logs), a light
status for polling, cancelling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduled_tasks.models import Execution, ExecutionLogLine
from tests.api_helpers import ALL, API, VIEW, api_client, client_for
from tests.factories import make_execution, make_task

pytestmark = pytest.mark.django_db
RUNS = f"{API}executions/"
T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def history() -> dict[str, Execution]:
    a, b = make_task(name="a"), make_task(name="b")
    return {
        "a_ok": make_execution(a, created_at=T, output="fine", trigger=Execution.Trigger.SCHEDULE),
        "a_failed": make_execution(
            a,
            status=Execution.Status.FAILED,
            created_at=T + timedelta(hours=1),
            error="Line 3: ZeroDivisionError: division by zero",
        ),
        "b_manual": make_execution(b, created_at=T + timedelta(hours=2)),
    }


def test_anonymous_and_permissionless_users_are_refused(history: dict) -> None:
    assert client_for(None).get(RUNS).status_code == 401
    assert api_client("nobody", ()).get(RUNS).status_code == 403


def test_the_list_is_newest_first_and_filters(history: dict) -> None:
    client = api_client("viewer", VIEW)

    def ids(query: str = "") -> list[int]:
        response = client.get(f"{RUNS}?{query}")
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["results"]]

    a_ok, a_failed, b_manual = (history[k].pk for k in ("a_ok", "a_failed", "b_manual"))
    assert ids() == [b_manual, a_failed, a_ok]
    assert ids(f"task={history['a_ok'].task_id}") == [a_failed, a_ok]
    assert ids("status=failed") == [a_failed]
    assert ids("trigger=schedule") == [a_ok]
    assert ids("since=2026-03-01T13:00:00Z") == [b_manual, a_failed]
    assert ids("until=2026-03-01T13:00:00Z") == [a_ok]
    assert ids("since=2026-03-01T13:00:00%2B01:00") == [b_manual, a_failed, a_ok]
    for bad in ("since=yesterday", "status=happy", "trigger=x", "task=abc"):
        response = client.get(f"{RUNS}?{bad}")
        assert response.status_code == 400, bad
        assert bad.split("=")[0] in response.json()


def test_the_list_leaves_out_output_and_logs(history: dict) -> None:
    item = api_client("viewer", VIEW).get(RUNS).json()["results"][0]
    assert "output" not in item and "logs" not in item
    assert item["task_name"] == "b"


def test_one_run_has_its_output_error_and_log_lines(history: dict) -> None:
    run = history["a_failed"]
    ExecutionLogLine.objects.bulk_create(
        ExecutionLogLine(execution=run, seq=i, at=T, level=level, message=f"line {i}")
        for i, level in ((1, 20), (2, 40))
    )
    body = api_client("viewer", VIEW).get(f"{RUNS}{run.pk}/").json()
    assert body["status"] == "failed"
    assert body["error"] == "Line 3: ZeroDivisionError: division by zero"
    assert [(line["seq"], line["level_name"], line["message"]) for line in body["logs"]] == [
        (1, "INFO", "line 1"),
        (2, "ERROR", "line 2"),
    ]


def test_status_is_light_and_says_whether_the_run_ended(history: dict) -> None:
    client = api_client("viewer", VIEW)
    body = client.get(f"{RUNS}{history['a_ok'].pk}/status/").json()
    assert body["finished"] is True
    assert "output" not in body
    pending = make_execution(
        history["a_ok"].task, status=Execution.Status.PENDING, not_before=T, created_at=T
    )
    body = client.get(f"{RUNS}{pending.pk}/status/").json()
    assert (body["status"], body["finished"]) == ("pending", False)
    assert body["waiting"] == "queued: waiting for a free slot"
    assert client.get(f"{RUNS}999999/status/").status_code == 404


def test_cancel_a_pending_run_records_who(history: dict) -> None:
    pending = make_execution(
        history["a_ok"].task, status=Execution.Status.PENDING, not_before=T, created_at=T
    )
    response = api_client("admin", ALL).post(f"{RUNS}{pending.pk}/cancel/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancelled_by"] == "admin"
    pending.refresh_from_db()
    assert pending.status == Execution.Status.CANCELLED
    assert pending.cancelled_by.username == "admin"


def test_cancel_a_finished_run_is_a_conflict(history: dict) -> None:
    response = api_client("admin", ALL).post(f"{RUNS}{history['a_ok'].pk}/cancel/")
    assert response.status_code == 409
    assert response.json()["detail"]
    assert Execution.objects.get(pk=history["a_ok"].pk).status == Execution.Status.COMPLETED


def test_cancel_needs_the_run_permission(history: dict) -> None:
    pending = make_execution(history["a_ok"].task, status=Execution.Status.PENDING)
    assert api_client("viewer", VIEW).post(f"{RUNS}{pending.pk}/cancel/").status_code == 403
    assert Execution.objects.get(pk=pending.pk).status == Execution.Status.PENDING


def test_executions_are_read_only(history: dict) -> None:
    client = api_client("admin", ALL)
    run = history["a_ok"]
    assert client.delete(f"{RUNS}{run.pk}/").status_code == 405
    assert client.patch(f"{RUNS}{run.pk}/", {"status": "failed"}, format="json").status_code == 405


def test_a_run_says_which_code_version_it_ran() -> None:
    from scheduled_tasks import services

    task = make_task(name="versioned")
    services.save_task(task, now=T)
    task.refresh_from_db()
    run = make_execution(task, version_id=task.current_version_id)
    body = api_client("viewer", VIEW).get(f"{RUNS}{run.pk}/").json()
    assert body["version"] == task.current_version.number
    listed = api_client("v2", VIEW).get(f"{RUNS}?task={task.pk}").json()["results"][0]
    assert listed["version"] == body["version"]
