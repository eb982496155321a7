"""Opening and resolving alerts (scheduled_tasks/alerts/service.py): once per condition,
resolved when the condition clears or by hand, through the runner's on_finish hook too."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import pytest
from django.db import connection, connections, transaction

from scheduled_tasks import alerts, heartbeats, runner
from scheduled_tasks.alerts import rules, service
from scheduled_tasks.models import Alert, AlertNotification, Execution
from tests.conftest import Clock, FakeSandbox
from tests.factories import MIN, T0, H, S, make_execution, make_task, make_user

pytestmark = pytest.mark.django_db

BOTH_CHANNELS = {"ALERT_EMAILS": ["ops@example.com"], "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/"}


@pytest.fixture
def channels(settings: Any) -> None:
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, **BOTH_CHANNELS}


@pytest.fixture(autouse=True)
def scheduler_down_minutes(settings: Any) -> Any:
    """No runner beats in these tests: the scheduler-down rule is off unless a test turns it
    on (``scheduler_down_minutes(5)``)."""

    def set_minutes(minutes: int | None) -> None:
        settings.SCHEDULED_TASKS = {
            **settings.SCHEDULED_TASKS,
            "ALERT_SCHEDULER_DOWN_MINUTES": minutes,
        }

    set_minutes(None)
    return set_minutes


def fail(task: Any, at: datetime, status: str = "failed") -> Execution:
    return make_execution(
        task, status=status, trigger="schedule", scheduled_for=at, created_at=at, finished_at=at
    )


def failing_task(count: int = 3, at: datetime = T0) -> Any:
    task = make_task()
    for minute in range(count):
        fail(task, at + minute * MIN)
    return task


def test_a_condition_opens_one_alert_however_often_it_is_checked(channels):
    task = failing_task()
    first = service.check_all(T0 + 5 * MIN)
    second = service.check_all(T0 + 6 * MIN)
    assert [a.key for a in first.opened] == [f"failures:task={task.pk}"]
    assert second.opened == []
    alert = Alert.objects.get()
    assert (alert.kind, alert.status, alert.task_id, alert.opened_at) == (
        "failures",
        "open",
        task.pk,
        T0 + 5 * MIN,
    )
    assert sorted(AlertNotification.objects.values_list("channel", "event")) == [
        ("email", "opened"),
        ("webhook", "opened"),
    ]


def test_no_notification_is_queued_without_a_channel():
    failing_task()
    service.check_all(T0 + 5 * MIN)
    assert Alert.objects.count() == 1
    assert not AlertNotification.objects.exists()


def test_a_second_open_alert_for_a_condition_is_refused_by_the_database(monkeypatch):
    task = failing_task()
    condition = rules.failures_in_a_row(task.pk)
    assert service.open_alert(condition, T0) is not None
    # As if another process had checked at the same moment: it saw no open alert.
    monkeypatch.setattr(service, "_latest", lambda condition: None)
    with transaction.atomic():  # the caller's transaction survives the refused insert
        assert service.open_alert(condition, T0 + S) is None
        assert Alert.objects.filter(status="open").count() == 1


@pytest.mark.django_db(transaction=True)
def test_checks_racing_in_threads_open_one_alert():
    task = failing_task()
    condition = rules.failures_in_a_row(task.pk)
    barrier = threading.Barrier(4)
    results: list[Any] = []
    errors: list[BaseException] = []

    def check() -> None:
        try:
            barrier.wait(5)
            results.append(service.open_alert(condition, T0))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len([r for r in results if r is not None]) == 1
    assert Alert.objects.filter(status="open").count() == 1


def test_failures_resolve_at_the_next_completed_run(channels):
    task = failing_task()
    service.check_all(T0 + 5 * MIN)
    make_execution(task, status="completed", created_at=T0 + 6 * MIN, finished_at=T0 + 6 * MIN)
    report = service.check_all(T0 + 7 * MIN)
    alert = Alert.objects.get()
    assert report.resolved == [alert]
    assert (alert.status, alert.resolved_at, alert.resolved_by) == ("resolved", T0 + 7 * MIN, None)
    assert alert.resolution == "A later run completed."
    assert AlertNotification.objects.filter(event="resolved").count() == 2


def test_a_long_run_alert_opens_once_and_resolves_when_the_run_ends():
    execution = make_execution(make_task(), status="running", started_at=T0)
    assert service.check_all(T0 + 4 * MIN).opened == []
    assert len(service.check_all(T0 + 6 * MIN).opened) == 1
    assert service.check_all(T0 + 7 * MIN).opened == []
    Execution.objects.filter(pk=execution.pk).update(status="completed", finished_at=T0 + 8 * MIN)
    service.check_all(T0 + 9 * MIN)
    alert = Alert.objects.get()
    assert (alert.kind, alert.execution_id, alert.status) == ("long_run", execution.pk, "resolved")


def test_a_missed_slot_alert_resolves_when_the_task_runs_again():
    task = make_task(grace_seconds=60, next_run_at=T0 + H)
    make_execution(
        task, status="skipped", trigger="schedule", scheduled_for=T0, created_at=T0,
        finished_at=T0, slots_skipped=2,
    )  # fmt: skip
    service.check_all(T0 + MIN)
    assert Alert.objects.get().kind == "missed"
    make_execution(task, status="completed", trigger="schedule", scheduled_for=T0 + H,
                   created_at=T0 + H, finished_at=T0 + H)  # fmt: skip
    service.check_all(T0 + H + MIN)
    assert Alert.objects.get().status == "resolved"


def test_scheduler_down_with_no_runner_at_all_opens_and_a_heartbeat_resolves_it(
    scheduler_down_minutes,
):
    scheduler_down_minutes(5)
    make_task()
    report = service.check_all(T0)
    assert [a.kind for a in report.opened] == ["scheduler_down"]
    assert service.check_scheduler_down(T0 + MIN).opened == []  # still one
    heartbeats.beat("host:1", "daemon", T0 + 2 * MIN, started=True)
    report = service.check_scheduler_down(T0 + 2 * MIN)
    assert [a.kind for a in report.resolved] == ["scheduler_down"]
    assert Alert.objects.get().resolution == "A scheduler sent a heartbeat."


def test_scheduler_down_opens_again_after_it_resolved(scheduler_down_minutes):
    scheduler_down_minutes(5)
    make_task()
    heartbeats.beat("host:1", "daemon", T0, started=True)
    service.check_all(T0 + 6 * MIN)
    heartbeats.beat("host:1", "daemon", T0 + 7 * MIN)
    service.check_all(T0 + 7 * MIN)
    service.check_all(T0 + 20 * MIN)
    assert list(Alert.objects.order_by("id").values_list("status", flat=True)) == [
        "resolved",
        "open",
    ]


# -- by hand --------------------------------------------------------------------------------


def test_resolve_by_hand_records_who_and_notifies(channels):
    failing_task()
    service.check_all(T0 + 5 * MIN)
    alert = Alert.objects.get()
    user = make_user("oncall")
    assert alerts.resolve(alert, user, T0 + 10 * MIN, "known outage")
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by, alert.resolved_at) == ("resolved", user, T0 + 10 * MIN)
    assert alert.resolution == "Resolved by hand by oncall: known outage"
    assert AlertNotification.objects.filter(event="resolved").count() == 2
    assert not alerts.resolve(alert, user, T0 + 11 * MIN)  # already resolved


def test_a_condition_resolved_by_hand_reopens_only_on_new_evidence():
    task = failing_task()
    service.check_all(T0 + 5 * MIN)
    alerts.resolve(Alert.objects.get(), None, T0 + 10 * MIN)
    assert service.check_all(T0 + 11 * MIN).opened == []  # the same three failures
    fail(task, T0 + 12 * MIN)  # a fourth
    assert len(service.check_all(T0 + 13 * MIN).opened) == 1
    assert Alert.objects.filter(status="open").count() == 1


# -- right after a run, through the runner's on_finish ---------------------------------------


def test_the_third_failing_run_opens_the_alert_as_it_ends_and_a_success_resolves_it():
    task = make_task(next_run_at=T0)
    sandbox = FakeSandbox("failed", "timeout", "failed", "completed")
    opened_at: list[int] = []

    def on_finish(execution: Execution) -> None:
        alerts.after_run(execution, execution.finished_at)
        opened_at.append(Alert.objects.filter(status="open").count())

    for hour in range(4):
        now = T0 + hour * H
        runner.tick(
            now,
            clock=Clock(now),
            snippet_executor=sandbox,
            function_executor=sandbox.function,
            on_finish=on_finish,
        )
    assert opened_at == [0, 0, 1, 0]
    alert = Alert.objects.get()
    assert (alert.kind, alert.task_id, alert.status) == ("failures", task.pk, "resolved")


def test_after_run_resolves_the_runs_long_run_alert():
    execution = make_execution(make_task(), status="running", started_at=T0)
    service.check_all(T0 + 10 * MIN)
    Execution.objects.filter(pk=execution.pk).update(status="completed")
    execution.refresh_from_db()
    report = alerts.after_run(execution, T0 + 11 * MIN)
    assert [a.kind for a in report.resolved] == ["long_run"]


def test_after_run_ignores_test_runs_and_never_raises(monkeypatch):
    task = failing_task(2)
    test_run = make_execution(task, status="failed", trigger="test", finished_at=T0 + H)
    assert alerts.after_run(test_run, T0 + H).opened == []

    def broken(*args: Any) -> None:
        raise RuntimeError("rule bug")

    monkeypatch.setattr(rules, "failures_in_a_row", broken)
    report = alerts.after_run(fail(task, T0 + H), T0 + H)
    assert report.errors == ["RuntimeError: rule bug"]


def test_a_failing_rule_does_not_stop_the_others(monkeypatch, scheduler_down_minutes):
    scheduler_down_minutes(5)
    make_task()  # and no runner: the scheduler is down

    def broken(now: datetime) -> list[Any]:
        raise RuntimeError("rule bug")

    monkeypatch.setattr(rules, "long_runs", broken)
    report = service.check_all(T0)
    assert [a.kind for a in report.opened] == ["scheduler_down"]
    assert report.errors == ["check_long_runs: RuntimeError: rule bug"]


def test_a_database_outage_ends_the_check_for_the_caller_to_log(monkeypatch):
    from django.db import OperationalError

    def down(now: datetime) -> list[Any]:
        raise OperationalError("server closed the connection")

    monkeypatch.setattr(rules, "failures", down)
    with pytest.raises(OperationalError):
        service.check_all(T0)


def test_summary_counts_open_alerts_by_kind(scheduler_down_minutes):
    scheduler_down_minutes(5)
    failing_task()
    make_execution(make_task(), status="running", started_at=T0)
    service.check_all(T0 + 10 * MIN)
    summary = alerts.summary()
    assert summary["open"] == 3
    assert summary["by_kind"] == {
        "failures": 1,
        "long_run": 1,
        "missed": 0,
        "scheduler_down": 1,
    }


def test_check_all_runs_a_bounded_number_of_queries(django_assert_max_num_queries):
    heartbeats.beat("host:1", "daemon", T0, started=True)
    with django_assert_max_num_queries(12):
        service.check_all(T0 + MIN)
    assert connection.vendor in ("sqlite", "postgresql")


# -- the settings' system checks ------------------------------------------------------------


def check_ids(settings: Any, **values: Any) -> list[str]:
    from scheduled_tasks.checks import check_alert_settings

    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, **values}
    return [problem.id for problem in check_alert_settings()]


def test_the_default_alert_settings_pass_the_checks(settings: Any):
    assert check_ids(settings, ALERT_SCHEDULER_DOWN_MINUTES=5) == []
    assert check_ids(settings, **BOTH_CHANNELS) == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"ALERT_FAILURES_IN_A_ROW": 0}, "scheduled_tasks.E050"),
        ({"ALERT_THRESHOLD_MINUTES": "5"}, "scheduled_tasks.E050"),
        ({"ALERT_SCHEDULER_DOWN_MINUTES": 2.5}, "scheduled_tasks.E050"),
        ({"ALERT_WEBHOOK_TIMEOUT_SECONDS": 0}, "scheduled_tasks.E051"),
        ({"HEARTBEAT_SECONDS": True}, "scheduled_tasks.E051"),
        ({"ALERT_CHECK_SECONDS": None}, "scheduled_tasks.E051"),
        ({"ALERT_WEBHOOK_RETRIES": -1}, "scheduled_tasks.E052"),
        ({"ALERT_EMAILS": "ops@example.com"}, "scheduled_tasks.E053"),
        ({"ALERT_EMAILS": ["not an address"]}, "scheduled_tasks.E053"),
        ({"ALERT_WEBHOOK_URL": "ftp://example.com/hook"}, "scheduled_tasks.E054"),
        (
            {"HEARTBEAT_SECONDS": 200, "ALERT_SCHEDULER_DOWN_MINUTES": 5},
            "scheduled_tasks.W050",
        ),
    ],
)
def test_bad_alert_settings_are_reported(settings: Any, values: dict, expected: str):
    assert check_ids(settings, **values) == [expected]
