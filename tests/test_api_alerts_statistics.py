"""The API's alerts (list, filter, resolve by hand, summary) and statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from scheduled_tasks.models import Alert, Execution
from tests.api_helpers import ALL, API, VIEW, api_client, client_for
from tests.factories import make_execution, make_task

pytestmark = pytest.mark.django_db
ALERTS = f"{API}alerts/"
T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def alerts() -> dict[str, Alert]:
    task = make_task(name="nightly")
    failing = Alert.objects.create(
        kind=Alert.Kind.FAILURES,
        key=f"failures:task={task.pk}",
        task=task,
        message="nightly failed 3 times in a row",
        opened_at=T,
    )
    down = Alert.objects.create(
        kind=Alert.Kind.SCHEDULER_DOWN,
        key="scheduler_down",
        message="no runner heartbeat for 5 minutes",
        opened_at=T + timedelta(minutes=1),
    )
    old = Alert.objects.create(
        kind=Alert.Kind.MISSED,
        key=f"missed:task={task.pk}",
        task=task,
        status=Alert.Status.RESOLVED,
        message="missed",
        opened_at=T - timedelta(days=1),
        resolved_at=T,
    )
    return {"failing": failing, "down": down, "old": old}


def test_alerts_need_the_view_permission(alerts: dict) -> None:
    assert client_for(None).get(ALERTS).status_code == 401
    assert api_client("nobody", ()).get(ALERTS).status_code == 403


def test_alerts_list_newest_first_and_filter(alerts: dict) -> None:
    client = api_client("viewer", VIEW)

    def ids(query: str = "") -> list[int]:
        response = client.get(f"{ALERTS}?{query}")
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["results"]]

    failing, down, old = alerts["failing"].pk, alerts["down"].pk, alerts["old"].pk
    assert ids() == [down, failing, old]
    assert ids("status=open") == [down, failing]
    assert ids(f"task={alerts['failing'].task_id}") == [failing, old]
    assert ids("kind=scheduler_down") == [down]
    assert client.get(f"{ALERTS}?status=maybe").status_code == 400
    item = client.get(f"{ALERTS}{failing}/").json()
    assert (item["task_name"], item["kind"], item["status"]) == ("nightly", "failures", "open")


def test_resolving_by_hand_records_who_and_a_second_time_is_a_conflict(alerts: dict) -> None:
    client = api_client("admin", ALL)
    url = f"{ALERTS}{alerts['failing'].pk}/resolve/"
    response = client.post(url)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["resolved_by"]) == ("resolved", "admin")
    assert body["resolved_at"] is not None
    assert client.post(url).status_code == 409
    assert client.post(f"{ALERTS}999999/resolve/").status_code == 404


def test_resolving_needs_the_permission(alerts: dict) -> None:
    url = f"{ALERTS}{alerts['failing'].pk}/resolve/"
    assert api_client("viewer", VIEW).post(url).status_code == 403
    assert Alert.objects.get(pk=alerts["failing"].pk).status == Alert.Status.OPEN


def test_the_summary_counts_open_alerts_by_kind(alerts: dict) -> None:
    body = api_client("viewer", VIEW).get(f"{ALERTS}summary/").json()
    assert body["open"] == 2
    assert body["by_kind"]["failures"] == 1
    assert body["by_kind"]["scheduler_down"] == 1
    assert body["by_kind"]["missed"] == 0


def test_statistics_overview_and_performance() -> None:
    task = make_task(name="report")
    now = timezone.now()
    for seconds, status in ((1.0, "completed"), (3.0, "completed"), (2.0, "failed")):
        make_execution(
            task,
            status=status,
            trigger=Execution.Trigger.SCHEDULE if seconds != 2.0 else Execution.Trigger.MANUAL,
            created_at=now - timedelta(hours=1),
            started_at=now - timedelta(hours=1),
            finished_at=now - timedelta(hours=1) + timedelta(seconds=seconds),
            duration_seconds=seconds,
        )
    client = api_client("viewer", VIEW)
    overview = client.get(f"{API}statistics/overview/")
    assert overview.status_code == 200
    day = overview.json()["executions"]["24h"]
    assert day["total"] == 3
    assert day["success_rate"] == pytest.approx(2 / 3, abs=1e-3)
    performance = client.get(f"{API}statistics/performance/?days=7&limit=5")
    assert performance.status_code == 200
    (row,) = performance.json()["tasks"]
    assert (row["name"], row["runs"], row["max_seconds"]) == ("report", 3, 3.0)
    assert row["p50_seconds"] == pytest.approx(2.0)


@pytest.mark.parametrize("query", ["days=0", "days=366", "limit=x", "limit=101", "days=-1"])
def test_bad_statistics_parameters_are_a_400(query: str) -> None:
    response = api_client("viewer", VIEW).get(f"{API}statistics/performance/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_statistics_need_the_view_permission() -> None:
    assert client_for(None).get(f"{API}statistics/overview/").status_code == 401
    assert api_client("nobody", ()).get(f"{API}statistics/overview/").status_code == 403
