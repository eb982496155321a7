"""Retries (``retries.py``) through tick(): exponential backoff, what is retried (failed,
timed out, abandoned, one-offs, function tasks) and waiting for room under max_instances.
Time is injected; the sandbox is faked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduled_tasks import claims, conf, leases, records
from scheduled_tasks.models import Execution
from scheduled_tasks.sandbox import SnippetResult
from tests.conftest import Clock, FakeSandbox, reload, tick
from tests.factories import T0, H, S, claim_slot, make_task

pytestmark = pytest.mark.django_db


def test_failed_run_is_retried_with_exponential_backoff_until_retries_are_used_up():
    task = make_task(every=1, unit="days", max_retries=2, retry_backoff_seconds=60)
    sandbox = FakeSandbox("failed", "failed", "failed", "failed")
    [first] = tick(T0, sandbox, clock=Clock(T0 + 5 * S)).executions  # finished 5 s in
    assert (first.status, first.attempt, first.trigger) == ("failed", 1, "schedule")
    retry = Execution.objects.get(status="pending")
    assert (retry.trigger, retry.attempt, retry.retry_of_id) == ("retry", 2, first.pk)
    assert retry.not_before == T0 + 5 * S + 60 * S  # finish + backoff
    assert retry.scheduled_for is None

    assert tick(T0 + 64 * S, sandbox).executions == []  # not yet
    [second] = tick(T0 + 65 * S, sandbox).executions
    assert (second.pk, second.attempt, second.status) == (retry.pk, 2, "failed")
    third_pending = Execution.objects.get(status="pending")
    assert third_pending.attempt == 3
    assert third_pending.retry_of_id == first.pk  # linked to the first run, not the second
    assert third_pending.not_before == T0 + 65 * S + 120 * S  # twice as long

    [third] = tick(T0 + 185 * S, sandbox).executions
    assert (third.attempt, third.status) == (3, "failed")
    # max_retries=2: three attempts in all, then no more.
    assert not Execution.objects.filter(status="pending").exists()
    assert tick(T0 + timedelta(hours=5), sandbox).executions == []
    assert len(sandbox.calls) == 3
    assert list(first.retries.order_by("attempt").values_list("attempt", flat=True)) == [2, 3]
    assert reload(task).last_status == "failed"


def test_successful_retry_ends_the_chain():
    make_task(every=1, unit="days", max_retries=5, retry_backoff_seconds=10)
    tick(T0, FakeSandbox("failed"))
    [retry] = tick(T0 + 10 * S).executions
    assert (retry.attempt, retry.status) == (2, "completed")
    assert not Execution.objects.filter(status="pending").exists()


@pytest.mark.parametrize("status", ["completed", "failed", "timeout"])
def test_without_max_retries_nothing_is_retried(status):
    make_task(every=1, unit="days")
    tick(T0, FakeSandbox(status))
    assert not Execution.objects.filter(status="pending").exists()


def test_timed_out_run_is_retried():
    make_task(every=1, unit="days", max_retries=1, retry_backoff_seconds=30)
    [execution] = tick(T0, FakeSandbox("timeout")).executions
    assert execution.status == "timeout"
    retry = Execution.objects.get(status="pending")
    assert (retry.attempt, retry.retry_of_id, retry.not_before) == (2, execution.pk, T0 + 30 * S)


def test_abandoned_run_is_retried():
    task = make_task(every=1, unit="days", max_retries=1, retry_backoff_seconds=30)
    claim = claim_slot(task.pk, T0, T0)
    assert claim is not None
    reaped_at = T0 + (conf.get("LEASE_SECONDS") + 1) * S
    assert leases.reap_abandoned(reaped_at) == 1
    retry = Execution.objects.get(status="pending")
    assert (retry.attempt, retry.retry_of_id) == (2, claim.execution.pk)
    assert retry.not_before == reaped_at + 30 * S
    [ran] = tick(reaped_at + 30 * S).executions
    assert (ran.pk, ran.status) == (retry.pk, "completed")


def test_pending_retry_waits_while_the_task_is_at_max_instances():
    task = make_task(every=1, unit="days", max_retries=1, retry_backoff_seconds=60)
    tick(T0, FakeSandbox("failed"))
    manual = claims.claim_manual(task, T0 + 30 * S)  # someone pressed "Run now"
    sandbox = FakeSandbox()
    assert tick(T0 + 61 * S, sandbox).executions == []
    assert sandbox.calls == []
    assert Execution.objects.filter(status="pending").count() == 1
    records.finish(manual.execution, SnippetResult("completed", "", "", 1.0), T0 + 70 * S)
    [retry] = tick(T0 + 71 * S, sandbox).executions
    assert (retry.trigger, retry.status) == ("retry", "completed")


def test_failed_one_off_is_still_retried_after_it_deactivated_itself():
    at = T0 + H
    task = make_task(schedule_kind="once", run_at=at, max_retries=1, retry_backoff_seconds=30)
    tick(at, FakeSandbox("failed"))
    assert reload(task).is_active is False
    report = tick(at + 30 * S)
    assert [(e.trigger, e.attempt, e.status) for e in report.executions] == [
        ("retry", 2, "completed")
    ]


def test_failed_function_task_is_retried_like_a_snippet():
    make_task(code="", function_name="tests.engine.greet", max_retries=1)
    tick(T0, FakeSandbox("failed"))
    assert Execution.objects.get(status="pending").attempt == 2
