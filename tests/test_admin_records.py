"""The admin's alerts (read-only, resolved by an action), runner heartbeats and code versions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client

from scheduled_tasks.models import Alert, RunnerHeartbeat
from tests.factories import make_task

pytestmark = pytest.mark.django_db
T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-12345"))
    return client


def test_alerts_are_listed_and_resolved_by_the_action(admin_client: Client) -> None:
    task = make_task(name="nightly")
    alert = Alert.objects.create(
        kind=Alert.Kind.FAILURES, key=f"failures:task={task.pk}", task=task,
        message="nightly failed 3 times in a row", opened_at=T,
    )  # fmt: skip
    page = admin_client.get("/admin/scheduled_tasks/alert/")
    assert page.status_code == 200
    assert "nightly failed 3 times in a row" in page.content.decode()
    assert admin_client.get("/admin/scheduled_tasks/alert/add/").status_code == 403
    response = admin_client.post(
        "/admin/scheduled_tasks/alert/",
        {"action": "resolve_selected", "_selected_action": [alert.pk]},
        follow=True,
    )
    assert "1 alert resolved." in response.content.decode()
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by.username) == (Alert.Status.RESOLVED, "root")


def test_heartbeats_are_listed(admin_client: Client) -> None:
    RunnerHeartbeat.objects.create(
        runner="host:42", kind=RunnerHeartbeat.Mode.DAEMON, started_at=T, last_seen_at=T
    )
    page = admin_client.get("/admin/scheduled_tasks/runnerheartbeat/")
    assert page.status_code == 200
    assert "host:42" in page.content.decode()


def test_code_versions_are_listed_read_only(admin_client: Client) -> None:
    from scheduled_tasks import services

    task = make_task(name="versioned")
    services.save_task(task, now=T)
    page = admin_client.get("/admin/scheduled_tasks/taskversion/")
    assert page.status_code == 200
    assert "versioned" in page.content.decode()
    assert admin_client.get("/admin/scheduled_tasks/taskversion/add/").status_code == 403
