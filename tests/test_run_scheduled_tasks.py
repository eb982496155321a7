"""The ``run_scheduled_tasks`` command: flags, exit statuses, logging, overlapping runs."""

from __future__ import annotations

import time
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from scheduled_tasks.models import Execution, ScheduledTask
from tests.conftest import run_manage, start_manage
from tests.factories import make_task, make_ticket

pytestmark = pytest.mark.django_db(transaction=True)


def due_task(name: str, code: str, **extra) -> ScheduledTask:
    now = timezone.now()
    return make_task(
        name=name,
        code=code,
        every=1,
        unit="hours",
        anchor=now - timedelta(minutes=5),
        next_run_at=now - timedelta(minutes=5),
        **extra,
    )


def call(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("run_scheduled_tasks", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_runs_due_tasks_and_exits_zero_even_if_a_snippet_fails():
    ok = due_task("ok", "print('fine')")
    bad = due_task("bad", "x = 1\nraise ValueError('broken')")
    out, _ = call()
    assert out == ""  # quiet by default: cron mails whatever is printed
    assert Execution.objects.get(task=ok).status == "completed"
    failed = Execution.objects.get(task=bad)
    assert failed.status == "failed"
    assert "Line 2" in failed.error


def test_verbose_prints_start_status_duration_and_output():
    due_task("hello", "print('hi there')")
    out, _ = call("--verbose")
    assert "starting task" in out
    assert "“hello”: completed in " in out
    assert "hi there" in out
    assert "1 run(s), 0 not completed" in out


def test_dry_run_lists_due_tasks_and_changes_nothing():
    task = due_task("report", "print(1)")
    before = ScheduledTask.objects.get(pk=task.pk).next_run_at
    out, _ = call("--dry-run")
    assert f"would run task {task.pk} “report”: due since" in out
    assert Execution.objects.count() == 0
    assert ScheduledTask.objects.get(pk=task.pk).next_run_at == before


def test_dry_run_with_nothing_due():
    make_task(name="later", anchor=timezone.now() + timedelta(days=2))
    out, _ = call("--dry-run")
    assert out.strip() == "Nothing is due."


def test_task_id_runs_that_task_now_as_manual():
    task = make_task(name="one", code="print('manual')", anchor=timezone.now() + timedelta(days=3))
    out, _ = call("--task-id", str(task.pk))
    execution = Execution.objects.get(task=task)
    assert execution.trigger == "manual"
    assert execution.status == "completed"
    assert "manual" in out


def test_task_id_of_a_failing_task_exits_nonzero():
    task = make_task(name="boom", code="raise RuntimeError('no')")
    with pytest.raises(CommandError) as excinfo:
        call("--task-id", str(task.pk))
    assert excinfo.value.returncode == 1
    assert "ended failed" in str(excinfo.value)


def test_unknown_task_id_is_a_clear_error_and_changes_nothing():
    with pytest.raises(CommandError) as excinfo:
        call("--task-id", "4242")
    assert excinfo.value.returncode == 2
    assert "no scheduled task with id 4242" in str(excinfo.value)
    assert Execution.objects.count() == 0


@pytest.mark.parametrize("flag", [["--task-id", "abc"], ["--task-id", "0"], ["--bogus"]])
def test_bad_flags_exit_with_status_two(flag: list[str]):
    proc = run_manage("run_scheduled_tasks", *flag)
    assert proc.returncode == 2
    assert "error:" in proc.stderr


def test_unavailable_database_exits_nonzero_with_a_message():
    proc = run_manage(
        "run_scheduled_tasks",
        env={"DATABASE_URL": "postgres://nobody@127.0.0.1:9/none"},
    )
    assert proc.returncode == 1
    assert "database is not available" in proc.stderr


def test_log_file_gets_a_start_and_an_end_line_and_snippet_log_lines():
    log_file = settings.TEST_LOG_FILE
    size_before = log_file.stat().st_size if log_file.exists() else 0
    task = due_task("logged", "logger.info('snippet says %s', 'hi')")
    call()
    execution = Execution.objects.get(task=task)
    # A byte offset (the file may hold non-ASCII text from earlier tests): slice bytes.
    lines = log_file.read_bytes()[size_before:].decode("utf-8", "replace").splitlines()
    started = [ln for ln in lines if f"execution {execution.pk} started" in ln]
    finished = [ln for ln in lines if f"execution {execution.pk} finished" in ln]
    assert len(started) == 1
    assert f"task {task.pk} 'logged'" in started[0]
    assert len(finished) == 1
    assert "status=completed" in finished[0]
    assert "duration=" in finished[0]
    assert any("snippet says hi" in ln and f"task-{task.pk}" in ln for ln in lines)


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


# Runs until the test says "go" (a ticket appears), at most a minute: the overlap the test
# needs lasts as long as it needs, however slow the machine is.
SLOW_SNIPPET = (
    "start = timezone.now()\n"
    "while not Ticket.objects.filter(title='go').exists():\n"
    "    if (timezone.now() - start).total_seconds() > 60:\n"
    "        break\n"
    "print('slow done')\n"
)


@pytest.mark.slow
def test_overlapping_invocations_never_run_the_same_task_twice():
    task = due_task("slow", SLOW_SNIPPET, timeout_seconds=60)
    first = start_manage("run_scheduled_tasks")
    try:
        wait_for(lambda: Execution.objects.filter(task=task, status="running").exists())
        # Cron fires again while the first run is still going.
        second = run_manage("run_scheduled_tasks", "--verbose")
        assert second.returncode == 0, second.stderr
        assert Execution.objects.filter(task=task).count() == 1
        # Even once the hour has passed, the running task is not started twice.
        ScheduledTask.objects.filter(pk=task.pk).update(next_run_at=timezone.now())
        third = run_manage("run_scheduled_tasks", "--verbose")
        assert "still running; skipped" in third.stdout
    finally:
        make_ticket(title="go")
        first.wait(timeout=60)
    assert first.returncode == 0, first.stderr
    executions = Execution.objects.filter(task=task)
    assert executions.count() == 1
    assert executions.get().status == "completed"
    assert executions.get().output == "slow done\n"


@pytest.mark.slow
def test_simultaneous_runners_share_the_due_tasks_without_duplicates():
    tasks = [due_task(f"t{i}", f"print({i})") for i in range(12)]
    procs = [start_manage("run_scheduled_tasks") for _ in range(3)]
    for proc in procs:
        proc.wait(timeout=120)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    for task in tasks:
        assert Execution.objects.filter(task=task).count() == 1
    assert set(Execution.objects.values_list("status", flat=True)) == {"completed"}
