"""The backend seam: claiming apart from executing. With a backend whose workers run the
work, a tick claims due work as ``pending`` under its lease and hands the ids over; a worker
takes a claim with a compare-and-set and runs it; what nobody took is handed back when the
claim's lease runs out and sent again. Nothing here talks to a broker (see
tests/test_celery_workers.py for real workers)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import TestCase

from scheduled_tasks import backends, background, conf, runner, worker
from scheduled_tasks.backends.base import Backend, BackendError
from scheduled_tasks.backends.celery import CeleryBackend, message_priority
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.sandbox import SnippetResult
from tests.factories import MIN, T0, H, S, make_execution, make_task

pytestmark = pytest.mark.django_db

RECORDING = "tests.test_backends.RecordingBackend"


class RecordingBackend(Backend):
    """A queue that only remembers what it was given (a test double of Celery)."""

    name = "recording"
    executes_here = False
    sent: list[int] = []
    refuse = False

    def submit(self, execution_ids: Sequence[int]) -> None:
        if RecordingBackend.refuse:
            raise BackendError("broker unreachable")
        RecordingBackend.sent.extend(execution_ids)


class NotABackend:
    pass


@pytest.fixture
def recording(settings: Any) -> type[RecordingBackend]:
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "BACKEND": RECORDING}
    RecordingBackend.sent = []
    RecordingBackend.refuse = False
    return RecordingBackend


def never_called(*args: object, **kwargs: object) -> SnippetResult:
    raise AssertionError("a dispatching runner must not run anything itself")


def completed(*args: object, **kwargs: object) -> SnippetResult:
    return SnippetResult("completed", "done\n", "", 0.01)


def tick_at(now, **kwargs: Any) -> runner.TickReport:
    return runner.tick(
        now, clock=lambda: now, snippet_executor=never_called, runner="host:1", **kwargs
    )


# --- choosing a backend --------------------------------------------------------------------


def test_the_default_backend_is_inline_and_runs_claims_here() -> None:
    backend = backends.current()
    assert (backend.name, backend.executes_here) == ("inline", True)
    assert conf.get("BACKEND") == "inline"


def test_backends_load_by_name_or_dotted_path() -> None:
    assert isinstance(backends.load("celery"), CeleryBackend)
    assert backends.load(RECORDING).name == "recording"
    with pytest.raises(BackendError, match=r"unknown execution backend 'rabbit'.*celery, inline"):
        backends.load("rabbit")
    with pytest.raises(BackendError, match=r"not a scheduled_tasks\.backends\.base\.Backend"):
        backends.load("tests.test_backends.NotABackend")


def test_a_bad_backend_setting_fails_the_system_checks(settings: Any) -> None:
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "BACKEND": "rabbit"}
    errors = [e for e in run_checks() if e.id == "scheduled_tasks.E060"]
    assert errors and "unknown execution backend 'rabbit'" in errors[0].msg
    settings.SCHEDULED_TASKS = {
        **settings.SCHEDULED_TASKS,
        "BACKEND": "celery",
        "CELERY_APP": "no.such.app",
    }
    errors = [e for e in run_checks() if e.id == "scheduled_tasks.E061"]
    assert errors and "CELERY_APP" in errors[0].msg


# --- a dispatching tick --------------------------------------------------------------------


def test_a_tick_claims_due_slots_for_the_workers_and_runs_nothing(recording) -> None:
    due = [make_task(name=f"due {n}", anchor=T0) for n in range(3)]
    make_task(name="later", anchor=T0 + H)
    report = tick_at(T0 + MIN)
    assert sorted(recording.sent) == sorted(e.pk for e in report.dispatched)
    assert report.executions == [] and len(report.dispatched) == 3
    for execution in Execution.objects.all():
        assert (execution.status, execution.runner, execution.trigger) == (
            "pending",
            "host:1",
            "schedule",
        )
        assert execution.started_at is None
        assert execution.lease_expires_at == T0 + MIN + timedelta(seconds=conf.get("LEASE_SECONDS"))
    for task in due:
        task.refresh_from_db()
        assert task.next_run_at == T0 + H  # the slot is taken: the next tick finds nothing
    assert tick_at(T0 + MIN + 30 * S).dispatched == []  # the claims are held
    assert len(recording.sent) == 3


def test_a_claim_nobody_took_is_handed_back_and_sent_again_once(recording) -> None:
    make_task(name="hourly", anchor=T0)
    first = tick_at(T0 + MIN).dispatched[0]
    lease = timedelta(seconds=conf.get("LEASE_SECONDS"))
    assert tick_at(T0 + MIN + lease - S).dispatched == []  # still held
    again = tick_at(T0 + MIN + lease + S).dispatched
    assert [e.pk for e in again] == [first.pk]  # the same row, claimed and sent again
    assert recording.sent == [first.pk, first.pk]
    assert Execution.objects.count() == 1


def test_a_broker_that_refuses_loses_nothing(recording) -> None:
    make_task(name="hourly", anchor=T0)
    recording.refuse = True
    report = tick_at(T0 + MIN)
    assert report.dispatched == [] and len(report.undelivered) == 1
    claimed = Execution.objects.get()
    assert (claimed.status, claimed.runner) == ("pending", "host:1")
    recording.refuse = False
    lease = timedelta(seconds=conf.get("LEASE_SECONDS"))
    report = tick_at(T0 + MIN + lease + S)
    assert [e.pk for e in report.dispatched] == [claimed.pk] == recording.sent


def test_due_retries_are_sent_to_the_workers_too(recording) -> None:
    task = make_task(name="flaky", anchor=T0 + 10 * H)
    retry = make_execution(task, status="pending", trigger="retry", attempt=2, not_before=T0)
    assert [e.pk for e in tick_at(T0 + MIN).dispatched] == [retry.pk] == recording.sent
    retry.refresh_from_db()
    assert (retry.status, retry.runner) == ("pending", "host:1")
    assert retry.lease_expires_at is not None


def test_the_daemon_does_not_wake_for_runs_claimed_for_the_workers(recording) -> None:
    make_task(name="hourly", anchor=T0)
    tick_at(T0 + MIN)
    assert runner.next_due_at(T0 + MIN) == T0 + H  # the next slot, not the claimed run


def test_run_task_now_hands_the_run_to_the_workers(recording) -> None:
    task = make_task(name="manual", anchor=T0 + H)
    execution = runner.run_task_now(task, now=T0, runner="host:1")
    assert (execution.status, execution.trigger, execution.runner) == (
        "pending",
        "manual",
        "host:1",
    )
    assert recording.sent == [execution.pk]
    with pytest.raises(runner.TaskBusy):  # its max_instances counts the claim
        runner.run_task_now(task, now=T0, runner="host:1")


# --- the worker's side ---------------------------------------------------------------------


def dispatched_run(recording) -> Execution:
    make_task(name="hourly", anchor=T0)
    return tick_at(T0 + MIN).dispatched[0]


def test_a_worker_takes_a_claim_once_and_runs_it(recording) -> None:
    execution = dispatched_run(recording)
    clock = lambda: T0 + 2 * MIN  # noqa: E731
    outcome = worker.run_execution(
        execution.pk, runner_id="w:1", clock=clock, snippet_executor=completed
    )
    assert outcome == worker.RAN
    execution.refresh_from_db()
    assert (execution.status, execution.runner, execution.output) == ("completed", "w:1", "done\n")
    assert execution.started_at == T0 + 2 * MIN
    # The same message delivered again, or to a second worker: nothing happens.
    again = worker.run_execution(
        execution.pk, runner_id="w:2", clock=clock, snippet_executor=never_called
    )
    assert again == worker.NOT_PENDING
    execution.refresh_from_db()
    assert (execution.status, execution.runner) == ("completed", "w:1")


@pytest.mark.parametrize("state", ["cancelled", "handed back", "running elsewhere", "gone"])
def test_a_worker_leaves_what_is_no_longer_a_pending_claim(recording, state: str) -> None:
    execution = dispatched_run(recording)
    rows = Execution.objects.filter(pk=execution.pk)
    if state == "cancelled":
        rows.update(status="cancelled", finished_at=T0 + MIN)
    elif state == "handed back":
        rows.update(runner="", lease_expires_at=None, not_before=T0 + MIN)
    elif state == "running elsewhere":
        rows.update(status="running", runner="w:9", started_at=T0 + MIN)
    else:
        rows.delete()
    outcome = worker.run_execution(execution.pk, runner_id="w:1", snippet_executor=never_called)
    assert outcome == worker.NOT_PENDING


def test_the_celery_task_ignores_a_message_that_is_not_an_execution_id() -> None:
    from scheduled_tasks.tasks import run_execution

    for bad in ("1; DROP TABLE", None, True, -3, 0, 1.5, [1]):
        assert run_execution.run(bad) == "ignored: not an execution id"


# --- Run now -------------------------------------------------------------------------------


class RunNowToWorkers(TestCase):
    """``hand_over`` after the request's commit: on_commit needs a real transaction."""

    def setUp(self) -> None:
        RecordingBackend.sent = []
        RecordingBackend.refuse = False

    def test_run_now_claims_the_run_for_the_workers_and_sends_it(self) -> None:
        task = make_task(name="manual", anchor=T0 + 10 * H)
        with (
            self.settings(SCHEDULED_TASKS={**conf.all_settings(), "BACKEND": RECORDING}),
            self.captureOnCommitCallbacks(execute=True),
        ):
            execution, how = background.queue_run(task, T0)
        assert how == background.BY_WORKERS
        assert RecordingBackend.sent == [execution.pk]
        execution.refresh_from_db()
        assert execution.status == "pending" and execution.runner.endswith(":web")
        assert execution.lease_expires_at is not None

    def test_a_run_now_the_broker_refuses_waits_for_a_runner(self) -> None:
        task = make_task(name="manual", anchor=T0 + 10 * H)
        RecordingBackend.refuse = True
        with (
            self.settings(SCHEDULED_TASKS={**conf.all_settings(), "BACKEND": RECORDING}),
            self.captureOnCommitCallbacks(execute=True),
        ):
            execution, _ = background.queue_run(task, T0)
        execution.refresh_from_db()
        assert execution.status == "pending" and RecordingBackend.sent == []


# --- the Celery backend's messages ---------------------------------------------------------


def test_task_priorities_map_onto_celery_priorities() -> None:
    assert [message_priority(p) for p in (-100, -50, 0, 50, 100)] == [0, 2, 4, 7, 9]
    assert message_priority(500) == 9 and message_priority(-500) == 0


class FakeProducer:
    def __enter__(self) -> FakeProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class FakeApp:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = fail

    def producer_or_acquire(self) -> FakeProducer:
        return FakeProducer()

    def send_task(self, name: str, **options: Any) -> None:
        if self.fail:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        self.sent.append({"name": name, **options})


def test_celery_messages_go_to_the_tasks_queue_at_its_priority(monkeypatch) -> None:
    from scheduled_tasks.backends import celery as celery_backend

    app = FakeApp()
    monkeypatch.setattr(celery_backend, "celery_app", lambda: app)
    urgent = make_task(name="urgent", priority=100, queue="reports")
    plain = make_task(name="plain")
    runs = [make_execution(urgent, status="pending"), make_execution(plain, status="pending")]
    CeleryBackend().submit([r.pk for r in runs])
    sent = {m["args"][0]: m for m in app.sent}
    assert sent[runs[0].pk]["name"] == "scheduled_tasks.run_execution"
    assert (sent[runs[0].pk]["queue"], sent[runs[0].pk]["priority"]) == ("reports", 9)
    assert (sent[runs[1].pk]["queue"], sent[runs[1].pk]["priority"]) == ("scheduled_tasks", 4)


def test_an_unreachable_broker_is_a_backend_error(monkeypatch) -> None:
    from scheduled_tasks.backends import celery as celery_backend

    monkeypatch.setattr(celery_backend, "celery_app", lambda: FakeApp(fail=True))
    run = make_execution(make_task(name="plain"), status="pending")
    with pytest.raises(BackendError, match="the broker did not take the messages"):
        CeleryBackend().submit([run.pk])


def test_a_tasks_queue_name_is_checked() -> None:
    from django.core.exceptions import ValidationError

    task = make_task(name="queued")
    for bad in ("-starts-with-dash", "has space", "semi;colon"):
        task.queue = bad
        with pytest.raises(ValidationError):
            task.full_clean()
    task.queue = "reports.eu-1"
    task.full_clean()
    assert ScheduledTask.objects.filter(queue="").count() == 1


# --- the command ---------------------------------------------------------------------------


# The command runs its monitor thread (heartbeat, checks) on a connection of its own: the
# test's rows must be committed for it, and what it writes cleared after (a flush).
@pytest.mark.django_db(transaction=True)
def test_the_command_says_what_it_sent_to_the_workers(recording, capsys) -> None:
    from django.core.management import call_command
    from django.utils import timezone

    def due(name: str) -> ScheduledTask:
        anchor = timezone.now() - MIN
        return make_task(name=name, anchor=anchor, next_run_at=anchor)

    due("due")
    call_command("run_scheduled_tasks", "--verbose")
    assert "1 run(s) sent to the workers." in capsys.readouterr().out
    task = make_task(name="manual", anchor=timezone.now() + 10 * H)
    call_command("run_scheduled_tasks", "--task-id", str(task.pk))
    out = capsys.readouterr().out
    assert f"task {task.pk} “manual”: run #" in out and "sent to the workers" in out
    recording.refuse = True
    due("later")
    call_command("run_scheduled_tasks", "--verbose")
    out = capsys.readouterr().out
    assert "0 run(s) sent to the workers, 1 not sent (the broker did not answer" in out
