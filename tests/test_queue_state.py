"""What a task or a run waits for, as the pages show it: a free slot of a runner's pool, or the
time of its retry. Pure functions: the rows are built in memory, ``now`` is given."""

from __future__ import annotations

from datetime import datetime

from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.queue_state import QUEUED_TEXT, execution_queue_state, task_queue_state
from tests.factories import MIN, T0


def task(*, last_status: str = "", **fields: object) -> ScheduledTask:
    values: dict[str, object] = {"is_active": True, "next_run_at": T0}
    if last_status:  # the status of the run the task points at
        values["last_execution"] = Execution(pk=1, status=last_status)
    values.update(fields)
    return ScheduledTask(**values)


def run(**fields: object) -> Execution:
    values: dict[str, object] = {"status": Execution.Status.PENDING, "created_at": T0 - MIN}
    values.update(fields)
    return Execution(**values)


def test_a_due_task_that_is_not_running_is_queued_since_its_slot() -> None:
    state = task_queue_state(task(next_run_at=T0 - 3 * MIN), T0)
    assert state is not None and state.is_queued
    assert state.since == T0 - 3 * MIN
    assert state.text == QUEUED_TEXT == "queued: waiting for a free slot"


def test_a_task_due_exactly_now_is_queued() -> None:
    assert task_queue_state(task(next_run_at=T0), T0).is_queued


def test_a_task_not_yet_due_is_not_queued() -> None:
    assert task_queue_state(task(next_run_at=T0 + MIN), T0) is None


def test_a_running_task_is_not_queued_even_when_its_next_slot_has_come() -> None:
    assert task_queue_state(task(next_run_at=T0 - MIN, last_status="running"), T0) is None


def test_an_inactive_or_ended_task_is_never_queued() -> None:
    assert task_queue_state(task(is_active=False, next_run_at=T0 - MIN), T0) is None
    assert task_queue_state(task(next_run_at=None), T0) is None


def test_a_task_whose_last_run_failed_is_queued_when_due_again() -> None:
    assert task_queue_state(task(next_run_at=T0 - MIN, last_status="failed"), T0).is_queued


def test_a_pending_run_past_its_not_before_with_no_runner_is_queued() -> None:
    state = execution_queue_state(run(not_before=T0 - 2 * MIN, runner=""), T0)
    assert state is not None and state.is_queued
    assert state.since == T0 - 2 * MIN
    assert str(state) == QUEUED_TEXT


def test_a_claim_handed_back_without_not_before_is_queued_since_it_was_created() -> None:
    state = execution_queue_state(run(not_before=None, runner=""), T0)
    assert state is not None and state.is_queued and state.since == T0 - MIN


def test_a_pending_retry_before_its_time_says_when_it_will_run() -> None:
    at = datetime(2026, 1, 5, 9, 30, 15, tzinfo=T0.tzinfo)
    state = execution_queue_state(run(not_before=at, runner=""), T0)
    assert state is not None and not state.is_queued
    assert (state.kind, state.since) == ("retry", at)
    assert state.text == "retry at 2026-01-05 09:30:15 UTC"


def test_a_pending_run_a_runner_claimed_is_not_queued() -> None:
    assert execution_queue_state(run(not_before=T0 - MIN, runner="host:42"), T0) is None


def test_runs_that_are_not_pending_are_not_waiting() -> None:
    for status in ("running", "completed", "failed", "timeout", "cancelled", "abandoned"):
        assert execution_queue_state(run(status=status, not_before=T0 - MIN), T0) is None
