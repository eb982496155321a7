"""Runners share due work: each claims only what a free slot can start (real processes, the
test database: SQLite or PostgreSQL)."""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduled_tasks.models import Execution
from tests.conftest import start_manage
from tests.factories import make_task
from tests.test_pool import busy

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

JOBS = 8


def test_two_runners_with_one_slot_each_split_one_second_jobs_evenly():
    # Due a few seconds ahead, so that both daemons are up and idle when the batch comes due.
    due = timezone.now() + timedelta(seconds=8)
    for i in range(JOBS):
        make_task(name=f"job-{i}", code=busy(1.0), every=1, unit="days", next_run_at=due)
    daemons = [
        start_manage("run_scheduled_tasks", "--daemon", "--concurrency", "1", "--interval", "1")
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if Execution.objects.exclude(status__in=["pending", "running"]).count() >= JOBS:
                break
            time.sleep(0.5)
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            _, err = daemon.communicate(timeout=60)
            assert daemon.returncode == 0, err
    runs = list(Execution.objects.select_related("task"))
    assert len(runs) == JOBS  # 0 duplicates ...
    assert sorted(e.task.name for e in runs) == sorted(f"job-{i}" for i in range(JOBS))  # 0 missed
    assert all(e.status == "completed" for e in runs), [(e.status, e.error) for e in runs]
    by_runner = Counter(e.runner for e in runs)
    assert len(by_runner) == 2, by_runner
    assert min(by_runner.values()) >= JOBS // 2 - 1, by_runner  # shared, not 8 / 0
