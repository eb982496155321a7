"""Recording a run's end (records.py): when its code began and what it took."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduled_tasks import records, runner
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.sandbox import SnippetResult
from tests.factories import MIN, T0, S, claim_slot, make_task

pytestmark = pytest.mark.django_db


def test_the_start_is_when_the_runs_code_began_and_the_duration_is_its_own():
    task = make_task(next_run_at=T0)
    claim = claim_slot(task.pk, T0, T0 + S)
    result = SnippetResult("completed", "", "", duration=2.5, startup=0.5)
    records.finish(claim.execution, result, T0 + 4 * S)
    execution = Execution.objects.get(pk=claim.execution.pk)
    assert execution.started_at == T0 + S + timedelta(seconds=0.5)
    assert execution.duration_seconds == pytest.approx(2.0)
    assert execution.finished_at == T0 + 4 * S


def test_a_result_without_a_startup_keeps_the_claimed_start():
    task = make_task(next_run_at=T0)
    claim = claim_slot(task.pk, T0, T0 + S)
    records.finish(claim.execution, SnippetResult("failed", "", "x", 1.0), T0 + 3 * S)
    execution = Execution.objects.get(pk=claim.execution.pk)
    assert (execution.started_at, execution.duration_seconds) == (T0 + S, 1.0)


@pytest.mark.django_db(transaction=True)
def test_a_real_run_records_when_its_snippet_began():
    make_task(name="real", next_run_at=timezone.now() - S)
    before = timezone.now()
    (execution,) = runner.tick(timezone.now(), concurrency=1).executions
    assert execution.status == "completed"
    # Started after the claim (the fork and the confinement came first), ended after it began.
    assert before < execution.started_at <= execution.finished_at
    spent = (execution.finished_at - execution.started_at).total_seconds()
    assert execution.duration_seconds <= spent + 0.001


# --- one statement: the result goes to the execution row alone ------------------------------


@pytest.mark.django_db(transaction=True)
def test_finishing_a_run_is_one_update_of_its_execution(django_assert_num_queries):
    task = make_task(next_run_at=T0)
    claim = claim_slot(task.pk, T0, T0 + S)
    with django_assert_num_queries(1) as captured:
        previous = records.finish(claim.execution, SnippetResult("completed", "hi", "", 1.0), T0)
    assert previous == "running"
    assert captured.captured_queries[0]["sql"].startswith('UPDATE "scheduled_tasks_execution"')
    # The task's last status is its last run's: nothing of the task needed writing.
    task = ScheduledTask.objects.select_related("last_execution").get(pk=task.pk)
    assert (task.last_execution_id, task.last_status) == (claim.execution.pk, "completed")


def test_an_older_run_finishing_late_does_not_speak_for_the_task():
    task = make_task(every=1, unit="minutes", max_instances=2)
    older = claim_slot(task.pk, T0, T0)
    newer = claim_slot(task.pk, T0 + MIN, T0 + MIN)
    records.finish(newer.execution, SnippetResult("completed", "", "", 1.0), T0 + MIN + S)
    records.finish(older.execution, SnippetResult("failed", "", "x", 9.0), T0 + MIN + 2 * S)
    assert ScheduledTask.objects.get(pk=task.pk).last_status == "completed"


def test_a_cancelled_run_keeps_its_record_whatever_the_child_answered():
    task = make_task(next_run_at=T0)
    claim = claim_slot(task.pk, T0, T0 + S)
    Execution.objects.filter(pk=claim.execution.pk).update(status="cancelled", error="by ann")
    for status in ("completed", "failed", "cancelled"):
        result = SnippetResult(status, "late", "", 1.0)
        assert records.finish(claim.execution, result, T0 + 2 * S) is None
    execution = Execution.objects.get(pk=claim.execution.pk)
    assert (execution.status, execution.error, execution.output) == ("cancelled", "by ann", "")


def test_the_real_outcome_replaces_a_reapers_verdict_but_a_cancel_does_not():
    task = make_task(next_run_at=T0)
    claim = claim_slot(task.pk, T0, T0 + S)
    Execution.objects.filter(pk=claim.execution.pk).update(status="abandoned")
    stopped = SnippetResult("cancelled", "", "lost its lease", 1.0)
    assert records.finish(claim.execution, stopped, T0 + 2 * S) is None
    assert Execution.objects.get(pk=claim.execution.pk).status == "abandoned"
    done = SnippetResult("completed", "", "", 1.0)
    assert records.finish(claim.execution, done, T0 + 2 * S) == "abandoned"
    assert Execution.objects.get(pk=claim.execution.pk).status == "completed"
