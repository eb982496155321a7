"""The daemon loop: sleep planning, stopping, database outages, signals; real daemon processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from scheduled_tasks import daemon
from scheduled_tasks.daemon import Scheduler, backoff_seconds, plan_sleep
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.runner import TickReport
from scheduled_tasks.sandbox import SnippetResult
from tests.conftest import run_manage, start_manage
from tests.factories import T0, make_task

# -- pure planning ------------------------------------------------------------------------------


def test_sleeps_until_the_next_due_time_when_it_comes_before_the_interval():
    assert plan_sleep(T0, T0 + timedelta(seconds=3.5), 10) == 3.5


def test_sleeps_the_interval_when_the_next_due_time_is_later_or_unknown():
    assert plan_sleep(T0, T0 + timedelta(minutes=5), 10) == 10
    assert plan_sleep(T0, None, 10) == 10


def test_does_not_sleep_when_something_is_already_due():
    assert plan_sleep(T0, T0 - timedelta(seconds=1), 10) == 0


def test_polls_briefly_when_the_earliest_due_work_could_not_start():
    # The tick at T0 saw this slot and could not run it (the task is busy elsewhere).
    stuck = T0 - timedelta(seconds=5)
    assert plan_sleep(T0, stuck, 10, stuck_before=T0, busy_poll=1) == 1
    assert plan_sleep(T0, stuck, 0.5, stuck_before=T0, busy_poll=1) == 0.5
    # Work that became due after that tick is not stuck.
    assert (
        plan_sleep(T0, T0 - timedelta(seconds=1), 10, stuck_before=T0 - timedelta(seconds=2)) == 0
    )


def test_backoff_doubles_from_one_second_up_to_a_minute():
    assert [backoff_seconds(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


# -- the loop, with a fake clock and sleeper ----------------------------------------------------


class FakeTime:
    """A clock that only moves when the scheduler sleeps."""

    def __init__(self) -> None:
        self.now = T0
        self.mono = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep = lambda: None

    def clock(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += timedelta(seconds=seconds)
        self.mono += seconds
        self.on_sleep()


def make_scheduler(fake: FakeTime, **options) -> Scheduler:
    defaults = {
        "interval": 10,
        "clock": fake.clock,
        "monotonic": fake.monotonic,
        "sleep": fake.sleep,
        "next_due_at": lambda now: None,
        "peek_seconds": None,
    }
    return Scheduler(**{**defaults, **options})


def stop_after_sleeps(fake: FakeTime, scheduler: Scheduler, count: int) -> None:
    def on_sleep() -> None:
        if len(fake.sleeps) >= count:
            scheduler.stop()

    fake.on_sleep = on_sleep


def test_run_once_ticks_and_returns_the_time_until_the_next_due_task():
    fake = FakeTime()
    ticks: list[datetime] = []

    def tick(now: datetime, **kwargs) -> TickReport:
        ticks.append(now)
        return TickReport()

    scheduler = make_scheduler(fake, tick=tick, next_due_at=lambda now: now + timedelta(seconds=4))
    assert scheduler.run_once() == 4
    assert ticks == [T0]


def test_loop_wakes_at_each_due_time_and_otherwise_every_interval():
    fake = FakeTime()
    due = [T0 + timedelta(seconds=3), T0 + timedelta(seconds=40)]
    ticks: list[datetime] = []

    def tick(now: datetime, **kwargs) -> TickReport:
        ticks.append(now)
        while due and due[0] <= now:
            due.pop(0)
        return TickReport()

    scheduler = make_scheduler(fake, tick=tick, next_due_at=lambda now: due[0] if due else None)
    stop_after_sleeps(fake, scheduler, 6)
    scheduler.run()
    assert fake.sleeps == [3, 10, 10, 10, 7, 10]
    assert ticks == [T0 + timedelta(seconds=s) for s in (0, 3, 13, 23, 33, 40)]


def test_sleep_is_cut_short_when_new_work_becomes_due_sooner():
    fake = FakeTime()
    due: list[datetime] = []
    ticks: list[datetime] = []

    def tick(now: datetime, **kwargs) -> TickReport:
        ticks.append(now)
        return TickReport()

    def on_sleep() -> None:
        if len(fake.sleeps) == 2:  # someone creates a task due 1.5 s from now
            due.append(fake.now + timedelta(seconds=1.5))
        if len(ticks) == 2:
            scheduler.stop()

    fake.on_sleep = on_sleep
    scheduler = make_scheduler(
        fake, tick=tick, next_due_at=lambda now: min(due) if due else None, peek_seconds=1
    )
    scheduler.run()
    assert fake.sleeps[:4] == [1, 1, 1, 0.5]
    assert ticks == [T0, T0 + timedelta(seconds=3.5)]


def test_stop_ends_the_loop_without_another_tick():
    fake = FakeTime()
    ticks = []
    scheduler = make_scheduler(fake, tick=lambda now, **kw: ticks.append(now) or TickReport())
    stop_after_sleeps(fake, scheduler, 1)
    scheduler.run()
    assert len(ticks) == 1
    assert fake.sleeps == [10]


def test_keep_running_false_means_no_tick_at_all():
    fake = FakeTime()
    ticks = []
    scheduler = make_scheduler(
        fake, tick=lambda now, **kw: ticks.append(now) or TickReport(), keep_running=lambda: False
    )
    scheduler.run()
    assert ticks == []


@pytest.fixture
def connection_resets(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(Scheduler, "_reset_connection", staticmethod(lambda: calls.append(1)))
    return calls


def test_database_outage_backs_off_logs_and_recovers(caplog, connection_resets):
    fake = FakeTime()
    outcomes: list[Exception | None] = [
        OperationalError("connection refused"),
        InterfaceError("connection already closed"),
        OperationalError("connection refused"),
        None,
    ]

    def tick(now: datetime, **kwargs) -> TickReport:
        outcome = outcomes.pop(0) if outcomes else None
        if outcome is not None:
            raise outcome
        return TickReport()

    scheduler = make_scheduler(fake, tick=tick)
    stop_after_sleeps(fake, scheduler, 4)
    with caplog.at_level(logging.INFO, logger="scheduled_tasks.daemon"):
        scheduler.run()
    assert fake.sleeps == [1, 2, 4, 10]  # backoff, then the normal interval
    assert len(connection_resets) == 3
    assert scheduler.failures == 0
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    failures = [m for m in messages if "database unavailable" in m[1]]
    assert [level for level, _ in failures] == ["ERROR", "WARNING", "WARNING"]
    assert "attempt 1" in failures[0][1] and "retrying in 1 s" in failures[0][1]
    assert "attempt 3" in failures[2][1] and "retrying in 4 s" in failures[2][1]
    assert any("recovered" in text and "3 failed attempt(s)" in text for _, text in messages)


def test_other_tick_errors_are_logged_with_a_traceback_and_retried(caplog, connection_resets):
    fake = FakeTime()
    calls = []

    def tick(now: datetime, **kwargs) -> TickReport:
        calls.append(now)
        if len(calls) == 1:
            raise ValueError("bug")
        return TickReport()

    scheduler = make_scheduler(fake, tick=tick)
    stop_after_sleeps(fake, scheduler, 2)
    with caplog.at_level(logging.INFO, logger="scheduled_tasks.daemon"):
        scheduler.run()
    assert fake.sleeps == [1, 10]
    failed = [r for r in caplog.records if "tick failed" in r.getMessage()]
    assert failed and failed[0].exc_info is not None


def test_backoff_sleep_ends_at_once_when_stopped(connection_resets):
    fake = FakeTime()

    def tick(now: datetime, **kwargs) -> TickReport:
        raise OperationalError("down")

    scheduler = make_scheduler(fake, tick=tick, backoff_initial=30)
    stop_after_sleeps(fake, scheduler, 1)
    scheduler.run()
    assert fake.sleeps == [30]


# -- the loop against the database --------------------------------------------------------------


class StoppingExecutor:
    """A sandbox stand-in that asks the scheduler to stop during the first run."""

    def __init__(self) -> None:
        self.scheduler: Scheduler | None = None
        self.calls: list[str] = []

    def __call__(self, code: str, **options) -> SnippetResult:
        self.calls.append(code)
        assert self.scheduler is not None
        self.scheduler.stop()  # SIGTERM arrives while this run is in progress
        return SnippetResult("completed", "done\n", "", 0.01)


@pytest.mark.django_db
def test_stop_during_a_run_lets_it_finish_and_claims_nothing_more():
    for i in range(3):
        make_task(name=f"t{i}", code=f"print({i})", anchor=T0)
    fake = FakeTime()
    fake.now = T0 + timedelta(seconds=1)
    executor = StoppingExecutor()
    scheduler = make_scheduler(fake, snippet_executor=executor, next_due_at=lambda now: None)
    executor.scheduler = scheduler
    scheduler.run()
    assert len(executor.calls) == 1
    execution = Execution.objects.get(status="completed")
    assert execution.output == "done\n"
    # The other two were claimed in the same batch but not started: they are handed back,
    # due for the next runner at once.
    handed_back = Execution.objects.filter(status="pending")
    assert handed_back.count() == 2
    assert set(handed_back.values_list("runner", flat=True)) == {""}
    assert Execution.objects.due_retries(fake.now).count() == 2
    assert fake.sleeps == []


@pytest.mark.django_db
def test_a_tick_that_runs_work_is_followed_at_once_by_the_next_due_item():
    make_task(name="now", anchor=T0)
    make_task(name="soon", anchor=T0 + timedelta(seconds=2))
    fake = FakeTime()
    fake.now = T0
    calls = []

    def executor(code: str, **options) -> SnippetResult:
        calls.append(fake.now)
        return SnippetResult("completed", "", "", 0.0)

    from scheduled_tasks import runner

    scheduler = make_scheduler(fake, snippet_executor=executor, next_due_at=runner.next_due_at)
    stop_after_sleeps(fake, scheduler, 2)
    scheduler.run()
    assert calls == [T0, T0 + timedelta(seconds=2)]
    assert fake.sleeps == [2, 10]  # the next hourly slots are an hour away


# -- signals, in this process -------------------------------------------------------------------


def tick_running():
    """A fake tick that makes one sandbox call, like a due task would."""
    results: list[SnippetResult] = []

    def tick(now: datetime, **kwargs) -> TickReport:
        if not results:
            results.append(kwargs["snippet_executor"]("code", timeout=10))
        return TickReport()

    return tick, results


def busy_run(seconds: float, signals: list[tuple[float, int]]):
    """A run that lasts ``seconds`` and sends this process ``signals`` at given moments, so
    they always arrive while the run is in progress (and after the handlers are in place)."""

    def body(code: str, **options) -> SnippetResult:
        started = time.monotonic()
        pending = sorted(signals)
        while time.monotonic() - started < seconds:
            if pending and time.monotonic() - started >= pending[0][0]:
                os.kill(os.getpid(), pending.pop(0)[1])
            time.sleep(0.01)
        return SnippetResult("completed", "finished\n", "", seconds)

    return body


def scheduler_with_one_run(run, shutdown_timeout: float | None) -> tuple[Scheduler, list]:
    tick, results = tick_running()
    scheduler = Scheduler(
        interval=30,
        shutdown_timeout=shutdown_timeout,
        tick=tick,
        next_due_at=lambda now: None,
        snippet_executor=run,
        peek_seconds=None,
    )
    return scheduler, results


def test_sigterm_lets_the_run_in_progress_finish_then_stops():
    scheduler, results = scheduler_with_one_run(busy_run(0.5, [(0.05, signal.SIGTERM)]), 10)
    previous = signal.getsignal(signal.SIGTERM)
    with scheduler.signals_handled():
        scheduler.run()
    assert results[0].status == "completed"
    assert scheduler.stopping
    assert signal.getsignal(signal.SIGTERM) is previous


def test_shutdown_timeout_kills_the_run_and_records_it_as_abandoned():
    scheduler, results = scheduler_with_one_run(busy_run(20, [(0.05, signal.SIGTERM)]), 0.2)
    started = time.monotonic()
    with scheduler.signals_handled():
        scheduler.run()
    assert time.monotonic() - started < 10  # not the 20 s the run wanted
    assert results[0].status == "abandoned"
    assert "killed after the shutdown timeout (0.2 s)" in results[0].error


def test_a_second_signal_kills_the_run_at_once():
    run = busy_run(20, [(0.05, signal.SIGINT), (0.2, signal.SIGINT)])
    scheduler, results = scheduler_with_one_run(run, 600)
    with scheduler.signals_handled():
        scheduler.run()
    assert results[0].status == "abandoned"
    assert "at a second SIGINT" in results[0].error


def test_a_signal_wakes_the_loop_from_its_sleep():
    scheduler = Scheduler(
        interval=60, tick=lambda now, **kw: TickReport(), next_due_at=lambda now: None
    )
    started = time.monotonic()
    with scheduler.signals_handled():
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        scheduler.run()
    assert time.monotonic() - started < 30  # woke up, did not sleep out the minute


def test_stop_from_another_thread_wakes_the_loop():
    scheduler = Scheduler(
        interval=60, tick=lambda now, **kw: TickReport(), next_due_at=lambda now: None
    )
    threading.Timer(0.2, scheduler.stop).start()
    started = time.monotonic()
    scheduler.run()
    assert time.monotonic() - started < 30


# -- the command's flags ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--daemon", "--task-id", "3"], "cannot be combined"),
        (["--daemon", "--dry-run"], "cannot be combined"),
        (["--interval", "5"], "only apply with --daemon"),
        (["--shutdown-timeout", "5"], "only apply with --daemon"),
        (["--daemon", "--interval", "0"], "must be at least 1"),
        (["--daemon", "--shutdown-timeout", "-1"], "must be 0 or more"),
    ],
)
def test_bad_daemon_flag_combinations_are_usage_errors(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("run_scheduled_tasks", *args, stdout=StringIO(), stderr=StringIO())


@pytest.mark.slow
def test_daemon_usage_errors_exit_with_status_two():
    proc = run_manage("run_scheduled_tasks", "--daemon", "--dry-run")
    assert proc.returncode == 2
    assert "error: --daemon cannot be combined with --task-id or --dry-run" in proc.stderr


# -- real daemon processes ----------------------------------------------------------------------

BUSY_2S = (
    "start = timezone.now()\n"
    "while (timezone.now() - start).total_seconds() < 2:\n"
    "    pass\n"
    "print('finished')\n"
)
BUSY_60S = BUSY_2S.replace("< 2", "< 60")


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        time.sleep(0.05)


def due_in(name: str, seconds: float, code: str = "print('hi')", **extra) -> ScheduledTask:
    at = timezone.now() + timedelta(seconds=seconds)
    return make_task(name=name, code=code, every=1, unit="hours", anchor=at, **extra)


def stop(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_daemon_runs_a_task_when_due_and_sigterm_lets_the_run_finish():
    task = due_in("busy", 1.0, BUSY_2S, timeout_seconds=30)
    proc = start_manage("run_scheduled_tasks", "--daemon", "--interval", "1", "--verbose")
    try:
        wait_for(
            lambda: Execution.objects.filter(task=task, status="running").exists(),
            what="the run to start",
        )
        out, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    execution = Execution.objects.get(task=task)
    assert execution.status == "completed"
    assert execution.output == "finished\n"
    assert execution.scheduled_for == task.next_run_at
    assert "Scheduler daemon started" in out
    assert f"task {task.pk} “busy”: completed" in out
    assert out.rstrip().endswith("Scheduler daemon stopped.")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_daemon_kills_a_run_that_outlasts_the_shutdown_timeout():
    task = due_in("endless", 0, BUSY_60S, timeout_seconds=120)
    proc = start_manage(
        "run_scheduled_tasks", "--daemon", "--interval", "1", "--shutdown-timeout", "1"
    )
    try:
        wait_for(
            lambda: Execution.objects.filter(task=task, status="running").exists(),
            what="the run to start",
        )
        _, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    execution = Execution.objects.get(task=task)
    assert execution.status == "abandoned"
    assert "killed after the shutdown timeout (1 s)" in execution.error
    assert execution.finished_at is not None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_daemons_and_cron_together_run_each_slot_exactly_once():
    quick = (
        "start = timezone.now()\nwhile (timezone.now() - start).total_seconds() < 0.2:\n    pass\n"
    )
    tasks = [due_in(f"t{i}", 1.0 + i * 0.15, quick) for i in range(8)]
    daemons = [start_manage("run_scheduled_tasks", "--daemon", "--interval", "1") for _ in range(2)]
    try:
        crons = []
        for _ in range(3):
            time.sleep(0.5)
            crons.append(run_manage("run_scheduled_tasks"))
        wait_for(
            lambda: Execution.objects.filter(status="completed").count() >= len(tasks),
            what="every task to run",
        )
        time.sleep(0.5)  # room for a (wrong) second run of any slot to show up
        results = [stop(proc) for proc in daemons]
    finally:
        for proc in daemons:
            if proc.poll() is None:
                proc.kill()
    for proc, (_, err) in zip(daemons, results, strict=True):
        assert proc.returncode == 0, err
    for cron in crons:
        assert cron.returncode == 0, cron.stderr
    for task in tasks:
        runs = Execution.objects.filter(task=task)
        assert runs.count() == 1, list(runs.values("runner", "scheduled_for"))
        assert runs.get().status == "completed"


def test_loop_uses_the_daemon_logger():
    assert daemon.log.name == "scheduled_tasks.daemon"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_daemon_rides_out_lost_database_connections_and_runs_each_slot_once():
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("cutting a client off the server needs PostgreSQL")
    log_file = settings.TEST_LOG_FILE
    log_start = log_file.stat().st_size if log_file.exists() else 0
    first = due_in("before", 0.5)
    proc = start_manage("run_scheduled_tasks", "--daemon", "--interval", "1")
    try:
        wait_for(lambda: run_count(first) == 1, what="the first run")
        # The server drops every other session on the test database: the daemon's too.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        second = due_in("after", 0.5)
        wait_for(lambda: run_count(second) == 1, what="a run after the outage")
        time.sleep(1.0)  # room for a (wrong) second run to show up
        _, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert run_count(first) == 1
    assert run_count(second) == 1
    log = log_file.read_bytes()[log_start:].decode("utf-8", "replace")
    assert "[scheduled_tasks.daemon] database unavailable (attempt 1)" in log
    assert "scheduler recovered" in log


def run_count(task: ScheduledTask) -> int:
    return Execution.objects.filter(task=task, status="completed").count()
