"""Alert notifications (scheduled_tasks/alerts/notify.py): the outbox, e-mail, and the
webhook against a real HTTP server on 127.0.0.1 that answers, fails or hangs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core import mail
from django.db import connections

from scheduled_tasks import alerts
from scheduled_tasks.alerts import notify, rules, service
from scheduled_tasks.models import Alert, AlertNotification
from tests.factories import MIN, T0, S, make_execution, make_task

pytestmark = pytest.mark.django_db


class Receiver:
    """A webhook receiver: records each POST; ``mode`` says how it answers: "ok" (204),
    "fail" (500) or "hang" (answers only when released, or after 10 s)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        self.received = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {
                        "path": self.path,
                        "content_type": self.headers["Content-Type"],
                        "json": json.loads(body),
                    }
                )
                receiver.received.set()
                if receiver.mode == "hang":
                    receiver.release.wait(10)
                status = 500 if receiver.mode == "fail" else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    with Receiver() as server:
        settings.SCHEDULED_TASKS = {
            **settings.SCHEDULED_TASKS,
            "ALERT_WEBHOOK_URL": server.url,
            "ALERT_WEBHOOK_TIMEOUT_SECONDS": 0.5,
            "ALERT_WEBHOOK_RETRIES": 2,
            "ALERT_SCHEDULER_DOWN_MINUTES": None,
        }
        yield server


def open_failures_alert(task_name: str = "nightly export") -> Alert:
    task = make_task(name=task_name)
    for minute in range(3):
        make_execution(
            task, status="failed", trigger="schedule", scheduled_for=T0 + minute * MIN,
            created_at=T0 + minute * MIN, finished_at=T0 + minute * MIN,
        )  # fmt: skip
    alert = service.open_alert(rules.failures_in_a_row(task.pk), T0 + 5 * MIN)
    assert alert is not None
    return alert


def test_the_webhook_receives_the_alert_as_json(receiver: Receiver):
    alert = open_failures_alert()
    assert receiver.requests == []  # opening only queues: nothing is sent on the way
    assert notify.send_due(T0 + 5 * MIN) == 1
    [request] = receiver.requests
    assert request["path"] == "/hooks/alerts"
    assert request["content_type"] == "application/json"
    body = request["json"]
    assert body["event"] == "opened"
    assert body["alert"] == {
        "id": alert.pk,
        "kind": "failures",
        "status": "open",
        "key": f"failures:task={alert.task_id}",
        "message": alert.message,
        "task_id": alert.task_id,
        "task_name": "nightly export",
        "execution_id": alert.execution_id,
        "opened_at": "2026-01-05T09:05:00Z",
        "resolved_at": None,
        "details": alert.details,
    }
    row = AlertNotification.objects.get()
    assert (row.attempts, row.sent_at, row.next_attempt_at, row.last_error) == (
        1,
        T0 + 5 * MIN,
        None,
        "",
    )
    assert notify.send_due(T0 + 10 * MIN) == 0  # sent once
    assert len(receiver.requests) == 1


def test_resolving_sends_a_resolved_event(receiver: Receiver):
    alert = open_failures_alert()
    alerts.resolve(alert, None, T0 + 6 * MIN)
    notify.send_due(T0 + 6 * MIN)
    assert [r["json"]["event"] for r in receiver.requests] == ["opened", "resolved"]
    resolved = receiver.requests[1]["json"]["alert"]
    assert resolved["status"] == "resolved"
    assert resolved["resolved_at"] == "2026-01-05T09:06:00Z"


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(receiver: Receiver):
    receiver.mode = "fail"
    open_failures_alert()
    now = T0 + 5 * MIN
    assert notify.send_due(now) == 1
    row = AlertNotification.objects.get()
    assert (row.attempts, row.last_error, row.sent_at) == (
        1,
        "HTTP 500 Internal Server Error",
        None,
    )
    assert row.next_attempt_at == now + timedelta(seconds=30)
    assert notify.send_due(now + 29 * S) == 0  # not yet
    assert notify.send_due(now + 30 * S) == 1
    row.refresh_from_db()
    assert row.next_attempt_at == now + 30 * S + timedelta(seconds=60)  # the backoff doubles
    assert notify.send_due(now + 90 * S) == 1  # the second retry, the last one
    row.refresh_from_db()
    assert (row.attempts, row.next_attempt_at, row.sent_at) == (3, None, None)  # given up
    assert row.last_error == "HTTP 500 Internal Server Error"
    assert notify.send_due(now + timedelta(days=1)) == 0
    assert len(receiver.requests) == 3  # 1 + ALERT_WEBHOOK_RETRIES


def test_a_receiver_that_recovers_gets_the_retry(receiver: Receiver):
    receiver.mode = "fail"
    open_failures_alert()
    notify.send_due(T0 + 5 * MIN)
    receiver.mode = "ok"
    notify.send_due(T0 + 6 * MIN)
    row = AlertNotification.objects.get()
    assert (row.attempts, row.sent_at, row.last_error) == (2, T0 + 6 * MIN, "")


def test_a_hanging_receiver_times_out_and_is_retried(receiver: Receiver):
    receiver.mode = "hang"
    open_failures_alert()
    assert notify.send_due(T0 + 5 * MIN) == 1  # returns after the 0.5 s timeout
    receiver.release.set()
    row = AlertNotification.objects.get()
    assert row.sent_at is None
    assert "timed out" in row.last_error
    assert row.next_attempt_at == T0 + 5 * MIN + timedelta(seconds=30)


def test_a_dead_webhook_never_delays_a_run(receiver: Receiver):
    receiver.mode = "hang"
    task = make_task()
    for minute in range(3):
        execution = make_execution(
            task, status="failed", trigger="schedule", created_at=T0 + minute * MIN,
            scheduled_for=T0 + minute * MIN, finished_at=T0 + minute * MIN,
        )  # fmt: skip
        alerts.after_run(execution, T0 + minute * MIN)  # what the runner calls as a run ends
    assert Alert.objects.filter(status="open").count() == 1
    assert receiver.requests == []  # the runner only queued it
    assert AlertNotification.objects.get().attempts == 0


def test_an_unreachable_webhook_records_the_error(settings: Any):
    settings.SCHEDULED_TASKS = {
        **settings.SCHEDULED_TASKS,
        "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/nothing-listens",  # the discard port
        "ALERT_WEBHOOK_TIMEOUT_SECONDS": 0.5,
    }
    open_failures_alert()
    notify.send_due(T0 + 5 * MIN)
    row = AlertNotification.objects.get()
    assert row.sent_at is None and row.attempts == 1
    assert row.last_error  # e.g. ConnectionRefusedError: [Errno 111] Connection refused


def test_alerts_are_emailed_to_alert_emails(settings: Any):
    settings.SCHEDULED_TASKS = {
        **settings.SCHEDULED_TASKS,
        "ALERT_EMAILS": ["ops@example.com", "cto@example.com"],
    }
    alert = open_failures_alert()
    assert list(AlertNotification.objects.values_list("channel", flat=True)) == ["email"]
    notify.send_due(T0 + 5 * MIN)
    [message] = mail.outbox
    assert message.to == ["ops@example.com", "cto@example.com"]
    assert message.subject.startswith("[TicketProo] Alert opened: Task “nightly export” failed")
    assert alert.key in message.body
    assert AlertNotification.objects.get().sent_at == T0 + 5 * MIN


def test_a_failing_mail_server_is_retried(settings: Any, monkeypatch):
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "ALERT_EMAILS": ["ops@example.com"]}

    def refused(*args: Any, **kwargs: Any) -> None:
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(notify, "send_mail", refused)
    open_failures_alert()
    notify.send_due(T0 + 5 * MIN)
    row = AlertNotification.objects.get()
    assert row.last_error == "ConnectionRefusedError: smtp down"
    assert row.next_attempt_at == T0 + 5 * MIN + timedelta(seconds=30)


def test_two_senders_never_claim_the_same_notification(receiver: Receiver):
    open_failures_alert()
    row = AlertNotification.objects.get()
    seen = row.next_attempt_at
    assert notify.claim(row.pk, seen, T0 + 5 * MIN) is True
    assert notify.claim(row.pk, seen, T0 + 5 * MIN) is False  # the other sender saw the same


def test_a_claimed_notification_of_a_sender_that_died_is_sent_later(receiver: Receiver):
    open_failures_alert()
    row = AlertNotification.objects.get()
    assert notify.claim(row.pk, row.next_attempt_at, T0 + 5 * MIN)  # ... and the process dies
    assert notify.send_due(T0 + 5 * MIN + 10 * S) == 0  # still claimed
    assert notify.send_due(T0 + 7 * MIN) == 1  # the claim ran out
    row.refresh_from_db()
    assert row.sent_at is not None and row.attempts == 2


def test_the_backoff_doubles_up_to_an_hour():
    assert [notify.backoff_seconds(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert notify.backoff_seconds(20) == 3600


@pytest.mark.django_db(transaction=True)
def test_the_sender_thread_delivers_when_woken(receiver: Receiver):
    sender = notify.Sender(poll=30)
    try:
        sender.start()
        open_failures_alert()  # commits: on_commit wakes this process's sender... if started
        sender.wake()
        assert receiver.received.wait(10)
    finally:
        sender.stop(5)
        connections.close_all()
    assert receiver.requests[0]["json"]["event"] == "opened"


def test_start_sender_needs_a_channel(settings: Any):
    settings.SCHEDULED_TASKS = {
        **settings.SCHEDULED_TASKS,
        "ALERT_EMAILS": [],
        "ALERT_WEBHOOK_URL": "",
    }
    assert notify.start_sender() is None


def test_a_stopping_sender_claims_nothing_more(receiver: Receiver):
    open_failures_alert()
    assert notify.send_due(T0 + 5 * MIN, should_stop=lambda: True) == 0
    assert AlertNotification.objects.get().attempts == 0
    assert receiver.requests == []
