"""A hostile result never stops the runner: strings are made storable, and a record the
database still refuses becomes a ``failed`` run while the other claimed runs go on."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from scheduled_tasks import records
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.sandbox import SnippetResult
from tests.conftest import run_manage, start_manage
from tests.factories import make_task

NUL_SNIPPET = 'print("a\\x00b")\n'
SURROGATE_SNIPPET = 'raise ValueError("bad \\ud800 char")\n'


def due_task(name: str, code: str, seconds: float = -300) -> ScheduledTask:
    at = timezone.now() + timedelta(seconds=seconds)
    return make_task(name=name, code=code, every=1, unit="hours", anchor=at, next_run_at=at)


def test_storable_replaces_lone_surrogates_and_escapes_nul():
    assert records.storable("a\x00b\ud800c\udfffd é") == "a\\x00b\ufffdc\ufffdd é"
    assert records.storable("plain") == "plain"


@pytest.mark.django_db(transaction=True)
def test_nul_and_lone_surrogates_in_a_result_are_stored(now):
    task = make_task(name="hostile")
    execution = Execution.objects.create(task=task, status="running", created_at=now)
    result = SnippetResult("failed", "out\x00put \udc80", "err\x00or \ud800", 0.5)
    assert records.finish(execution, result, now) == "running"
    execution.refresh_from_db()
    assert execution.status == "failed"
    assert execution.output == "out\\x00put \ufffd"
    assert execution.error == "err\\x00or \ufffd"


@pytest.mark.django_db(transaction=True)
def test_a_record_the_database_refuses_becomes_a_failed_run_with_the_reason(now, monkeypatch):
    monkeypatch.setattr(records, "storable", lambda text: text)  # as if it let one through
    task = make_task(name="refused")
    execution = Execution.objects.create(task=task, status="running", created_at=now)
    ScheduledTask.objects.filter(pk=task.pk).update(last_execution=execution)  # its claim
    result = SnippetResult("completed", "fine", "x \ud800", 0.5)
    assert records.finish(execution, result, now) == "running"
    execution.refresh_from_db()
    assert execution.status == "failed"
    assert execution.error.startswith("the outcome of this run could not be stored: ")
    assert execution.output == ""
    assert ScheduledTask.objects.get(pk=task.pk).last_status == "failed"


@pytest.mark.django_db(transaction=True)
def test_a_refused_record_does_not_stop_the_other_claimed_runs(monkeypatch):
    # Through the real sandbox and the command: the first run's error cannot be stored (the
    # guard is switched off), the runs claimed with it still run and are recorded.
    monkeypatch.setattr(records, "storable", lambda text: text)
    bad = due_task("bad", SURROGATE_SNIPPET, seconds=-600)
    good = [due_task(f"good-{i}", f"print({i})") for i in range(2)]
    call_command("run_scheduled_tasks")
    failed = Execution.objects.get(task=bad)
    assert failed.status == "failed"
    assert "could not be stored" in failed.error
    for i, task in enumerate(good):
        execution = Execution.objects.get(task=task)
        assert (execution.status, execution.output) == ("completed", f"{i}\n")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_run_scheduled_tasks_task_id_records_nul_output():
    task = make_task(name="nul", code=NUL_SNIPPET, anchor=timezone.now() + timedelta(days=3))
    proc = run_manage("run_scheduled_tasks", "--task-id", str(task.pk))
    assert proc.returncode == 0, proc.stderr
    execution = Execution.objects.get(task=task)
    assert (execution.status, execution.output) == ("completed", "a\\x00b\n")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_run_scheduled_tasks_task_id_records_a_lone_surrogate_error():
    task = make_task(name="sur", code=SURROGATE_SNIPPET, anchor=timezone.now() + timedelta(days=3))
    proc = run_manage("run_scheduled_tasks", "--task-id", str(task.pk))
    assert proc.returncode == 1  # the run failed, the command did not crash
    assert "ended failed" in proc.stderr
    execution = Execution.objects.get(task=task)
    assert execution.status == "failed"
    assert execution.error.endswith("ValueError: bad \ufffd char")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_runner_goes_on_after_hostile_results_in_one_tick():
    nul = due_task("nul", NUL_SNIPPET, seconds=-900)
    sur = due_task("sur", SURROGATE_SNIPPET, seconds=-600)
    after = due_task("after", "print('still here')")
    proc = run_manage("run_scheduled_tasks")
    assert proc.returncode == 0, proc.stderr
    assert Execution.objects.get(task=nul).output == "a\\x00b\n"
    assert Execution.objects.get(task=sur).status == "failed"
    assert Execution.objects.get(task=after).output == "still here\n"


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_daemon_records_hostile_results_and_keeps_running():
    tasks = [
        due_task("nul", NUL_SNIPPET, seconds=0.5),
        due_task("sur", SURROGATE_SNIPPET, seconds=0.6),
        due_task("after", "print('still here')", seconds=0.7),
    ]
    proc = start_manage("run_scheduled_tasks", "--daemon", "--interval", "1")
    try:
        wait_for(
            lambda: Execution.objects.filter(task__in=tasks, finished_at__isnull=False).count() == 3
        )
        late = due_task("later", "print('later')", seconds=0.2)  # the loop is still alive
        wait_for(lambda: Execution.objects.filter(task=late, status="completed").exists())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    runs = {e.task.name: e for e in Execution.objects.select_related("task")}
    assert (runs["nul"].status, runs["nul"].output) == ("completed", "a\\x00b\n")
    assert runs["sur"].status == "failed"
    assert runs["sur"].error.endswith("ValueError: bad \ufffd char")
    assert runs["after"].output == "still here\n"
