"""The leader lease: acquire, renew, take over after expiry, release; a real race for it."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta

import pytest

from scheduled_tasks import leader
from scheduled_tasks.models import SchedulerLease
from tests.conftest import start_manage
from tests.factories import T0

NAME = "embedded-scheduler"
TTL = 30


@pytest.mark.django_db
def test_first_holder_takes_a_free_lease():
    assert leader.acquire(NAME, "a", T0, TTL)
    lease = SchedulerLease.objects.get(name=NAME)
    assert lease.holder == "a"
    assert lease.acquired_at == lease.renewed_at == T0
    assert lease.expires_at == T0 + timedelta(seconds=TTL)
    assert leader.holder_of(NAME, T0) == "a"


@pytest.mark.django_db
def test_a_held_lease_cannot_be_taken_before_it_expires():
    leader.acquire(NAME, "a", T0, TTL)
    assert not leader.acquire(NAME, "b", T0 + timedelta(seconds=TTL - 1), TTL)
    assert not leader.acquire(NAME, "b", T0 + timedelta(seconds=TTL), TTL)  # not yet past it
    assert SchedulerLease.objects.get(name=NAME).holder == "a"


@pytest.mark.django_db
def test_acquiring_again_extends_the_lease_and_keeps_the_acquisition_time():
    leader.acquire(NAME, "a", T0, TTL)
    later = T0 + timedelta(seconds=10)
    assert leader.acquire(NAME, "a", later, TTL)
    lease = SchedulerLease.objects.get(name=NAME)
    assert lease.acquired_at == T0
    assert lease.renewed_at == later
    assert lease.expires_at == later + timedelta(seconds=TTL)


@pytest.mark.django_db
def test_renew_extends_only_our_own_lease():
    leader.acquire(NAME, "a", T0, TTL)
    later = T0 + timedelta(seconds=10)
    assert leader.renew(NAME, "a", later, TTL)
    assert SchedulerLease.objects.get(name=NAME).expires_at == later + timedelta(seconds=TTL)
    assert not leader.renew(NAME, "b", later, TTL)
    assert not leader.renew("other-lease", "a", later, TTL)


@pytest.mark.django_db
def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_renew_it():
    leader.acquire(NAME, "a", T0, TTL)
    after_expiry = T0 + timedelta(seconds=TTL + 1)
    assert leader.holder_of(NAME, after_expiry) is None
    assert leader.acquire(NAME, "b", after_expiry, TTL)
    lease = SchedulerLease.objects.get(name=NAME)
    assert lease.holder == "b"
    assert lease.acquired_at == after_expiry  # a new tenure, not a renewal
    assert not leader.renew(NAME, "a", after_expiry, TTL)
    assert not leader.acquire(NAME, "a", after_expiry, TTL)


@pytest.mark.django_db
def test_release_frees_the_lease_at_once_but_only_for_its_holder():
    leader.acquire(NAME, "a", T0, TTL)
    assert not leader.release(NAME, "b")
    assert leader.holder_of(NAME, T0) == "a"
    assert leader.release(NAME, "a")
    assert leader.holder_of(NAME, T0) is None
    assert leader.acquire(NAME, "b", T0 + timedelta(seconds=1), TTL)
    assert not leader.release(NAME, "a")


@pytest.mark.django_db
def test_leases_with_different_names_are_independent():
    assert leader.acquire(NAME, "a", T0, TTL)
    assert leader.acquire("reports", "b", T0, TTL)
    assert leader.holder_of(NAME, T0) == "a"
    assert leader.holder_of("reports", T0) == "b"


RACE = """
import time
from django.utils import timezone
from scheduled_tasks import leader
start = {start!r}
time.sleep(max(0.0, start - time.time()))
print(leader.acquire("race", "p{n}", timezone.now(), 60))
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_processes_racing_for_a_free_lease_elect_exactly_one():
    start = time.time() + 3.0  # all processes are up by then and ask at the same moment
    procs = [start_manage("shell", "-c", RACE.format(start=start, n=n)) for n in range(4)]
    answers = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert proc.returncode == 0, err
        answers.append(out.strip().splitlines()[-1])
    assert sorted(answers) == ["False", "False", "False", "True"]
    winner = answers.index("True")
    assert SchedulerLease.objects.get(name="race").holder == f"p{winner}"
