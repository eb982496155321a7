"""The alert rules (scheduled_tasks/alerts/rules.py): which conditions hold at an injected
``now``, and when they clear."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduled_tasks import heartbeats
from scheduled_tasks.alerts import rules, service
from scheduled_tasks.models import Execution
from tests.factories import MIN, T0, H, S, make_execution, make_task

pytestmark = pytest.mark.django_db


def run(task: Any, status: str, at: datetime, **extra: Any) -> Execution:
    """A finished run of ``task`` created and ended at ``at``."""
    values = {
        "status": status,
        "trigger": "schedule",
        "scheduled_for": at,
        "created_at": at,
        "started_at": at,
        "finished_at": at + S,
    }
    values.update(extra)
    return make_execution(task, **values)


# -- failures in a row ----------------------------------------------------------------------


def test_three_failures_in_a_row_make_the_condition():
    task = make_task(name="nightly")
    first = run(task, "failed", T0)
    second = run(task, "timeout", T0 + MIN)
    third = run(task, "abandoned", T0 + 2 * MIN)
    condition = rules.failures_in_a_row(task.pk)
    assert condition is not None
    assert condition.key == f"failures:task={task.pk}"
    assert condition.kind == "failures"
    assert condition.execution_id == third.pk
    assert condition.since == third.finished_at
    assert condition.details["executions"] == [third.pk, second.pk, first.pk]
    assert "nightly" in condition.message and "3 times in a row" in condition.message


def test_two_failures_are_not_enough():
    task = make_task()
    run(task, "failed", T0)
    run(task, "failed", T0 + MIN)
    assert rules.failures_in_a_row(task.pk) is None


def test_a_success_between_failures_breaks_the_streak():
    task = make_task()
    run(task, "failed", T0)
    run(task, "completed", T0 + MIN)
    run(task, "failed", T0 + 2 * MIN)
    run(task, "failed", T0 + 3 * MIN)
    assert rules.failures_in_a_row(task.pk) is None
    run(task, "failed", T0 + 4 * MIN)
    assert rules.failures_in_a_row(task.pk) is not None


def test_test_runs_cancelled_and_skipped_runs_do_not_count():
    task = make_task()
    run(task, "failed", T0)
    run(task, "completed", T0 + MIN, trigger="test", scheduled_for=None)
    run(task, "cancelled", T0 + 2 * MIN)
    run(task, "skipped", T0 + 3 * MIN, slots_skipped=1)
    run(task, "failed", T0 + 4 * MIN, trigger="manual", scheduled_for=None)
    run(task, "failed", T0 + 5 * MIN, trigger="retry", scheduled_for=None)
    assert rules.failures_in_a_row(task.pk) is not None


def test_the_count_comes_from_the_settings_and_none_turns_the_rule_off(settings):
    task = make_task()
    run(task, "failed", T0)
    run(task, "failed", T0 + MIN)
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "ALERT_FAILURES_IN_A_ROW": 2}
    assert rules.failures_in_a_row(task.pk) is not None
    assert [c.task_id for c in rules.failures(T0 + 5 * MIN)] == [task.pk]
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "ALERT_FAILURES_IN_A_ROW": None}
    assert rules.failures_in_a_row(task.pk) is None
    assert rules.failures(T0 + 5 * MIN) == []


def test_failures_clear_at_the_next_completed_run():
    task = make_task()
    for minute in range(3):
        run(task, "failed", T0 + minute * MIN)
    assert not rules.failures_cleared(task.pk)
    run(task, "cancelled", T0 + 3 * MIN)
    assert not rules.failures_cleared(task.pk)
    run(task, "completed", T0 + 4 * MIN)
    assert rules.failures_cleared(task.pk)


def test_only_failures_of_the_last_hour_are_candidates():
    old, recent, fine = make_task(), make_task(), make_task()
    for minute in range(3):
        run(old, "failed", T0 + minute * MIN)
        run(recent, "failed", T0 + H + minute * MIN)
        run(fine, "completed", T0 + H + minute * MIN)
    assert rules.failure_candidates(T0 + H + 30 * MIN) == [recent.pk]
    assert [c.task_id for c in rules.failures(T0 + H + 30 * MIN)] == [recent.pk]


# -- long runs ------------------------------------------------------------------------------


def test_a_run_going_on_past_the_threshold_is_a_long_run():
    task = make_task(name="export")
    long = make_execution(task, status="running", started_at=T0, runner="host:1")
    make_execution(task, status="running", started_at=T0 + 2 * MIN)
    make_execution(task, status="completed", started_at=T0 - H, finished_at=T0)
    found = rules.long_runs(T0 + 6 * MIN)
    assert [(c.key, c.execution_id, c.task_id) for c in found] == [
        (f"long_run:execution={long.pk}", long.pk, task.pk)
    ]
    assert "export" in found[0].message and "6 minutes" in found[0].message
    assert found[0].details["runner"] == "host:1"
    assert rules.long_runs(T0 + 4 * MIN) == []


def test_the_long_run_threshold_comes_from_the_settings(settings):
    task = make_task()
    make_execution(task, status="running", started_at=T0)
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "ALERT_THRESHOLD_MINUTES": 60}
    assert rules.long_runs(T0 + 59 * MIN) == []
    assert len(rules.long_runs(T0 + 61 * MIN)) == 1
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "ALERT_THRESHOLD_MINUTES": None}
    assert rules.long_runs(T0 + 24 * H) == []


def test_a_long_run_clears_when_the_run_is_no_longer_running():
    execution = make_execution(make_task(), status="running", started_at=T0)
    assert not rules.long_run_cleared(execution.pk)
    Execution.objects.filter(pk=execution.pk).update(status="abandoned")
    assert rules.long_run_cleared(execution.pk)
    assert rules.long_run_cleared(None)


# -- missed slots ---------------------------------------------------------------------------


def test_a_slot_skipped_beyond_its_grace_is_missed():
    task = make_task(name="report", grace_seconds=120)
    skipped = run(task, "skipped", T0, slots_skipped=3, started_at=None)
    condition = rules.missed_for_task(task.pk, T0 + MIN)
    assert condition is not None
    assert (condition.key, condition.execution_id) == (f"missed:task={task.pk}", skipped.pk)
    assert condition.details["slots_skipped"] == 3
    assert [c.task_id for c in rules.missed(T0 + MIN)] == [task.pk]


def test_an_overdue_slot_past_its_grace_is_missed_before_any_runner_records_it():
    late = make_task(name="late", grace_seconds=60, next_run_at=T0)
    make_task(name="in grace", grace_seconds=600, next_run_at=T0)
    make_task(name="no grace", next_run_at=T0)
    make_task(name="inactive", grace_seconds=60, next_run_at=T0, is_active=False)
    found = rules.missed(T0 + 2 * MIN)
    assert [c.task_id for c in found] == [late.pk]
    assert found[0].since == T0
    assert found[0].details["overdue_seconds"] == 120


def test_missed_clears_when_the_task_runs_again_and_is_on_time():
    task = make_task(grace_seconds=60, next_run_at=T0 + H)
    run(task, "skipped", T0, slots_skipped=1, started_at=None)
    assert not rules.missed_cleared(task.pk, T0 + MIN)
    run(task, "completed", T0 + H)
    assert rules.missed_cleared(task.pk, T0 + H + MIN)


# -- scheduler down -------------------------------------------------------------------------


def test_scheduler_down_with_no_runner_at_all():
    make_task()
    condition = rules.scheduler_down(T0)
    assert condition is not None
    assert condition.key == "scheduler_down" and condition.since is None
    assert "No scheduler has ever sent a heartbeat" in condition.message


def test_scheduler_down_when_the_last_heartbeat_is_too_old():
    make_task()
    heartbeats.beat("host:1", "daemon", T0, started=True)
    assert rules.scheduler_down(T0 + 5 * MIN) is None
    condition = rules.scheduler_down(T0 + 5 * MIN + S)
    assert condition is not None
    assert condition.since == T0
    assert condition.details["last_runner"] == "host:1"


def test_a_worker_heartbeat_does_not_count_as_a_scheduler():
    make_task()
    heartbeats.beat("host:2", "worker", T0, started=True)
    assert rules.scheduler_down(T0) is not None


def test_no_active_task_means_no_scheduler_is_needed():
    make_task(is_active=False)
    assert rules.scheduler_down(T0 + H) is None


def test_the_scheduler_down_window_comes_from_the_settings(settings):
    make_task()
    heartbeats.beat("host:1", "embedded", T0, started=True)
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "ALERT_SCHEDULER_DOWN_MINUTES": 30}
    assert rules.scheduler_down(T0 + 29 * MIN) is None
    assert rules.scheduler_down(T0 + 31 * MIN) is not None
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "ALERT_SCHEDULER_DOWN_MINUTES": None}
    assert rules.scheduler_down(T0 + 31 * MIN) is None


# -- cost -----------------------------------------------------------------------------------


def test_a_quiet_check_costs_the_same_with_many_idle_tasks():
    heartbeats.beat("host:1", "daemon", T0, started=True)
    make_task()
    with CaptureQueriesContext(connection) as few:
        service.check_all(T0 + MIN)
    for _ in range(50):
        make_task(grace_seconds=3600)
    with CaptureQueriesContext(connection) as many:
        service.check_all(T0 + MIN)
    assert len(many) == len(few)


def plan_of(sql: str) -> str:
    with connection.cursor() as cursor:
        prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
        cursor.execute(prefix + sql)
        return " ".join(str(row) for row in cursor.fetchall())


@pytest.mark.parametrize(
    ("indexes", "query"),
    [
        ({"sched_exec_finished"}, lambda now: rules.failure_candidates(now)),
        ({"sched_exec_finished"}, lambda now: rules.missed_candidates(now)),
        ({"sched_task_active_due"}, lambda now: rules.missed_candidates(now)),
        # Running runs: any index that leads with the status serves them.
        (
            {"sched_exec_status", "sched_exec_pending", "sched_exec_finished"},
            lambda now: rules.long_runs(now),
        ),
    ],
)
def test_rule_candidates_are_read_through_an_index(indexes, query):
    # Realistic sizes, never analysed (as tests/test_query_plans.py explains): PostgreSQL
    # rightly scans a table of a few pages, but not thousands of rows.
    tasks = [make_task(name=f"t{i}", grace_seconds=60) for i in range(10)]
    now = T0 + timedelta(days=30)
    Execution.objects.bulk_create(
        Execution(
            task=tasks[i % 10],
            status="completed" if i % 50 else "failed",
            trigger="schedule",
            scheduled_for=T0 + i * MIN,
            created_at=T0 + i * MIN,
            started_at=T0 + i * MIN,
            finished_at=T0 + i * MIN + S,
        )
        for i in range(4_000)
    )
    with CaptureQueriesContext(connection) as captured:
        query(now)
    plans = [plan_of(q["sql"]) for q in captured]
    assert any(index in plan for plan in plans for index in indexes), plans
