"""``/health/`` (scheduled_tasks/views/health.py) and the web process's scheduler-down check
(scheduled_tasks/alerts/monitor.py, middleware.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from scheduled_tasks import embedded, heartbeats
from scheduled_tasks import health as health_checks
from scheduled_tasks.alerts import monitor, service
from scheduled_tasks.models import Alert
from tests.factories import T0, make_task

pytestmark = pytest.mark.django_db


def get_health(client: Client) -> Any:
    return client.get("/health/")


def test_healthy_with_a_recent_heartbeat(client: Client):
    heartbeats.beat("host:1", "daemon", timezone.now() - timedelta(seconds=20), started=True)
    response = get_health(client)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True}
    assert body["scheduler"]["ok"] is True
    assert body["scheduler"]["kind"] == "daemon"
    assert 20 <= body["scheduler"]["age_seconds"] < 120
    assert body["scheduler"]["threshold_seconds"] == 300
    assert body["alerts"] == {"open": 0}
    assert "host:1" not in response.content.decode()  # no host names for anonymous callers
    assert response["Cache-Control"].startswith("max-age=0")


def test_no_runner_at_all_is_unhealthy_and_opens_scheduler_down(client: Client):
    make_task()
    response = get_health(client)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True
    assert body["scheduler"]["ok"] is False
    assert body["scheduler"]["last_heartbeat_at"] is None
    assert body["alerts"] == {"open": 1}
    assert Alert.objects.get().kind == "scheduler_down"


def test_a_stale_heartbeat_is_unhealthy_and_a_fresh_one_resolves_the_alert(client: Client):
    make_task()
    heartbeats.beat("host:1", "daemon", timezone.now() - timedelta(minutes=6), started=True)
    assert get_health(client).status_code == 503
    assert Alert.objects.get().status == "open"
    heartbeats.beat("host:1", "daemon", timezone.now())
    response = get_health(client)
    assert response.status_code == 200
    assert response.json()["alerts"] == {"open": 0}
    assert Alert.objects.get().status == "resolved"


def test_the_database_not_answering_is_unhealthy(client: Client, monkeypatch):
    monkeypatch.setattr(health_checks, "database_ok", lambda: False)
    response = get_health(client)
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == {"ok": False}
    assert body["alerts"] == {"open": None}


def test_a_failing_check_answers_unhealthy_without_an_error_page(client: Client, monkeypatch):
    heartbeats.beat("host:1", "daemon", timezone.now(), started=True)

    def broken(now: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(service, "check_scheduler_down", broken)
    response = get_health(client)
    assert response.status_code == 503
    assert "bug" not in response.content.decode()


def test_health_needs_no_login_and_only_reads(client: Client):
    heartbeats.beat("host:1", "cron", timezone.now(), started=True)
    assert client.head("/health/").status_code == 200
    assert client.post("/health/").status_code == 405


# -- the web process's check ----------------------------------------------------------------


class FakeWebMonitor:
    started = 0

    def __init__(self) -> None:
        self.alive = False

    def start(self) -> None:
        FakeWebMonitor.started += 1
        self.alive = True

    def stop(self, wait: float = 0) -> None:
        self.alive = False


@pytest.fixture
def fake_web_monitor(monkeypatch) -> type[FakeWebMonitor]:
    FakeWebMonitor.started = 0
    monkeypatch.setattr(monitor, "WebMonitor", FakeWebMonitor)
    monkeypatch.setattr(monitor, "_web", None)
    monkeypatch.setattr(monitor, "_web_enabled", False)
    monkeypatch.setattr(monitor.notify, "start_sender", lambda: None)
    return FakeWebMonitor


def test_the_middleware_does_nothing_in_a_process_that_serves_no_requests(
    client: Client, fake_web_monitor
):
    client.get("/health/")
    assert fake_web_monitor.started == 0


def test_wsgi_start_enables_the_web_monitor_and_the_middleware_revives_it(
    client: Client, fake_web_monitor, monkeypatch
):
    monkeypatch.setattr(embedded, "start", lambda: None)
    embedded.start_if_enabled()  # what wsgi.py and asgi.py call
    assert fake_web_monitor.started == 1
    monitor._web.alive = False  # as in a worker forked after the app was loaded
    client.get("/health/")
    assert fake_web_monitor.started == 2
    client.get("/health/")
    assert fake_web_monitor.started == 2


def test_the_web_monitor_step_runs_the_scheduler_down_check_and_never_raises(monkeypatch):
    make_task()
    web = monitor.WebMonitor()
    web.step(T0)
    assert Alert.objects.get().kind == "scheduler_down"

    def broken(now: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(service, "check_scheduler_down", broken)
    web.step(T0)  # logged, not raised


# -- what the report holds, and the command -------------------------------------------------


def test_the_report_lists_runners_and_counts_queued_and_running_runs(client: Client):
    from tests.factories import make_execution, make_user

    now = timezone.now()
    heartbeats.beat("host:1", "daemon", now, started=True)
    heartbeats.beat("host:2", "worker", now - timedelta(seconds=5), started=True)
    task = make_task()
    make_execution(task, status="running", started_at=now)
    make_execution(task, status="pending", not_before=now - timedelta(seconds=1))
    make_execution(task, status="pending", not_before=now + timedelta(minutes=5))
    body = get_health(client).json()
    assert body["executions"] == {"queued": 1, "waiting": 1, "running": 1}
    assert body["backend"] == {"name": "inline", "ok": True}
    assert [(r["kind"], r["state"]) for r in body["runners"]] == [
        ("daemon", "alive"),
        ("worker", "alive"),
    ]
    assert "name" not in body["runners"][0]  # anonymous: no host names
    client.force_login(make_user("ops", perms=("view_scheduledtask",)))
    named = get_health(client).json()
    assert [r["name"] for r in named["runners"]] == ["host:1", "host:2"]


def test_with_celery_an_unreachable_broker_or_no_worker_is_unhealthy(client: Client, settings):
    from scheduled_tasks.backends import celery as celery_backend

    settings.SCHEDULED_TASKS = {
        **settings.SCHEDULED_TASKS,
        "BACKEND": "celery",
        "CELERY_APP": "ticketproo.celery.app",
    }
    heartbeats.beat("host:1", "daemon", timezone.now(), started=True)
    app = celery_backend.celery_app()
    secret_url = "redis://:hunter2-secret@127.0.0.1:1/0"
    original = app.conf.broker_url
    app.conf.broker_url = secret_url
    try:
        response = get_health(client)
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    body = response.json()
    assert body["backend"]["broker"]["ok"] is False
    assert body["backend"]["broker"]["error"]  # the kind of error ...
    assert "hunter2" not in response.content.decode()  # ... never the URL or its text
    assert body["backend"]["workers_alive"] == 0


def test_scheduler_status_exits_zero_when_healthy_and_one_when_not(capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as failure:
        call_command("scheduler_status")
    assert failure.value.returncode == 1
    out = capsys.readouterr().out
    assert "Status: unavailable" in out and "no scheduler has sent a heartbeat" in out

    heartbeats.beat("host:1", "daemon", timezone.now(), started=True)
    call_command("scheduler_status")
    out = capsys.readouterr().out
    assert "Status: ok" in out and "Backend: inline, ok" in out
    assert "daemon    alive    host:1" in out
    call_command("scheduler_status", "--json")
    body = json.loads(capsys.readouterr().out)
    assert body["status"] == "ok" and body["runners"][0]["name"] == "host:1"
