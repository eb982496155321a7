"""Runner heartbeats (scheduled_tasks/heartbeats.py) and the runner's monitor that writes them
(scheduled_tasks/alerts/monitor.py), through the daemon loop and the cron pass."""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command

from scheduled_tasks import heartbeats
from scheduled_tasks.alerts import monitor as alert_monitor
from scheduled_tasks.alerts import service
from scheduled_tasks.daemon import Scheduler
from scheduled_tasks.models import Alert, RunnerHeartbeat
from scheduled_tasks.runner import TickReport
from tests.factories import MIN, T0, H, S, make_task

pytestmark = pytest.mark.django_db


def test_first_beat_creates_the_row_and_later_beats_renew_it():
    heartbeats.beat("host:1", "daemon", T0, concurrency=4, running=1, started=True)
    heartbeats.beat("host:1", "daemon", T0 + MIN, concurrency=4, running=3)
    row = RunnerHeartbeat.objects.get(runner="host:1")
    assert (row.kind, row.concurrency, row.running) == ("daemon", 4, 3)
    assert row.started_at == T0
    assert row.last_seen_at == T0 + MIN
    assert row.stopped_at is None


def test_a_restarted_runner_gets_a_new_start_time_and_forgets_its_clean_stop():
    heartbeats.beat("host:1", "daemon", T0, started=True)
    assert heartbeats.stopped("host:1", T0 + MIN)
    heartbeats.beat("host:1", "daemon", T0 + H, started=True)
    row = RunnerHeartbeat.objects.get(runner="host:1")
    assert (row.started_at, row.last_seen_at, row.stopped_at) == (T0 + H, T0 + H, None)


def test_stopped_records_the_clean_stop_as_the_last_sighting():
    heartbeats.beat("host:1", "cron", T0, running=2, started=True)
    heartbeats.stopped("host:1", T0 + 5 * S)
    row = RunnerHeartbeat.objects.get(runner="host:1")
    assert (row.stopped_at, row.last_seen_at, row.running) == (T0 + 5 * S, T0 + 5 * S, 0)
    assert heartbeats.stopped("nobody:2", T0) is False


def test_latest_and_age_count_schedulers_not_workers():
    heartbeats.beat("host:1", "daemon", T0, started=True)
    heartbeats.beat("host:2", "worker", T0 + 2 * MIN, started=True)
    assert heartbeats.latest().runner == "host:1"
    assert heartbeats.age_seconds(T0 + 3 * MIN) == 180.0
    assert heartbeats.alive_since(T0) is True
    assert heartbeats.alive_since(T0 + S) is False


def test_age_is_none_without_any_heartbeat():
    assert heartbeats.latest() is None
    assert heartbeats.age_seconds(T0) is None


def test_prune_deletes_long_gone_runners_but_keeps_the_newest_scheduler():
    heartbeats.beat("cron:1", "cron", T0, started=True)
    heartbeats.stopped("cron:1", T0)
    heartbeats.beat("cron:2", "cron", T0 + 2 * H, started=True)
    heartbeats.stopped("cron:2", T0 + 2 * H)
    heartbeats.beat("died:3", "daemon", T0 - 2 * 24 * H, started=True)  # silent for two days
    heartbeats.beat("alive:4", "daemon", T0 - 2 * H, started=True)  # silent, not a day yet
    assert heartbeats.prune(T0 + 5 * H) == 2
    assert set(RunnerHeartbeat.objects.values_list("runner", flat=True)) == {"cron:2", "alive:4"}


# -- the runner's monitor -------------------------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.value = 100.0

    def __call__(self) -> float:
        return self.value


def test_monitor_beats_and_checks_when_their_time_comes(monkeypatch):
    checks: list[datetime] = []
    monkeypatch.setattr(service, "check_all", lambda now: checks.append(now))
    mono = FakeMonotonic()
    monitor = alert_monitor.RunnerMonitor(
        "host:9",
        "daemon",
        concurrency=2,
        running=lambda: 1,
        monotonic=mono,
        heartbeat_seconds=30,
        check_seconds=60,
    )
    monitor.step(T0)
    mono.value += 29
    monitor.step(T0 + 29 * S)  # neither is due
    mono.value += 1
    monitor.step(T0 + 30 * S)  # the heartbeat is
    mono.value += 30
    monitor.step(T0 + 60 * S)  # both are
    row = RunnerHeartbeat.objects.get(runner="host:9")
    assert (row.started_at, row.last_seen_at, row.running, row.concurrency) == (
        T0,
        T0 + 60 * S,
        1,
        2,
    )
    assert checks == [T0, T0 + 60 * S]


def test_monitor_never_raises_when_the_checks_or_the_heartbeat_fail(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("bug in a rule")

    monkeypatch.setattr(service, "check_all", broken)
    monkeypatch.setattr(heartbeats, "beat", broken)
    monitor = alert_monitor.RunnerMonitor("host:9", "daemon", running=lambda: 0)
    with caplog.at_level(logging.ERROR, logger="scheduled_tasks.alerts"):
        monitor.step(T0)
    assert "alert checks failed" in caplog.text
    assert "heartbeat of host:9 failed" in caplog.text


def test_monitor_start_beats_at_once_and_stop_records_the_clean_stop(monkeypatch):
    monkeypatch.setattr(service, "check_all", lambda now: None)
    clock = [T0]
    monitor = alert_monitor.RunnerMonitor(
        "host:9",
        "cron",
        running=lambda: 0,
        clock=lambda: clock[0],
        heartbeat_seconds=3600,  # the thread waits longer than the test lasts
        check_seconds=3600,
    )
    monitor.start()
    assert RunnerHeartbeat.objects.get(runner="host:9").stopped_at is None
    clock[0] = T0 + 5 * S
    monitor.stop()
    row = RunnerHeartbeat.objects.get(runner="host:9")
    assert (row.kind, row.started_at, row.stopped_at) == ("cron", T0, T0 + 5 * S)


def test_a_monitored_daemon_loop_beats_while_it_runs_and_records_its_stop(monkeypatch):
    monkeypatch.setattr(service, "check_all", lambda now: service.CheckReport())
    seen: list[RunnerHeartbeat] = []

    def tick(now: datetime, **kwargs) -> TickReport:
        seen.extend(RunnerHeartbeat.objects.all())
        scheduler.stop()
        return TickReport()

    scheduler = Scheduler(
        interval=10,
        clock=lambda: T0,
        sleep=lambda seconds: None,
        next_due_at=lambda now: None,
        peek_seconds=None,
        tick=tick,
        runner_id="host:77",
        monitored=True,
        kind="daemon",
        concurrency=2,
    )
    scheduler.run()
    assert [(row.runner, row.kind, row.stopped_at) for row in seen] == [("host:77", "daemon", None)]
    assert RunnerHeartbeat.objects.get(runner="host:77").stopped_at == T0


def test_an_unmonitored_loop_writes_no_heartbeat():
    def tick(now: datetime, **kwargs) -> TickReport:
        scheduler.stop()
        return TickReport()

    scheduler = Scheduler(
        interval=10, clock=lambda: T0, sleep=lambda s: None, tick=tick, peek_seconds=None
    )
    scheduler.run()
    assert not RunnerHeartbeat.objects.exists()


def test_a_cron_pass_leaves_a_cron_heartbeat_and_resolves_scheduler_down():
    make_task(name="waiting", next_run_at=T0 + 365 * 24 * H)  # active, not due
    service.check_scheduler_down(T0)  # no runner at all: the scheduler is down
    assert Alert.objects.filter(kind="scheduler_down", status="open").exists()
    call_command("run_scheduled_tasks", stdout=io.StringIO())
    row = RunnerHeartbeat.objects.get()
    assert row.kind == "cron" and row.stopped_at is not None
    alert = Alert.objects.get(kind="scheduler_down")
    assert alert.status == "resolved" and alert.resolution == service.CLEARED["scheduler_down"]


def test_monitor_running_count_defaults_to_the_runners_running_executions():
    from tests.factories import make_execution

    task = make_task()
    make_execution(task, status="running", runner="host:5", started_at=T0)
    make_execution(task, status="running", runner="other:6", started_at=T0)
    monitor = alert_monitor.RunnerMonitor("host:5", "daemon")
    assert monitor.beat(T0)
    assert RunnerHeartbeat.objects.get(runner="host:5").running == 1
    assert timedelta(0) == T0 - RunnerHeartbeat.objects.get(runner="host:5").last_seen_at
