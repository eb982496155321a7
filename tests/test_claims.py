"""Claiming due slots (``claims.py``) through tick(): where the next run falls for every
schedule kind, catch-up and grace, max_instances, claiming a pending retry, and a claim's
robustness. Time is injected; the sandbox is faked."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from scheduled_tasks import claims, conf, records, runner, schedules
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.sandbox import SnippetResult
from tests.conftest import FakeSandbox, reload, tick
from tests.factories import MIN, T0, H, S, claim_slot, make_execution, make_task

pytestmark = pytest.mark.django_db


# --- schedule kinds: the next run after a claim --------------------------------------------


def test_cron_task_runs_at_its_slot_and_next_run_is_computed_in_its_zone():
    task = make_task(schedule_kind="cron", cron_expression="30 8 * * *", time_zone="Europe/Madrid")
    # T0 is 10:00 in Madrid (CET, UTC+1): the first 08:30 is tomorrow, 07:30 UTC.
    first = datetime(2026, 1, 6, 7, 30, tzinfo=UTC)
    assert task.next_run_at == first
    assert tick(first - S).executions == []
    sandbox = FakeSandbox()
    report = tick(first, sandbox)
    assert [(e.scheduled_for, e.status) for e in report.executions] == [(first, "completed")]
    assert reload(task).next_run_at == first + timedelta(days=1)
    assert len(sandbox.calls) == 1


def test_cron_task_keeps_its_wall_clock_time_across_a_dst_change():
    # New York springs forward on Sunday 2026-03-08: 09:00 is 14:00 UTC before, 13:00 after.
    before = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
    task = make_task(
        schedule_kind="cron",
        cron_expression="0 9 * * *",
        time_zone="America/New_York",
        next_run_at=before,
    )
    tick(before)
    assert reload(task).next_run_at == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    tick(task.next_run_at)
    assert reload(task).next_run_at == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


def test_one_off_task_runs_once_then_deactivates_itself_and_never_runs_again():
    at = T0 + H
    task = make_task(schedule_kind="once", run_at=at)
    assert task.next_run_at == at
    assert tick(T0).executions == []
    sandbox = FakeSandbox()
    report = tick(at + 5 * S, sandbox)
    assert [(e.scheduled_for, e.status) for e in report.executions] == [(at, "completed")]
    task = reload(task)
    assert (task.is_active, task.next_run_at, task.last_status) == (False, None, "completed")
    for later in (at + 10 * S, at + H, at + timedelta(days=400)):
        assert tick(later, sandbox).executions == []
        assert runner.plan(later) == []
    assert Execution.objects.filter(task=task).count() == 1
    assert len(sandbox.calls) == 1


# --- catch-up and grace --------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "covered", "skipped"), [("run_once", 13, 0), ("skip", 1, 12)])
def test_catch_up_policy_after_downtime(policy, covered, skipped):
    task = make_task(every=10, unit="minutes", catch_up=policy)
    back = T0 + 2 * H + 3 * MIN  # slots T0, T0+10min, ..., T0+2h were missed: 13 of them
    sandbox = FakeSandbox()
    report = tick(back, sandbox)
    [execution] = report.executions
    assert (execution.slots_covered, execution.slots_skipped) == (covered, skipped)
    # run_once stands for the first missed slot; skip runs (and records) only the latest.
    slot = T0 if policy == "run_once" else T0 + 2 * H
    assert (execution.status, execution.scheduled_for) == ("completed", slot)
    assert len(sandbox.calls) == 1
    # The schedule resumes on its grid, not at back + 10 minutes.
    assert reload(task).next_run_at == T0 + 2 * H + 10 * MIN


@pytest.mark.parametrize("policy", ["run_once", "skip"])
def test_a_slot_taken_on_time_covers_itself_only(policy):
    make_task(every=10, unit="minutes", catch_up=policy)
    [execution] = tick(T0 + 2 * S).executions
    assert (execution.slots_covered, execution.slots_skipped) == (1, 0)


def test_slot_later_than_the_grace_period_is_recorded_as_skipped_not_run():
    task = make_task(every=1, unit="hours", grace_seconds=300)
    sandbox = FakeSandbox()
    now = T0 + 10 * MIN
    report = tick(now, sandbox)
    assert report.executions == []
    [skipped] = report.skipped
    assert sandbox.calls == []
    skipped.refresh_from_db()
    assert skipped.status == "skipped"
    assert (skipped.slots_covered, skipped.slots_skipped) == (0, 1)
    assert (skipped.scheduled_for, skipped.started_at, skipped.finished_at) == (T0, None, now)
    assert skipped.lease_expires_at is None
    task = reload(task)
    assert (task.next_run_at, task.last_status, task.last_run_at) == (T0 + H, "skipped", None)
    # The next slot, taken within the grace period, runs.
    [execution] = tick(T0 + H + 4 * MIN, sandbox).executions
    assert (execution.status, execution.scheduled_for) == ("completed", T0 + H)


def test_slot_within_the_grace_period_runs():
    make_task(every=1, unit="hours", grace_seconds=300)
    [execution] = tick(T0 + 5 * MIN).executions
    assert execution.status == "completed"


@pytest.mark.parametrize(
    ("back", "ran", "skipped"),
    [(2 * H + 119 * S, 13, 0), (2 * H + 120 * S, 13, 0), (2 * H + 121 * S, 0, 13)],
)
def test_grace_period_judges_the_latest_missed_slot(back, ran, skipped):
    make_task(every=10, unit="minutes", grace_seconds=120)
    # Back after two hours: 13 slots were missed, the latest (T0+2h) is `back - 2h` old.
    report = tick(T0 + back)
    assert [e.slots_covered for e in report.executions] == ([ran] if ran else [])
    assert [e.slots_skipped for e in report.skipped] == ([skipped] if skipped else [])


# --- max_instances -------------------------------------------------------------------------


def test_max_instances_two_allows_two_runs_and_refuses_a_third():
    task = make_task(every=1, unit="minutes", max_instances=2)
    first = claim_slot(task.pk, T0, T0 + 50 * S)  # both leases outlast the next slot
    second = claims.claim_manual(task, T0 + 55 * S)
    assert first is not None and first.runs and second.execution.status == "running"
    # The next slot comes while both still run: refused, and the slot stays due.
    sandbox = FakeSandbox()
    report = tick(T0 + MIN, sandbox)
    assert report.executions == [] and sandbox.calls == []
    assert [t.pk for t in report.busy] == [task.pk]
    assert reload(task).next_run_at == T0 + MIN
    assert claim_slot(task.pk, T0 + MIN, T0 + MIN) is None
    with pytest.raises(claims.TaskBusy, match="already running"):
        claims.claim_manual(task, T0 + MIN)
    with pytest.raises(runner.TaskBusy, match="already running"):
        runner.run_task_now(task, now=T0 + MIN, snippet_executor=sandbox)
    assert Execution.objects.filter(task=task).count() == 2
    # One ends: the waiting slot runs, collapsed with the one that came meanwhile.
    records.finish(first.execution, SnippetResult("completed", "", "", 1.0), T0 + MIN + S)
    [execution] = tick(T0 + 2 * MIN + S, sandbox).executions
    assert (execution.scheduled_for, execution.slots_covered) == (T0 + MIN, 2)


def test_default_max_instances_is_one():
    task = make_task(every=1, unit="minutes")
    assert task.max_instances == 1
    claims.claim_manual(task, T0)
    with pytest.raises(claims.TaskBusy):
        claims.claim_manual(task, T0)


def test_a_run_whose_lease_expired_no_longer_counts_against_max_instances():
    task = make_task(every=1, unit="days")
    claims.claim_manual(task, T0)
    lease = conf.get("LEASE_SECONDS")
    with pytest.raises(claims.TaskBusy):
        claims.claim_manual(task, T0 + (lease - 1) * S)
    assert claims.claim_manual(task, T0 + lease * S).execution.status == "running"


# --- pending retries -----------------------------------------------------------------------


def test_claimed_retry_cannot_be_claimed_again():
    task = make_task(every=1, unit="days")
    pending = make_execution(task, status="pending", trigger="retry", attempt=2, not_before=T0)
    assert claims.claim_pending(pending.pk, T0) is not None
    assert claims.claim_pending(pending.pk, T0) is None


# --- robustness of the claim ---------------------------------------------------------------


def test_claim_after_a_month_of_downtime_does_bounded_schedule_work(monkeypatch):
    task = make_task(every=1, unit="minutes")
    calls = 0
    real = schedules.next_fire_time

    def counting(*args, **kwargs):
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(schedules, "next_fire_time", counting)
    claim = claim_slot(task.pk, T0, T0 + timedelta(days=30))
    assert claim is not None
    assert claim.execution.slots_covered == 30 * 24 * 60 + 1
    assert calls < 100


def test_a_task_with_a_broken_stored_schedule_does_not_stop_the_others():
    broken = make_task(name="a-broken", next_run_at=T0)
    ScheduledTask.objects.filter(pk=broken.pk).update(time_zone="Mars/Olympus_Mons")
    make_task(name="b-fine", code="fine", next_run_at=T0)
    sandbox = FakeSandbox()
    tick(T0, sandbox)
    assert sandbox.ran == ["fine"]


def test_a_claim_records_the_moment_it_was_made():
    task = make_task(every=1, unit="days", anchor=T0 + H)
    first = claims.claim_manual(task, T0)  # runner A runs the task
    make_execution(task, status="pending", trigger="retry", attempt=2, not_before=T0)
    read_at = T0 + 10 * S
    moment = {"now": read_at}

    def clock() -> datetime:
        # Runner B has read the clock; before its claim gets the task, A's run ends.
        if first.execution.status == "running":
            records.finish(first.execution, SnippetResult("completed", "", "", 1.0), read_at + S)
            moment["now"] = read_at + 2 * S
            return read_at
        return moment["now"]

    [second] = runner.tick(read_at, clock=clock, snippet_executor=FakeSandbox()).executions
    assert second.trigger == "retry"
    # Claimed only once A had finished, so it cannot have started before A finished.
    assert second.started_at >= first.execution.finished_at


# --- the task's last run: a pointer set by every claim --------------------------------------


def _statements(captured: list[dict[str, str]]) -> list[str]:
    # The test's own transaction puts each atomic block in a savepoint: not the claim's work.
    return [q["sql"] for q in captured if "SAVEPOINT" not in q["sql"]]


@pytest.mark.parametrize("start", [True, False])
def test_a_claim_points_each_task_at_its_record_with_the_same_statements(start):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    tasks = [make_task(name=f"t{n}", next_run_at=T0) for n in range(3)]
    with CaptureQueriesContext(connection) as captured:
        result = claims.claim_slots(
            [claims.Slot(t.pk, T0) for t in tasks], lambda: T0, runner="me:1", start=start
        )
    # The tasks as seen, locked; their live runs; the slots already recorded; the INSERT of
    # the records; one UPDATE run for all the tasks (executemany). The pointer rides on the
    # UPDATE that moves next_run_at; the locked rows are whole (code, timeout), so nothing is
    # read again after the commit.
    statements = _statements(captured.captured_queries)
    assert len(statements) == 6, statements
    [update] = [s for s in statements if re.match(r"(\d+ times: )?UPDATE", s)]  # executemany
    [insert] = [s for s in statements if s.startswith("INSERT")]
    assert "last_execution_id" in update
    assert statements.index(insert) < statements.index(update)
    by_task = {claim.task.pk: claim.execution.pk for claim in result.claims}
    assert len(by_task) == 3
    assert all(claim.task.code == "print('hello')" for claim in result.claims)
    for task in tasks:
        task = reload(task)
        assert task.last_execution_id == by_task[task.pk]
        assert task.last_run_at == T0
        assert task.last_status == ("running" if start else "pending")


def test_skipped_slots_and_a_broken_schedule_are_the_tasks_last_run():
    late = make_task(name="late", every=1, unit="hours", grace_seconds=60)
    broken = make_task(name="broken", next_run_at=T0)
    ScheduledTask.objects.filter(pk=broken.pk).update(time_zone="Mars/Olympus_Mons")
    report = tick(T0 + 10 * MIN, FakeSandbox())
    records = {e.task_id: e for e in report.skipped}
    assert reload(late).last_execution_id == records[late.pk].pk
    assert reload(late).last_status == "skipped"
    broken = reload(broken)
    assert broken.last_status == "failed" and not broken.is_active
    assert broken.last_execution.error.startswith("The task's schedule cannot be evaluated")


def test_run_now_and_a_starting_retry_become_the_tasks_last_run():
    task = make_task(max_retries=1, retry_backoff_seconds=10)
    manual = claims.claim_manual(task, T0)
    assert (reload(task).last_execution_id, reload(task).last_status) == (
        manual.execution.pk,
        "running",
    )
    records.finish(manual.execution, SnippetResult("failed", "", "x", 1.0), T0 + S)
    retry = make_execution(
        task, status="pending", trigger="retry", attempt=2, not_before=T0 + 11 * S,
        retry_of=manual.execution,
    )  # fmt: skip
    # A retry waiting for its time does not speak for the task: the failure does.
    assert reload(task).last_status == "failed"
    claim = claims.claim_pending(retry.pk, T0 + 11 * S, runner="me:1")
    assert claim is not None and claim.task.last_execution_id == retry.pk
    assert (reload(task).last_execution_id, reload(task).last_status) == (retry.pk, "running")


def test_a_test_run_never_changes_the_tasks_last_run():
    task = make_task()
    manual = claims.claim_manual(task, T0)
    records.finish(manual.execution, SnippetResult("failed", "", "x", 1.0), T0 + S)
    records.record_test_run(task, SnippetResult("completed", "ok", "", 0.1), T0 + H, T0 + H)
    assert reload(task).last_execution_id == manual.execution.pk
    assert reload(task).last_status == "failed"


def test_the_migration_points_each_task_at_the_run_that_last_spoke_for_it():
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("scheduled_tasks.migrations.0006_last_execution")
    retried = make_task(name="retried")
    make_execution(retried, status="completed", trigger="schedule", created_at=T0)
    failed = make_execution(retried, status="failed", trigger="schedule", created_at=T0 + H)
    make_execution(retried, status="pending", trigger="retry", attempt=2, retry_of=failed,
                   not_before=T0 + 3 * H, created_at=T0 + 2 * H)  # fmt: skip
    make_execution(retried, status="completed", trigger="test", created_at=T0 + 3 * H)
    tested_only = make_task(name="tested only")
    make_execution(tested_only, status="completed", trigger="test", created_at=T0)
    tied = make_task(name="tied")
    make_execution(tied, status="failed", created_at=T0)
    second = make_execution(tied, status="completed", created_at=T0)  # same moment: higher id
    never = make_task(name="never")
    editor = SimpleNamespace(
        connection=connection, execute=lambda sql: connection.cursor().execute(sql)
    )
    migration.point_at_latest_execution(apps, editor)
    pointers = dict(ScheduledTask.objects.values_list("name", "last_execution"))
    assert pointers == {
        retried.name: failed.pk,
        tested_only.name: None,
        tied.name: second.pk,
        never.name: None,
    }
    assert reload(retried).last_status == "failed"
