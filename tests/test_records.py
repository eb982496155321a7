"""Recording a run's end (records.py): when its code began and what it took."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduled_tasks import records, runner
from scheduled_tasks.models import Execution
from scheduled_tasks.sandbox import SnippetResult
from tests.factories import T0, S, claim_slot, make_task

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
