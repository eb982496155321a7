""" "Run now" never runs in the request (issue #13): it queues a manual run and answers; a
daemon started here picks it up within about a second (its idle wait looks every second,
though its interval is a minute), or, with no runner alive, the web process runs it in a
background thread. Either way the run's output so far is stored while it goes on, and a
Cancel from the task page kills its child. Real processes, SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scheduled_tasks import background, heartbeats, partial_output
from scheduled_tasks.daemon import Scheduler
from scheduled_tasks.models import Execution, RunnerHeartbeat
from scheduled_tasks.runner import TickReport
from tests.conftest import message_texts, start_manage
from tests.factories import make_editor, make_execution, make_task

# Prints, then spins far longer than any wait here: only a cancel ends it early.
SPIN_SECONDS = 40
PRINT_THEN_SPIN = (
    "print('first line')\n"
    "start = datetime.now()\n"
    f"while (datetime.now() - start).total_seconds() < {SPIN_SECONDS}:\n"
    "    pass\n"
    "print('not cancelled')\n"
)


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout} s")
        time.sleep(0.05)


def running_with_output(execution_id: int) -> bool:
    execution = Execution.objects.get(pk=execution_id)
    return execution.status == "running" and execution.output == "first line\n"


@pytest.fixture
def editor_client(client: Client) -> Client:
    client.force_login(make_editor("runner-editor"))
    return client


@pytest.fixture
def daemon() -> Iterator[subprocess.Popen[str]]:
    """A real daemon whose interval (60 s) is far longer than any wait here."""
    proc = start_manage("run_scheduled_tasks", "--daemon", "--interval", "60", "--concurrency", "1")
    try:
        wait_for(
            lambda: (
                RunnerHeartbeat.objects.filter(kind="daemon", stopped_at=None).exists()
                or proc.poll() is not None
            ),
            "the daemon's first heartbeat",
        )
        assert proc.poll() is None, proc.communicate()
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def cancel_from_the_task_page(client: Client, execution: Execution) -> None:
    detail = reverse("scheduled_tasks:task_detail", args=[execution.task_id])
    cancel = reverse("scheduled_tasks:execution_cancel", args=[execution.pk])
    assert f'action="{cancel}"' in client.get(detail).content.decode()
    response = client.post(cancel, {"next": detail})
    assert response["Location"] == detail


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_daemon_starts_a_queued_run_within_about_a_second(
    daemon: subprocess.Popen[str], editor_client: Client
) -> None:
    # Inactive: nothing of its schedule runs; a manual run of it does.
    task = make_task(
        name="spin", code=PRINT_THEN_SPIN, timeout_seconds=SPIN_SECONDS * 2, is_active=False
    )
    time.sleep(0.5)  # the daemon's first tick is behind it: it waits (60 s) and peeks
    response = editor_client.post(reverse("scheduled_tasks:task_run", args=[task.pk]))
    execution = Execution.objects.get(task=task)
    assert response["Location"] == reverse("scheduled_tasks:execution_detail", args=[execution.pk])
    assert "a runner starts it within a second or so" in message_texts(response)[0]
    # Its idle wait looks every second, not every 60 s; a generous bound for a slow machine.
    wait_for(lambda: running_with_output(execution.pk), "the run's first line, stored", 10.0)
    execution.refresh_from_db()
    assert (execution.started_at - execution.created_at).total_seconds() < 10
    assert execution.runner and not execution.runner.endswith(":web")  # the daemon's
    # The page's poll shows the output while the run goes on.
    body = editor_client.get(reverse("scheduled_tasks:execution_live", args=[execution.pk])).json()
    assert (body["status"], body["output"]) == ("running", "first line\n")
    cancel_from_the_task_page(editor_client, execution)
    # The daemon's pool notices within about a second and kills the child: it takes the
    # next queued run at once (concurrency 1), long before the 40 s spin could have ended.
    follower = make_task(name="after", code="print('next')", is_active=False)
    editor_client.post(reverse("scheduled_tasks:task_run", args=[follower.pk]))
    wait_for(
        lambda: Execution.objects.filter(task=follower, status="completed").exists(),
        "the next run, after the cancelled one",
        20.0,
    )
    execution.refresh_from_db()
    assert (execution.status, execution.cancelled_by.username) == ("cancelled", "runner-editor")
    assert "not cancelled" not in execution.output
    assert Execution.objects.get(task=follower).output == "next\n"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_without_a_runner_the_web_process_runs_it_in_the_background(
    editor_client: Client,
) -> None:
    task = make_task(name="spin", code=PRINT_THEN_SPIN, timeout_seconds=SPIN_SECONDS * 2)
    response = editor_client.post(reverse("scheduled_tasks:task_run", args=[task.pk]))
    execution = Execution.objects.get(task=task)
    assert "this web process starts it in the background" in message_texts(response)[0]
    # The request answered; the thread runs it, storing the output while it goes on.
    wait_for(lambda: running_with_output(execution.pk), "the run's first line, stored", 15.0)
    execution.refresh_from_db()
    assert execution.runner.endswith(":web")
    cancel_from_the_task_page(editor_client, execution)
    assert background.join(timeout=20), "the cancelled run's child was not killed"
    execution.refresh_from_db()
    assert (execution.status, execution.cancelled_by.username) == ("cancelled", "runner-editor")
    assert execution.output == "first line\n"


@pytest.mark.django_db(transaction=True)
def test_the_background_thread_leaves_a_run_it_cannot_claim() -> None:
    task = make_task(name="t")
    cancelled = make_execution(task, status="cancelled")
    assert background.run_one(cancelled.pk, runner_id="web-test") is False
    assert Execution.objects.get(pk=cancelled.pk).status == "cancelled"


# --- units: the output so far, the live-runner check, the daemon's wake-up -----------------


@pytest.mark.django_db
def test_the_output_so_far_is_stored_while_running_and_never_after() -> None:
    task = make_task()
    execution = make_execution(task, status="running")
    data = bytearray(b"caf")
    output = partial_output.PartialOutput(execution.pk, lambda: (data, False))
    assert output.store(now=100.0) is True
    data += "é and ".encode()[:1]  # half of a character: not shown until it is whole
    assert output.store(now=100.5) is False  # at most once a second
    assert output.store(now=101.0) is True
    assert Execution.objects.get(pk=execution.pk).output == "caf"
    assert output.store(now=103.0) is False  # unchanged: no write
    data += "é and ".encode()[1:]
    Execution.objects.filter(pk=execution.pk).update(status="completed", output="final")
    assert output.store(now=104.0) is False  # ended: the final record stands
    assert Execution.objects.get(pk=execution.pk).output == "final"


def test_partial_utf8_is_left_out_of_the_text() -> None:
    assert partial_output.decoded("naïve".encode()[:3]) == "na"
    assert partial_output.decoded(b"bad \xff byte") == "bad \ufffd byte"


@pytest.mark.django_db
def test_a_live_runner_is_a_daemon_or_embedded_leader_that_beat_lately() -> None:
    now = timezone.now()
    assert background.runner_alive(now) is False
    heartbeats.beat("host:1", "cron", now)
    assert background.runner_alive(now) is False
    heartbeats.beat("host:2", "embedded", now)
    assert background.runner_alive(now) is True
    assert background.runner_alive(now + timezone.timedelta(minutes=2)) is False
    heartbeats.stopped("host:2", now)
    assert background.runner_alive(now) is False


def test_a_woken_scheduler_ends_its_idle_wait_at_once() -> None:
    sleeps: list[float] = []
    scheduler: Scheduler

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 1:
            scheduler.wake()

    def tick(now: Any, **kwargs: Any) -> TickReport:
        return TickReport()

    clock = [0.0]

    def sleep_and_advance(seconds: float) -> None:
        clock[0] += seconds
        sleep(seconds)

    scheduler = Scheduler(
        interval=60,
        sleep=sleep_and_advance,
        monotonic=lambda: clock[0],
        tick=tick,
        next_due_at=lambda now: None,
        peek_seconds=1.0,
    )
    scheduler._wait(60.0, peek=True)
    assert sleeps == [1.0]  # no peek needed, no second slice
    scheduler._wait(2.0, peek=True)
    assert sleeps == [1.0, 1.0, 1.0]  # the wake was used up: the whole wait


@pytest.mark.django_db
def test_a_run_queued_since_the_last_tick_is_seen_behind_older_due_work() -> None:
    from datetime import timedelta

    from scheduled_tasks import runner

    now = timezone.now()
    before = now - timedelta(seconds=1)
    task = make_task(name="t")
    make_execution(task, status="pending", not_before=now, lease_expires_at=now)
    assert runner.queued_since(before, now) is False  # a runner holds it: not new work
    make_execution(task, status="pending", not_before=now)
    assert runner.queued_since(before, now) is True
    assert runner.queued_since(now, now + timedelta(seconds=1)) is False  # the tick saw it
