"""Leases (``leases.py``) through tick(): the heartbeat renews them, a run whose lease ran
out is reaped as abandoned, and a runner frozen past its lease neither revives its run nor
doubles its retry. Time is injected; the sandbox is faked."""

from __future__ import annotations

import logging

import pytest

from scheduled_tasks import conf, leases
from scheduled_tasks.models import Execution
from tests.conftest import Clock, FakeSandbox, reload, tick
from tests.factories import MIN, T0, S, claim_slot, make_task

pytestmark = pytest.mark.django_db


# --- heartbeat and renewal -----------------------------------------------------------------


def test_heartbeat_extends_the_lease_so_a_long_run_is_not_reaped():
    task = make_task(every=1, unit="days")
    lease = conf.get("LEASE_SECONDS") * S
    clock = Clock(T0)
    seen: dict[str, object] = {}

    def long_run(options):
        execution = Execution.objects.get(task=task)
        assert execution.lease_expires_at == T0 + lease
        clock.moment = T0 + lease - S
        options["heartbeat"]()  # the sandbox calls it every LEASE_SECONDS / 3 while it runs
        execution.refresh_from_db()
        seen["lease"] = execution.lease_expires_at
        clock.moment = T0 + lease + S  # past the first lease: not stale any more
        seen["reaped"] = leases.reap_abandoned(clock.moment)

    [execution] = tick(T0, FakeSandbox(during=long_run), clock=clock).executions
    assert seen == {"lease": T0 + 2 * lease - S, "reaped": 0}
    assert execution.status == "completed"
    assert execution.lease_expires_at is None


def test_renewing_a_reaped_run_fails_and_does_not_revive_it():
    task = make_task(every=1, unit="days")
    claim = claim_slot(task.pk, T0, T0)
    lease = conf.get("LEASE_SECONDS") * S
    assert leases.renew_lease(claim.execution.pk, T0 + 30 * S) is True
    assert leases.reap_abandoned(T0 + lease + 30 * S) == 1
    assert leases.renew_lease(claim.execution.pk, T0 + lease + 31 * S) is False
    claim.execution.refresh_from_db()
    assert (claim.execution.status, claim.execution.lease_expires_at) == ("abandoned", None)


def test_a_runner_that_lost_its_lease_says_so_in_the_log(caplog):
    make_task(every=1, unit="days")
    clock = Clock(T0)

    def frozen_past_the_lease(options):
        clock.moment = T0 + (conf.get("LEASE_SECONDS") + 1) * S
        leases.reap_abandoned(clock.moment)  # another runner's tick
        options["heartbeat"]()

    with caplog.at_level(logging.WARNING, logger="scheduled_tasks.runner"):
        tick(T0, FakeSandbox(during=frozen_past_the_lease), clock=clock)
    assert "lost its lease (reaped as abandoned)" in caplog.text


# --- a runner frozen past its lease --------------------------------------------------------


def frozen_past_the_lease_then(status: str, clock: Clock) -> FakeSandbox:
    """A runner frozen (SIGSTOP, a paused VM) past its lease: another runner reaps its run,
    then it wakes up and its run ends with ``status``."""

    def during(options):
        clock.moment = T0 + 2 * conf.get("LEASE_SECONDS") * S
        assert leases.reap_abandoned(clock.moment) == 1

    return FakeSandbox(status, during=during)


def test_run_that_completes_after_being_reaped_leaves_no_retry_to_run_it_again():
    make_task(every=1, unit="days", max_retries=1, retry_backoff_seconds=10)
    clock = Clock(T0)
    [execution] = tick(T0, frozen_past_the_lease_then("completed", clock), clock=clock).executions
    assert execution.status == "completed"
    assert not Execution.objects.filter(status="pending").exists()


def test_run_that_fails_after_being_reaped_is_retried_once_not_twice():
    make_task(every=1, unit="days", max_retries=3, retry_backoff_seconds=10)
    clock = Clock(T0)
    tick(T0, frozen_past_the_lease_then("failed", clock), clock=clock)
    assert Execution.objects.filter(status="pending").count() == 1


# --- abandoned runs ------------------------------------------------------------------------


def test_abandoned_run_is_reaped_and_the_task_is_scheduled_again():
    task = make_task(every=1, unit="minutes")
    claimed = T0 + 30 * S
    claim = claim_slot(task.pk, T0, claimed)  # ... and then the runner died
    expiry = claimed + conf.get("LEASE_SECONDS") * S
    # Before the lease runs out the run still counts: the next slot (T0+1min) waits.
    early = tick(expiry - S)
    assert (early.abandoned, early.executions, [t.pk for t in early.busy]) == (0, [], [task.pk])
    report = tick(expiry)
    assert report.abandoned == 1
    claim.execution.refresh_from_db()
    assert claim.execution.status == "abandoned"
    assert claim.execution.finished_at == expiry
    assert "lease expired" in claim.execution.error
    [execution] = report.executions
    assert (execution.scheduled_for, execution.status) == (T0 + MIN, "completed")
    task = reload(task)
    assert task.next_run_at > expiry
    assert task.last_status == "completed"
