"""The live schedule preview (``views.tasks.schedule_preview``): the next runs of every
kind in words and times, and bad input explained."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from tests.factories import MONDAY_0900_UTC

pytestmark = pytest.mark.django_db


def test_schedule_preview_describes_and_lists_the_next_runs(viewer_client: Client) -> None:
    response = viewer_client.get(
        reverse("scheduled_tasks:schedule_preview"),
        {"every": "2", "unit": "days", "anchor": "2026-01-05T09:00"},
    )
    data = response.json()
    assert response.status_code == 200
    assert data["description"] == "Every 2 days at 09:00 (UTC)"
    assert len(data["runs"]) == 5


def test_schedule_preview_explains_bad_input(viewer_client: Client) -> None:
    response = viewer_client.get(
        reverse("scheduled_tasks:schedule_preview"), {"every": "0", "unit": "x", "anchor": ""}
    )
    assert response.status_code == 400
    data = response.json()
    assert data["ok"] is False
    assert len(data["errors"]) == 3
    assert any(e.startswith("Start time:") for e in data["errors"])


def preview(client: Client, **params: str) -> tuple[int, dict[str, Any]]:
    response = client.get(reverse("scheduled_tasks:schedule_preview"), params)
    return response.status_code, response.json()


def test_preview_of_a_cron_schedule_in_its_zone(viewer_client: Client) -> None:
    with time_machine.travel(MONDAY_0900_UTC, tick=False):
        status, data = preview(
            viewer_client,
            schedule_kind="cron",
            cron_expression="30 8 * * MON-FRI",
            time_zone="Europe/Madrid",
        )
    assert status == 200
    assert data["description"] == "At 08:30 AM, Monday through Friday (Europe/Madrid)"
    assert data["time_zone"] == "Europe/Madrid"
    assert [r["iso"] for r in data["runs"][:2]] == [
        "2026-01-06T07:30:00+00:00",
        "2026-01-07T07:30:00+00:00",
    ]
    assert data["runs"][0]["display"] == "Tue 6 Jan 2026, 08:30 CET"


def test_preview_of_a_cron_schedule_across_the_spring_change(viewer_client: Client) -> None:
    with time_machine.travel(datetime(2026, 3, 27, 12, 0, tzinfo=UTC), tick=False):
        _, data = preview(
            viewer_client,
            schedule_kind="cron",
            cron_expression="30 2 * * *",
            time_zone="Europe/Madrid",
        )
    assert [r["display"] for r in data["runs"][:3]] == [
        "Sat 28 Mar 2026, 02:30 CET",
        "Sun 29 Mar 2026, 03:00 CEST",  # 02:30 does not exist: the end of the gap
        "Mon 30 Mar 2026, 02:30 CEST",
    ]


def test_preview_of_a_one_off(viewer_client: Client) -> None:
    with time_machine.travel(MONDAY_0900_UTC, tick=False):
        _, future = preview(
            viewer_client, schedule_kind="once", run_at="2026-02-01T10:00", time_zone="UTC"
        )
        _, past = preview(viewer_client, schedule_kind="once", run_at="2026-01-01T10:00")
    assert future["description"] == "Once, at 2026-02-01 10:00 (UTC)"
    assert [r["iso"] for r in future["runs"]] == ["2026-02-01T10:00:00+00:00"]
    assert future["note"] == ""
    assert past["runs"] == []
    assert "This time has passed" in past["note"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"schedule_kind": "cron", "cron_expression": "0 0 31 2 *"}, "never runs"),
        ({"schedule_kind": "cron", "cron_expression": ""}, "Cron expression: Enter a cron"),
        ({"schedule_kind": "once", "run_at": "soon"}, "Run at: Enter a valid date/time."),
        (
            {"schedule_kind": "cron", "cron_expression": "* * * * *", "time_zone": "Nowhere/X"},
            "Time zone: Unknown time zone “Nowhere/X”",
        ),
        ({"schedule_kind": "weekly"}, "Schedule: Select a valid choice."),
    ],
)
def test_preview_explains_bad_input_of_every_kind(
    viewer_client: Client, params: dict[str, str], message: str
) -> None:
    status, data = preview(viewer_client, **params)
    assert status == 400
    assert data["ok"] is False
    assert any(message in e for e in data["errors"]), data["errors"]
