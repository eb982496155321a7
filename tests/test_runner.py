"""The runner: due -> claim -> execute -> record, with time injected."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduled_tasks import claims, conf, runner
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.sandbox import SnippetResult
from tests.conftest import Clock, FakeSandbox, tick
from tests.factories import MIN, T0, H, S, claim_slot, make_execution, make_task

pytestmark = pytest.mark.django_db


class FakeExecutor:
    """Stands in for the sandbox: records calls, answers by code."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, code: str, **options: object) -> SnippetResult:
        self.calls.append(code)
        if "fail" in code:
            return SnippetResult("failed", "partial\n", "Line 1: ValueError: fail", 0.01)
        return SnippetResult("completed", f"ran {code}\n", "", 0.01)


def fixed_clock(moment):
    return lambda: moment


def test_due_task_runs_once_and_moves_to_the_next_slot():
    task = make_task(every=1, unit="hours", anchor=T0)
    fake = FakeExecutor()
    now = T0 + timedelta(minutes=1)
    report = runner.tick(now, clock=fixed_clock(now), snippet_executor=fake)
    assert len(report.executions) == 1
    execution = report.executions[0]
    assert execution.status == "completed"
    assert execution.trigger == "schedule"
    assert execution.scheduled_for == T0
    assert execution.output == f"ran {task.code}\n"
    task.refresh_from_db()
    assert task.next_run_at == T0 + timedelta(hours=1)
    assert task.last_status == "completed"
    assert task.last_run_at == now
    # A second tick at the same moment finds nothing due.
    assert runner.tick(now, clock=fixed_clock(now), snippet_executor=fake).executions == []
    assert len(fake.calls) == 1


def test_task_not_yet_due_does_not_run():
    make_task(anchor=T0)
    report = runner.tick(T0 - timedelta(seconds=1), snippet_executor=FakeExecutor())
    assert report.executions == []


def test_inactive_task_never_runs():
    make_task(anchor=T0, is_active=False, next_run_at=T0)
    assert runner.tick(T0 + timedelta(hours=5), snippet_executor=FakeExecutor()).executions == []


def test_late_start_does_not_shift_the_grid():
    task = make_task(every=1, unit="hours", anchor=T0)
    late = T0 + timedelta(minutes=47)
    runner.tick(late, clock=fixed_clock(late), snippet_executor=FakeExecutor())
    task.refresh_from_db()
    assert task.next_run_at == T0 + timedelta(hours=1)  # not late + 1 h


def test_long_run_does_not_shift_the_grid():
    task = make_task(every=15, unit="minutes", anchor=T0)
    clock = {"now": T0}

    def nine_minutes(code: str, **options: object) -> SnippetResult:
        clock["now"] = T0 + timedelta(minutes=9)  # claimed at T0, finished 9 min later
        return SnippetResult("completed", "", "", 540.0)

    runner.tick(T0, clock=lambda: clock["now"], snippet_executor=nine_minutes)
    task.refresh_from_db()
    assert task.next_run_at == T0 + timedelta(minutes=15)


def test_downtime_collapses_missed_slots_into_one_run_then_resumes_on_grid():
    task = make_task(every=10, unit="minutes", anchor=T0)
    back = T0 + timedelta(hours=2, minutes=3)  # 13 slots were missed: T0 .. T0+2h
    fake = FakeExecutor()
    report = runner.tick(back, clock=fixed_clock(back), snippet_executor=fake)
    assert len(report.executions) == 1
    assert report.executions[0].slots_covered == 13
    assert report.executions[0].scheduled_for == T0
    task.refresh_from_db()
    assert task.next_run_at == T0 + timedelta(hours=2, minutes=10)
    assert len(fake.calls) == 1


def test_failing_snippet_does_not_stop_the_other_tasks():
    make_task(name="a-fails", code="fail here", anchor=T0)
    make_task(name="b-works", code="print(1)", anchor=T0)
    fake = FakeExecutor()
    report = runner.tick(T0, clock=fixed_clock(T0), snippet_executor=fake)
    statuses = {e.task.name: e.status for e in report.executions}
    assert statuses == {"a-fails": "failed", "b-works": "completed"}
    failed = Execution.objects.get(task__name="a-fails")
    assert failed.error == "Line 1: ValueError: fail"
    assert failed.output == "partial\n"
    assert [e.task.name for e in report.failed] == ["a-fails"]


def test_executor_crash_is_recorded_and_the_tick_goes_on():
    make_task(name="a", anchor=T0)
    make_task(name="b", anchor=T0)

    def broken(code, **options):
        raise OSError("fork failed")

    report = runner.tick(T0, clock=fixed_clock(T0), snippet_executor=broken)
    assert [e.status for e in report.executions] == ["failed", "failed"]
    assert "could not start the sandbox" in report.executions[0].error


def test_task_still_running_is_not_started_again():
    task = make_task(every=1, unit="minutes", anchor=T0, timeout_seconds=600)
    claim = claim_slot(task.pk, T0, T0 + timedelta(seconds=30))
    assert claim is not None
    later = T0 + timedelta(seconds=80)  # the next slot is due; the lease still holds
    report = runner.tick(later, clock=fixed_clock(later), snippet_executor=FakeExecutor())
    assert report.executions == []
    assert [t.pk for t in report.busy] == [task.pk]
    assert Execution.objects.filter(task=task).count() == 1


def test_abandoned_run_is_reaped_and_the_task_runs_again():
    task = make_task(every=1, unit="minutes", anchor=T0, timeout_seconds=30)
    claim = claim_slot(task.pk, T0, T0)
    assert claim is not None
    # The runner died: nobody finishes the run. After timeout + grace the lease expires.
    later = T0 + timedelta(seconds=30 + 60 + 1)
    report = runner.tick(later, clock=fixed_clock(later), snippet_executor=FakeExecutor())
    assert report.abandoned == 1
    claim.execution.refresh_from_db()
    assert claim.execution.status == "abandoned"
    assert "lease expired" in claim.execution.error
    assert len(report.executions) == 1
    assert report.executions[0].status == "completed"


def test_manual_run_is_recorded_as_manual_and_leaves_the_schedule_alone():
    task = make_task(anchor=T0 + timedelta(days=1))
    before = task.next_run_at
    execution = runner.run_task_now(
        task, now=T0, clock=fixed_clock(T0), snippet_executor=FakeExecutor()
    )
    assert execution.trigger == "manual"
    assert execution.scheduled_for is None
    task.refresh_from_db()
    assert task.next_run_at == before


def test_manual_run_of_a_running_task_is_refused():
    task = make_task(anchor=T0)
    claims.claim_manual(task, T0)
    with pytest.raises(runner.TaskBusy, match="already running"):
        runner.run_task_now(task, now=T0, snippet_executor=FakeExecutor())


def test_plan_lists_due_tasks_and_changes_nothing():
    task = make_task(every=5, unit="minutes", anchor=T0)
    make_task(name="later", anchor=T0 + timedelta(hours=3))
    now = T0 + timedelta(minutes=12)
    plans = runner.plan(now)
    assert [(p.task.pk, p.due_since, p.slots, p.running) for p in plans] == [
        (task.pk, T0, 3, False)
    ]
    assert Execution.objects.count() == 0
    task.refresh_from_db()
    assert task.next_run_at == T0


def test_slot_is_unique_in_the_database():
    from django.db import IntegrityError, transaction

    task = make_task(anchor=T0)
    Execution.objects.create(task=task, trigger="schedule", scheduled_for=T0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Execution.objects.create(task=task, trigger="schedule", scheduled_for=T0)
    # Manual runs have no slot and may repeat.
    Execution.objects.create(task=task, trigger="manual")
    Execution.objects.create(task=task, trigger="manual")


def test_claim_with_a_stale_view_of_the_slot_gets_nothing():
    task = make_task(anchor=T0)
    assert claim_slot(task.pk, T0, T0) is not None
    # A second runner that read next_run_at before the first claimed it.
    assert claim_slot(task.pk, T0, T0) is None
    assert Execution.objects.filter(task=task).count() == 1


def test_finished_older_run_does_not_overwrite_newer_status():
    from scheduled_tasks import records

    task = make_task(anchor=T0)
    old = Execution.objects.create(task=task, status="running", created_at=T0)
    new = Execution.objects.create(
        task=task, status="running", created_at=T0 + timedelta(seconds=5)
    )
    ScheduledTask.objects.filter(pk=task.pk).update(last_execution=new)  # as its claim did
    records.finish(old, SnippetResult("failed", "", "x", 0.1), T0 + timedelta(seconds=9))
    task.refresh_from_db()
    assert task.last_status == "running"


def test_tick_query_count_does_not_grow_with_idle_tasks(django_assert_num_queries):
    for i in range(30):
        make_task(name=f"idle-{i}", anchor=T0 + timedelta(days=1))
    # stale leases, due slots, due retries, asked in one statement whatever the task count
    with django_assert_num_queries(1):
        runner.tick(T0, snippet_executor=FakeExecutor())


# --- priority ------------------------------------------------------------------------------


def test_higher_priority_runs_first_then_the_longest_waiting():
    make_task(name="low", code="low", priority=-5, next_run_at=T0 - H)
    make_task(name="normal-newer", code="normal-newer", next_run_at=T0 - MIN)
    make_task(name="normal-older", code="normal-older", next_run_at=T0 - 2 * MIN)
    make_task(name="high", code="high", priority=10, next_run_at=T0)
    urgent = make_task(name="urgent", code="urgent-retry", priority=50, next_run_at=T0 + H)
    make_execution(urgent, status="pending", trigger="retry", attempt=2, not_before=T0 - S)
    sandbox = FakeSandbox()
    tick(T0, sandbox)
    assert sandbox.ran == ["urgent-retry", "high", "normal-older", "normal-newer", "low"]


# --- function tasks go to the function executor --------------------------------------------


def test_function_task_goes_to_the_function_executor_with_its_params_and_the_run_time():
    task = make_task(
        code="",
        function_name="tests.engine.greet",
        function_params={"name": "Ada"},
        timeout_seconds=7,
    )
    sandbox = FakeSandbox()
    [execution] = tick(T0, sandbox, clock=Clock(T0 + 2 * S)).executions
    [(kind, (name, params), options)] = sandbox.calls
    assert (kind, name, params) == ("function", "tests.engine.greet", {"name": "Ada"})
    assert options["now"] == T0 + 2 * S
    assert (options["timeout"], options["label"]) == (7, f"task-{task.pk}")
    assert callable(options["heartbeat"])
    assert (execution.status, execution.output) == ("completed", "ran tests.engine.greet\n")


def test_function_task_without_a_timeout_gets_the_default():
    make_task(code="", function_name="tests.engine.quiet")
    sandbox = FakeSandbox()
    tick(T0, sandbox)
    assert sandbox.calls[0][2]["timeout"] == conf.get("DEFAULT_TIMEOUT_SECONDS")
