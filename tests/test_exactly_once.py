"""Exactly once, proved with real processes against the test database (SQLite or PostgreSQL).

Several ``run_scheduled_tasks`` processes (overlapping cron invocations, and a daemon beside
them when the command has ``--daemon``) race for the same due slots and retries, round after
round; every slot must be run once, none missed, and no task may run twice at once. A runner
killed with SIGKILL leaves a run that is reaped once its lease expires, and the task runs again.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import load_command_class
from django.db import transaction
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from scheduled_tasks.models import Execution, ScheduledTask
from tests.conftest import ROOT, database_url_for_subprocess, run_manage, start_manage
from ticketproo.crm.models import Ticket

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TASKS = 250
ROUNDS = 8
RUNNERS = 4
TRACE_EVERY = 5  # every 5th task's snippet leaves a trace (a ticket); the others just `pass`
RETRY_EVERY = 10  # every 10th task (all traced) also has a pending retry due in each round


def snippet_code(round_no: int) -> Concat:
    """Per task and round: create a ticket when the run starts, stamp it when it ends.

    The tickets are the runs' own trace, independent of the scheduler's records: their count
    shows how often each snippet really ran, their [created_at, resolved_at] whether two runs
    of one task overlapped.
    """
    return Concat(
        Value(f"t = Ticket.objects.create(title='r{round_no} t"),
        Cast("pk", CharField()),
        Value("')\nTicket.objects.filter(pk=t.pk).update(resolved_at=timezone.now())\n"),
    )


def wait_all(procs) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err


def daemon_supported() -> bool:
    command = load_command_class("scheduled_tasks", "run_scheduled_tasks")
    return "--daemon" in command.create_parser("manage.py", "run_scheduled_tasks").format_help()


@contextlib.contextmanager
def daemon_beside() -> Iterator[subprocess.Popen[bytes] | None]:
    """``run_scheduled_tasks --daemon`` running throughout (None if the command has no daemon
    mode); stopped with SIGTERM at the end, and it must exit cleanly."""
    if not daemon_supported():
        yield None
        return
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url_for_subprocess(),
    }
    args = [sys.executable, str(ROOT / "manage.py"), "run_scheduled_tasks", "--daemon"]
    # Output to a file: a pipe nobody reads could fill up and stall the daemon.
    with tempfile.TemporaryFile() as output:
        daemon = subprocess.Popen(
            [*args, "--interval", "1"], stdout=output, stderr=subprocess.STDOUT, cwd=ROOT, env=env
        )
        try:
            yield daemon
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
        output.seek(0)
        assert daemon.returncode == 0, output.read().decode(errors="replace")


def something_due() -> bool:
    now = timezone.now()
    return ScheduledTask.objects.due(now).exists() or Execution.objects.due_retries(now).exists()


def test_concurrent_runners_run_every_slot_exactly_once_and_never_overlap():
    started = timezone.now()
    base = started - timedelta(hours=1)
    tasks = ScheduledTask.objects.bulk_create(
        ScheduledTask(
            name=f"eo-{i:04d}",
            code="pass",
            every=1,
            unit="hours",
            anchor=base - timedelta(days=1),
            next_run_at=None,
        )
        for i in range(TASKS)
    )
    traced = [task for i, task in enumerate(tasks) if i % TRACE_EVERY == 0]
    with_retry = [task for i, task in enumerate(tasks) if i % RETRY_EVERY == 0]
    slots = [base + timedelta(seconds=r) for r in range(ROUNDS)]  # distinct, all due
    planted: list[int] = []
    sweeps = 0
    with daemon_beside() as daemon:
        for round_no, slot in enumerate(slots):
            with transaction.atomic():  # the daemon must see a round whole or not at all
                ScheduledTask.objects.update(next_run_at=slot)
                ScheduledTask.objects.filter(pk__in=[t.pk for t in traced]).update(
                    code=snippet_code(round_no)
                )
                retries = Execution.objects.bulk_create(
                    Execution(
                        task=task,
                        status="pending",
                        trigger="retry",
                        attempt=2,
                        not_before=slot,
                        created_at=slot,
                    )
                    for task in with_retry
                )
            planted += [e.pk for e in retries]
            procs = []
            for i in range(RUNNERS):  # staggered like overlapping cron invocations
                procs.append(start_manage("run_scheduled_tasks"))
                if i % 2:
                    time.sleep(0.2)
            wait_all(procs)
            # Work a runner found busy (its task was running elsewhere) waits for a later tick.
            while something_due():
                sweeps += 1
                assert sweeps <= 3 * ROUNDS, "due work is never taken"
                wait_all([start_manage("run_scheduled_tasks")])
        wait_for(
            lambda: not Execution.objects.filter(status="running").exists(),
            what="the last runs end",
        )

    # Every slot has exactly one record, and every record ran to completion.
    scheduled = list(
        Execution.objects.filter(trigger="schedule").values_list(
            "task_id", "scheduled_for", "status"
        )
    )
    expected = {(task.pk, slot) for task in tasks for slot in slots}
    assert len(scheduled) == len(expected)
    assert {(task_id, slot) for task_id, slot, _ in scheduled} == expected
    assert Counter(status for *_, status in scheduled) == {"completed": TASKS * ROUNDS}
    retried = Execution.objects.filter(pk__in=planted)
    assert Counter(retried.values_list("status", flat=True)) == {"completed": len(planted)}
    assert Execution.objects.count() == TASKS * ROUNDS + len(planted)

    # Each traced snippet really ran once per slot (twice where a retry was due as well).
    runs = Counter(Ticket.objects.values_list("title", flat=True))
    retry_ids = {task.pk for task in with_retry}
    expected_runs = {
        f"r{r} t{task.pk}": 2 if task.pk in retry_ids else 1
        for task in traced
        for r in range(ROUNDS)
    }
    assert runs == expected_runs

    # max_instances=1: no two runs of a task overlapped, by the runs' own clock. (Not by the
    # executions' started_at: it is read before the claim, see test_engine's
    # test_a_claim_records_the_moment_it_was_made.)
    intervals: dict[str, list] = defaultdict(list)
    for title, begin, end in Ticket.objects.values_list("title", "created_at", "resolved_at"):
        intervals[title.split(" ")[1]].append((begin, end))
    for spans in intervals.values():
        spans.sort()
        for (_, end), (begin, _) in itertools.pairwise(spans):
            assert begin >= end
    record_overlaps = 0
    by_task: dict[int, list] = defaultdict(list)
    for task_id, begin, end in Execution.objects.values_list(
        "task_id", "started_at", "finished_at"
    ):
        by_task[task_id].append((begin, end))
    for spans in by_task.values():
        spans.sort()
        record_overlaps += sum(begin < end for (_, end), (begin, _) in itertools.pairwise(spans))

    # The runners really raced: in every round several of them took slots.
    per_round: dict[object, set[str]] = defaultdict(set)
    for slot, worker in Execution.objects.filter(trigger="schedule").values_list(
        "scheduled_for", "runner"
    ):
        per_round[slot].add(worker)
    sharing = sorted(len(workers) for workers in per_round.values())
    assert sharing[0] >= 2, sharing
    print(
        f"{TASKS * ROUNDS} slots + {len(planted)} retries in {ROUNDS} rounds of {RUNNERS} "
        f"runners{' and a daemon' if daemon else ''} ({sharing} took slots each round), "
        f"{sweeps} follow-up ticks, "
        f"{(timezone.now() - started).total_seconds():.1f} s; "
        f"{record_overlaps} pair(s) of records overlap by their started_at"
    )


# --- a runner killed with SIGKILL -----------------------------------------------------------

LONG_SNIPPET = (
    "start = timezone.now()\n"
    "while (timezone.now() - start).total_seconds() < 20:\n"
    "    pass\n"
    "print('first run done')\n"
)
LEASE_SECONDS = 3


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie no longer runs anything


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout} s")
        time.sleep(0.05)


def sleep_until(moment) -> None:
    delay = (moment - timezone.now()).total_seconds()
    if delay > 0:
        time.sleep(delay)


def start_long_run(monkeypatch) -> tuple[ScheduledTask, object, Execution, int]:
    """A due task with a 20 s snippet, claimed by a real runner whose sandbox child runs it."""
    monkeypatch.setenv("TEST_LEASE_SECONDS", str(LEASE_SECONDS))
    now = timezone.now()
    task = ScheduledTask.objects.create(
        name="long",
        code=LONG_SNIPPET,
        every=1,
        unit="hours",
        anchor=now - timedelta(minutes=5),
        next_run_at=now - timedelta(seconds=1),
        timeout_seconds=60,
        max_retries=1,
        retry_backoff_seconds=1,
    )
    proc = start_manage("run_scheduled_tasks")
    execution = wait_for(
        lambda: Execution.objects.filter(task=task, status="running").first(),
        what="the runner claims the slot",
    )
    [child] = wait_for(lambda: children_of(proc.pid), what="the sandbox child starts")
    return task, proc, execution, child


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_run_of_a_killed_runner_is_reaped_when_its_lease_expires_and_the_task_runs_again(
    monkeypatch,
):
    task, proc, execution, child = start_long_run(monkeypatch)
    try:
        # The runner renews its lease while the snippet runs (every LEASE_SECONDS / 3).
        wait_for(
            lambda: (
                Execution.objects.get(pk=execution.pk).lease_expires_at
                > execution.lease_expires_at + timedelta(seconds=0.5)
            ),
            what="the lease is renewed",
        )
        # Power loss: the runner and its sandbox child vanish without a word.
        kill(proc.pid)
        kill(child)
        proc.wait(timeout=30)
    finally:
        kill(child)
    lease_end = Execution.objects.get(pk=execution.pk).lease_expires_at
    ScheduledTask.objects.filter(pk=task.pk).update(code="print('second run')")

    # A runner that comes while the lease still holds leaves the run alone.
    early = run_manage("run_scheduled_tasks", "--verbose")
    assert early.returncode == 0, early.stderr
    if timezone.now() < lease_end:
        assert Execution.objects.get(pk=execution.pk).status == "running"
        assert not Execution.objects.filter(status="pending").exists()

    sleep_until(lease_end + timedelta(seconds=0.2))
    reaper = run_manage("run_scheduled_tasks", "--verbose")
    assert reaper.returncode == 0, reaper.stderr
    assert "1 abandoned run(s) reaped" in reaper.stdout
    execution.refresh_from_db()
    assert execution.status == "abandoned"
    assert "lease expired" in execution.error
    retry = Execution.objects.get(status="pending")
    assert (retry.attempt, retry.retry_of_id) == (2, execution.pk)

    sleep_until(retry.not_before + timedelta(seconds=0.1))
    again = run_manage("run_scheduled_tasks")
    assert again.returncode == 0, again.stderr
    retry.refresh_from_db()
    assert (retry.status, retry.output) == ("completed", "second run\n")
    assert Execution.objects.filter(task=task).count() == 2


def test_sandbox_child_dies_with_its_runner(monkeypatch):
    _, proc, _, child = start_long_run(monkeypatch)
    try:
        kill(proc.pid)
        proc.wait(timeout=30)  # not communicate(): the orphan holds the runner's pipes open
        deadline = time.monotonic() + 3
        while is_alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_alive(child), "the orphaned sandbox child still runs the snippet"
    finally:
        kill(child)
