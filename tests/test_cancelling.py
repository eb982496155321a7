"""Cancelling a run (``cancelling.py``): a pending run never starts, a running one's sandbox
child is killed by its runner (the pool and the serial ``run_claim``), the record says who
cancelled it and when, and nothing retries it. Real children, SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.utils import timezone

from scheduled_tasks import claims, leases, pool, records, runner
from scheduled_tasks.cancelling import NotCancellable, cancel_execution
from scheduled_tasks.models import Execution, ExecutionLogLine
from scheduled_tasks.sandbox import SnippetResult, proctree
from tests.factories import T0, S, claim_slot, make_execution, make_task, make_user

pytestmark = pytest.mark.django_db

# Long enough that a run not stopped would hold the test up for all to see, short of the
# task's timeout (so a timeout is never mistaken for a cancel).
SPIN_SECONDS = 30
SPIN = (
    "logger.info('spinning')\n"
    "start = datetime.now()\n"
    f"while (datetime.now() - start).total_seconds() < {SPIN_SECONDS}:\n"
    "    pass\n"
    "print('not cancelled')\n"
)


@pytest.fixture
def ann() -> User:
    return make_user("ann")


# --- pending and ended runs ----------------------------------------------------------------


def test_a_pending_retry_is_cancelled_and_never_starts(ann: User) -> None:
    task = make_task(max_retries=3)
    first = make_execution(task, status="failed", trigger="schedule", created_at=T0)
    retry = make_execution(task, status="pending", trigger="retry", attempt=2, retry_of=first,
                           not_before=T0 + S, created_at=T0)  # fmt: skip
    cancelled = cancel_execution(retry.pk, user=ann, now=T0 + 2 * S)
    assert (cancelled.status, cancelled.cancelled_by, cancelled.finished_at) == (
        "cancelled",
        ann,
        T0 + 2 * S,
    )
    assert cancelled.error == "Cancelled by ann at 2026-01-05 09:00:02 UTC."
    assert cancelled.lease_expires_at is None and cancelled.duration_seconds is None
    assert claims.claim_pending(retry.pk, T0 + 3 * S, runner="me:1") is None
    assert Execution.objects.get(pk=retry.pk).status == "cancelled"
    assert not Execution.objects.filter(status="pending").exists()  # the chain ends here


def test_a_pending_attempt_takes_any_later_waiting_attempt_of_its_chain_with_it(ann: User) -> None:
    task = make_task(max_retries=3)
    first = make_execution(task, status="failed", created_at=T0)
    second = make_execution(task, status="pending", trigger="retry", attempt=2, retry_of=first)
    third = make_execution(task, status="pending", trigger="retry", attempt=3, retry_of=first)
    other = make_execution(make_task(name="other"), status="pending")
    cancel_execution(second.pk, user=ann, now=T0)
    third.refresh_from_db()
    assert (third.status, third.cancelled_by) == ("cancelled", ann)
    assert Execution.objects.get(pk=other.pk).status == "pending"


def test_a_claimed_run_cancelled_before_it_starts_is_not_started(ann: User) -> None:
    task = make_task(next_run_at=T0)
    [claim] = claims.claim_slots([claims.Slot(task.pk, T0)], lambda: T0, runner="me:1").claims
    assert claim.execution.status == "pending"
    cancel_execution(claim.execution.pk, user=ann, now=T0 + S)
    assert leases.start(claim, T0 + 2 * S) is False
    execution = Execution.objects.get(pk=claim.execution.pk)
    assert (execution.status, execution.lease_expires_at) == ("cancelled", None)


def test_a_running_record_gets_its_duration_and_its_result_writes_nothing(ann: User) -> None:
    task = make_task(next_run_at=T0, max_retries=2)
    claim = claim_slot(task.pk, T0, T0 + S)
    cancelled = cancel_execution(claim.execution.pk, user=ann, now=T0 + 4 * S)
    assert (cancelled.status, cancelled.duration_seconds) == ("cancelled", 3.0)
    # What the killed child answers (or a result that raced the cancel) changes nothing.
    stopped = SnippetResult("cancelled", "", "stopped", 3.1)
    execution = runner.finish_run(claim, stopped, T0 + 5 * S)
    assert records.finish(claim.execution, SnippetResult("completed", "", "", 3.2), T0) is None
    assert (execution.status, execution.error, execution.cancelled_by) == (
        "cancelled",
        "Cancelled by ann at 2026-01-05 09:00:04 UTC.",
        ann,
    )
    assert not Execution.objects.filter(trigger="retry").exists()


def test_a_finished_run_is_not_cancellable(ann: User) -> None:
    task = make_task()
    for status in ("completed", "failed", "timeout", "abandoned", "skipped"):
        run = make_execution(task, status=status)
        with pytest.raises(NotCancellable, match=rf"#{run.pk} has already ended"):
            cancel_execution(run.pk, user=ann, now=T0)
        assert Execution.objects.get(pk=run.pk).status == status
    with pytest.raises(NotCancellable, match="does not exist"):
        cancel_execution(999999, user=ann, now=T0)


def test_cancelling_twice_keeps_the_first_cancel(ann: User) -> None:
    run = make_execution(make_task(), status="pending")
    cancel_execution(run.pk, user=ann, now=T0)
    with pytest.raises(NotCancellable, match=r"already ended \(cancelled\)"):
        cancel_execution(run.pk, user=make_user("bob"), now=T0 + S)
    run.refresh_from_db()
    assert (run.cancelled_by, run.finished_at) == (ann, T0)


# --- running runs: the runner kills the child -----------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True  # (a zombie too: not yet reaped by its runner)


class Canceller(threading.Thread):
    """From another thread (its own database connection): once the run of ``task_name`` is
    running and its code has begun, cancel it; then watch its child go."""

    def __init__(self, task_name: str, user: User) -> None:
        super().__init__(daemon=True)
        self.task_name, self.user = task_name, user
        self.pids: set[int] = set()
        self.gone_after: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            deadline = time.monotonic() + 60
            execution = None
            while time.monotonic() < deadline:
                execution = Execution.objects.filter(
                    task__name=self.task_name, status="running"
                ).first()
                if execution and ExecutionLogLine.objects.filter(execution=execution).exists():
                    break  # its code logged "spinning": the child is at work
                time.sleep(0.05)
            assert execution is not None, "the run never started"
            self.pids = set(proctree.CHILDREN)
            assert self.pids, "no sandbox child seen"
            cancel_execution(execution.pk, user=self.user, now=timezone.now())
            cancelled = time.monotonic()
            while any(_alive(pid) for pid in self.pids) and time.monotonic() < cancelled + 10:
                time.sleep(0.02)
            if not any(_alive(pid) for pid in self.pids):
                self.gone_after = time.monotonic() - cancelled
        except BaseException as exc:  # reported by the test's thread
            self.error = exc
        finally:
            connections.close_all()


@pytest.fixture
def canceller(ann: User) -> Iterator[Any]:
    made: list[Canceller] = []

    def start(task_name: str) -> Canceller:
        thread = Canceller(task_name, ann)
        made.append(thread)
        thread.start()
        return thread

    yield start
    for thread in made:
        thread.join(timeout=30)


def _assert_cancelled_by_ann(task_name: str, thread: Canceller, ann: User) -> Execution:
    thread.join(timeout=30)
    assert thread.error is None, thread.error
    # The child went within a few seconds of the cancel (the runner looks once a second),
    # long before the snippet would have ended by itself.
    assert thread.gone_after is not None and thread.gone_after < SPIN_SECONDS / 3
    assert not any(_alive(pid) for pid in thread.pids)
    execution = Execution.objects.select_related("cancelled_by").get(task__name=task_name)
    assert execution.status == "cancelled"
    assert execution.cancelled_by == ann
    assert execution.error.startswith("Cancelled by ann at ")
    assert "not cancelled" not in execution.output
    assert 0 < execution.duration_seconds < SPIN_SECONDS
    assert execution.finished_at >= execution.started_at
    assert execution.lease_expires_at is None
    assert not Execution.objects.filter(trigger="retry").exists()  # a cancel is not retried
    return execution


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_pool_kills_a_run_cancelled_while_it_goes_on(
    canceller: Any, ann: User, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    looks: list[float] = []
    real = leases.still_running

    def counted(ids: Any) -> set[int]:
        looks.append(time.monotonic())
        return real(ids)

    monkeypatch.setattr(leases, "still_running", counted)
    make_task(name="spin", code=SPIN, max_retries=2, timeout_seconds=SPIN_SECONDS * 2,
              next_run_at=timezone.now() - timedelta(seconds=1))  # fmt: skip
    thread = canceller("spin")
    began = time.monotonic()
    with caplog.at_level(logging.INFO, logger="scheduled_tasks"):
        report = runner.tick(timezone.now(), concurrency=2)
    spent = time.monotonic() - began
    (execution,) = report.executions
    assert execution.status == "cancelled"
    _assert_cancelled_by_ann("spin", thread, ann)
    assert "was cancelled: Cancelled by ann" in caplog.text
    # The pool looked at its run's record (one query each time), at most once a second.
    assert 1 <= len(looks) <= spent / pool.CANCEL_CHECK_SECONDS + 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_now_in_progress_is_killed_when_cancelled(canceller: Any, ann: User) -> None:
    task = make_task(name="manual spin", code=SPIN, max_retries=2,
                     timeout_seconds=SPIN_SECONDS * 2)  # fmt: skip
    thread = canceller("manual spin")
    # The serial path ("Run now", --task-id): run_claim follows its one child to the end.
    execution = runner.run_task_now(task, now=timezone.now())
    assert execution.status == "cancelled"
    _assert_cancelled_by_ann("manual spin", thread, ann)
