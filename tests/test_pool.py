"""A runner's pool: runs side by side in real sandbox children, on the real clock (runner.tick
with the real sandbox; pool.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from scheduled_tasks import conf, runner
from scheduled_tasks.models import Execution
from tests.factories import make_task

pytestmark = pytest.mark.django_db(transaction=True)


def busy(seconds: float, label: str = "") -> str:
    """A snippet that keeps a core busy for ``seconds`` (the sandbox has no sleep)."""
    return (
        "start = datetime.now()\n"
        f"while (datetime.now() - start).total_seconds() < {seconds}:\n"
        "    pass\n"
        f"print('done {label}')\n"
    )


def due_task(name: str, code: str, *, priority: int = 0, in_seconds: float = -1.0):
    return make_task(
        name=name,
        code=code,
        priority=priority,
        next_run_at=timezone.now() + timedelta(seconds=in_seconds),
    )


def spans(*names: str) -> list[tuple]:
    rows = Execution.objects.filter(task__name__in=names).order_by("started_at")
    return [(e.task.name, e.started_at, e.finished_at, e.status) for e in rows]


def overlapping(a: tuple, b: tuple) -> bool:
    return a[1] < b[2] and b[1] < a[2]


def test_runs_go_on_side_by_side_up_to_the_pool_size():
    for name in ("a", "b", "c"):
        due_task(name, busy(1.0, name))
    report = runner.tick(timezone.now(), concurrency=2)
    assert sorted(e.status for e in report.executions) == ["completed"] * 3
    runs = spans("a", "b", "c")
    # The first two started together; the third waited for a free slot.
    assert overlapping(runs[0], runs[1])
    assert runs[2][1] >= min(runs[0][2], runs[1][2])
    # Never three at once: at each start, at most two runs are in progress.
    assert all(sum(r[1] <= run[1] < r[2] for r in runs) <= 2 for run in runs)


def test_one_slot_runs_one_after_another():
    for name in ("a", "b"):
        due_task(name, busy(0.3, name))
    runner.tick(timezone.now(), concurrency=1)
    first, second = spans("a", "b")
    assert not overlapping(first, second)


def test_a_run_that_comes_due_starts_while_a_long_one_goes_on():
    due_task("long", busy(4.0, "long"))
    due_task("short", "print('short')", in_seconds=1.5)
    report = runner.tick(timezone.now(), concurrency=2)
    assert sorted(e.task.name for e in report.executions) == ["long", "short"]
    long_run = Execution.objects.get(task__name="long")
    short_run = Execution.objects.get(task__name="short")
    assert short_run.status == "completed"
    assert short_run.started_at < long_run.finished_at  # it did not wait for the long run


def test_higher_priority_starts_first_when_slots_are_scarce():
    due_task("low", busy(0.2, "low"), priority=-5)
    due_task("high", busy(0.2, "high"), priority=10)
    due_task("normal", busy(0.2, "normal"))
    runner.tick(timezone.now(), concurrency=1)
    assert [name for name, *_ in spans("low", "high", "normal")] == ["high", "normal", "low"]


def test_stop_lets_the_runs_in_progress_finish_and_starts_nothing_more():
    for name in ("a", "b", "c"):
        due_task(name, busy(0.5, name))
    started = []
    report = runner.tick(
        timezone.now(),
        concurrency=2,
        on_start=lambda task: started.append(task.name),
        should_stop=lambda: len(started) >= 2,
    )
    assert len(report.executions) == 2
    assert all(e.status == "completed" for e in report.executions)
    assert Execution.objects.count() == 2  # the third slot was never claimed: still due


def test_a_forced_stop_kills_the_runs_and_records_them_abandoned():
    task = due_task("endless", "while True:\n    pass\n")
    task.max_retries = 1
    task.save()
    asked = []

    def forced() -> str:
        asked.append(1)
        return "killed for the test" if len(asked) > 3 else ""

    report = runner.tick(timezone.now(), concurrency=2, forced=forced)
    (execution,) = report.executions
    assert execution.status == Execution.Status.ABANDONED
    assert execution.error == "killed for the test"
    retry = Execution.objects.get(trigger=Execution.Trigger.RETRY)
    assert retry.status == Execution.Status.PENDING  # its retries follow the task's policy


def test_a_run_whose_lease_another_runner_reaped_is_stopped(caplog):
    config = {**conf.all_settings(), "LEASE_SECONDS": 3}  # a heartbeat every second
    due_task("frozen", "while True:\n    pass\n")
    started = []

    def stop_and_reap() -> bool:
        # Once the run started, another runner reaps it (as if this one had been frozen past
        # its lease); nothing more is started here.
        if started:
            Execution.objects.filter(status="running").update(status="abandoned")
        return bool(started)

    with override_settings(SCHEDULED_TASKS=config):
        report = runner.tick(
            timezone.now(),
            concurrency=2,
            on_start=lambda task: started.append(task),
            should_stop=stop_and_reap,
        )
    (execution,) = report.executions
    assert execution.status == Execution.Status.ABANDONED  # the reaper's verdict stands
    assert "lost its lease" in caplog.text  # and the child was stopped, not left to run on


def test_pool_size_defaults_to_the_cpus_and_at_least_two(settings):
    settings.SCHEDULED_TASKS = {**conf.all_settings(), "CONCURRENCY": None}
    assert conf.concurrency() >= 2
    settings.SCHEDULED_TASKS = {**conf.all_settings(), "CONCURRENCY": 5}
    assert conf.concurrency() == 5
    assert conf.concurrency(3) == 3


def test_a_warm_pool_keeps_a_spare_per_slot_between_ticks():
    from scheduled_tasks.sandbox import spares

    with spares.kept_warm(2):
        for name in ("a", "b"):
            due_task(name, "print('pid')")
        runner.tick(timezone.now(), concurrency=2)
        ready = set(spares.live_pids())
        assert len(ready) == 2  # made once the runs ended, before the runner sleeps
        for name in ("c", "d"):
            due_task(name, "print('again')")
        report = runner.tick(timezone.now(), concurrency=2)
        assert [e.status for e in report.executions] == ["completed", "completed"]
        assert not ready & set(spares.live_pids())  # both were used, new ones wait
    assert spares.live_pids() == []


def test_a_failing_tick_leaves_no_child_running_unseen(monkeypatch):
    from django.db import DatabaseError

    from scheduled_tasks.sandbox import proctree

    due_task("quick", "print('quick')")
    due_task("endless", "while True:\n    pass\n")
    real_finish = runner.finish_run
    calls = []

    def finish_fails_once(claim, result, finished_at, on_finish=None):
        calls.append(claim.task.name)
        if len(calls) == 1:
            raise DatabaseError("the database went away")
        return real_finish(claim, result, finished_at, on_finish)

    monkeypatch.setattr(runner, "finish_run", finish_fails_once)
    with pytest.raises(DatabaseError):
        runner.tick(timezone.now(), concurrency=2)
    assert calls[0] == "quick"
    assert not proctree.CHILDREN  # the endless run's child was killed and reaped
    endless = Execution.objects.get(task__name="endless")
    assert endless.status == Execution.Status.ABANDONED
    assert "tick failed (DatabaseError)" in endless.error
    # The run whose result could not be written keeps its lease: the reaper takes it later.
    assert Execution.objects.get(task__name="quick").status == Execution.Status.RUNNING
