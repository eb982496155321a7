"""``ScheduledTask.last_failed`` follows the task's latest run through its whole life: claims
clear it (or set it for a broken schedule's failed record), runs that fail, time out or are
abandoned set it, a reaped run that completes after all clears it, an older run ending late
leaves it alone, and the clean-up of old history forgets it. Each check compares it with what
the task's latest run says (``last_status``)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduled_tasks import claims, conf, last_outcome, leases, records
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.sandbox import SnippetResult
from tests.conftest import FakeSandbox, reload, tick
from tests.factories import MIN, T0, H, S, claim_slot, make_task

pytestmark = pytest.mark.django_db


def failing(task: ScheduledTask) -> bool:
    task = reload(task)
    assert task.last_failed == last_outcome.is_failing(task.last_status), "out of step"
    return task.last_failed


def test_a_failed_run_marks_the_task_and_its_next_good_run_clears_it() -> None:
    task = make_task(every=1, unit="hours")
    tick(T0 + MIN, FakeSandbox("failed"))
    assert failing(task)
    tick(T0 + H + MIN, FakeSandbox("timeout"))
    assert failing(task)
    tick(T0 + 2 * H + MIN, FakeSandbox("completed"))
    assert not failing(task)


def test_a_claim_clears_it_until_the_run_ends() -> None:
    task = make_task(every=1, unit="hours")
    tick(T0 + MIN, FakeSandbox("failed"))
    claim = claim_slot(task.pk, T0 + H, T0 + H)
    assert claim is not None and not failing(task)  # running now: not failing
    records.finish(claim.execution, SnippetResult("failed", "", "boom", 0.1), T0 + H + S)
    assert failing(task)


def test_a_retry_that_starts_clears_it_and_one_that_completes_keeps_it_clear() -> None:
    task = make_task(every=1, unit="days", max_retries=1, retry_backoff_seconds=10)
    tick(T0 + MIN, FakeSandbox("failed"))
    assert failing(task)
    retry = Execution.objects.get(task=task, status="pending")
    claim = claims.claim_pending(retry.pk, T0 + MIN + 20 * S)
    assert claim is not None and not failing(task)
    records.finish(claim.execution, SnippetResult("completed", "", "", 0.1), T0 + 2 * MIN)
    assert not failing(task)


def test_a_reaped_run_marks_it_and_finishing_after_all_clears_it() -> None:
    task = make_task(every=1, unit="days")
    claim = claim_slot(task.pk, T0, T0)
    lease = conf.get("LEASE_SECONDS") * S
    assert leases.reap_abandoned(T0 + lease + S) == 1
    assert failing(task)
    # Its runner was only frozen: the real outcome replaces the reaper's verdict.
    previous = records.finish(
        claim.execution, SnippetResult("completed", "", "", 0.1), T0 + lease + 2 * S
    )
    assert previous == "abandoned" and not failing(task)


def test_an_older_run_ending_late_does_not_speak_for_the_task() -> None:
    task = make_task(every=1, unit="hours", max_instances=2)
    old = claim_slot(task.pk, T0, T0)
    new = claim_slot(task.pk, T0 + H, T0 + H)
    assert old is not None and new is not None
    records.finish(old.execution, SnippetResult("failed", "", "late", 0.1), T0 + H + S)
    assert not failing(task)  # its latest run is still going
    records.finish(new.execution, SnippetResult("completed", "", "", 0.1), T0 + H + 2 * S)
    assert not failing(task)


def test_a_broken_schedule_record_marks_it_at_the_claim() -> None:
    broken = make_task(name="broken", next_run_at=T0)
    ScheduledTask.objects.filter(pk=broken.pk).update(time_zone="Mars/Olympus_Mons")
    tick(T0 + MIN, FakeSandbox())
    assert failing(broken)


def test_the_clean_up_of_old_history_forgets_a_deleted_latest_run() -> None:
    task = make_task(every=1, unit="days")
    tick(T0 + MIN, FakeSandbox("failed"))
    assert failing(task)
    Execution.objects.filter(task=task).delete()
    assert last_outcome.forget_deleted() == 1
    assert not failing(task)
    assert reload(task).last_execution_id is None


def test_the_cleanup_job_runs_forget_deleted(monkeypatch) -> None:
    from scheduled_tasks import jobs
    from scheduled_tasks.registry import JobContext

    task = make_task(every=1, unit="days")
    tick(T0 + MIN, FakeSandbox("failed"))
    Execution.objects.filter(task=task).update(created_at=T0 - timedelta(days=90))
    ctx = JobContext(T0 + MIN, lambda text: None, "cleanup")
    jobs.cleanup_executions(ctx, days=30)
    assert not failing(task)
