"""The Celery backend with real components: the machine's Redis and RabbitMQ servers (and a
private Redis this module starts and restarts), real ``celery -A ticketproo worker``
processes, the test database shared with them. No eager mode: every run here crosses a
broker to another process.

- exactly once under two workers, every message delivered twice (Redis and RabbitMQ);
- a worker killed with SIGKILL mid-run: its run is reaped as abandoned and its retry runs on
  another worker; the slot ends with one completed run;
- a broker restart that loses the queued messages: the claims are handed back when their
  lease runs out and sent again; nothing is lost, nothing runs twice;
- a worker that cannot reach its broker says so in its log, and a scheduler that cannot
  reach it keeps what it claimed until it can send it.

A broker that is not running fails these tests in CI (scripts/test.sh starts them) and skips
them elsewhere.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from scheduled_tasks import runner
from scheduled_tasks.backends import celery as celery_backend
from scheduled_tasks.models import Execution, RunnerHeartbeat, ScheduledTask
from tests.conftest import ROOT, database_url_for_subprocess
from tests.factories import make_task

pytestmark = [pytest.mark.slow, pytest.mark.celery, pytest.mark.django_db(transaction=True)]

LEASE = 3  # seconds: a killed worker's run is reaped within seconds
WAIT = 90.0


def _redis_db() -> int:
    """A Redis database of its own per test worker (1..15), so parallel runs do not meet."""
    return 1 + zlib.crc32(os.environ.get("PYTEST_XDIST_WORKER", "main").encode()) % 15


BROKERS = {
    "redis": f"redis://127.0.0.1:6379/{_redis_db()}",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}


def _reachable(url: str) -> str | None:
    """None if the broker answers, else why not."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:  # kombu's errors vary by transport
        return f"{type(exc).__name__}: {exc}"
    return None


def require_broker(url: str) -> None:
    problem = _reachable(url)
    if problem is None:
        return
    message = f"broker {url.split('@')[-1]} is not running ({problem})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}: scripts/test.sh starts it in CI")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Worker:
    """One ``celery -A ticketproo worker`` process (and its pool) against the test database."""

    def __init__(self, broker: str, queue: str, name: str, *, concurrency: int, log: Path):
        self.log = log
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url_for_subprocess(),
            "CELERY_BROKER_URL": broker,
            "TEST_LEASE_SECONDS": str(LEASE),
        }
        command = [sys.executable, "-m", "celery", "-A", "ticketproo", "worker"]
        command += [f"--queues={queue}", f"--concurrency={concurrency}", "--loglevel=INFO"]
        command += [f"--hostname={name}@%h", "--without-gossip", "--without-mingle"]
        with log.open("w") as out:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the pool and the sandbox children with it
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        wait_until(lambda: " ready." in self.text(), what=f"worker ready:\n{self.text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL to the worker, its pool and their children, at once."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """A warm shutdown (SIGTERM): runs in progress finish, then the processes exit."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_until(predicate: Callable[[], bool], *, timeout: float = WAIT, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def queue(settings: Any) -> str:
    """A queue of this test's own, and the Celery backend with a short lease."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    settings.SCHEDULED_TASKS = {
        **settings.SCHEDULED_TASKS,
        "BACKEND": "celery",
        "CELERY_QUEUE": name,
        "LEASE_SECONDS": LEASE,
    }
    return name


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(broker: str, queue: str, *, concurrency: int = 2, ready: bool = True) -> Worker:
        worker = Worker(
            broker,
            queue,
            f"w{len(started) + 1}-{uuid.uuid4().hex[:6]}",
            concurrency=concurrency,
            log=tmp_path / f"worker-{len(started) + 1}.log",
        )
        started.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.kill()


def use_broker(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """The scheduler side (this process) sends to ``url``."""
    from celery import Celery

    app = Celery("ticketproo-tests")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.broker_url = url
    monkeypatch.setattr(celery_backend, "celery_app", lambda: app)


def dispatch() -> runner.TickReport:
    """One tick of the scheduler at the real time (the workers' clock)."""
    return runner.tick(timezone.now(), runner="scheduler:test")


def due_tasks(count: int, code: str = "print('ran')", **options: Any) -> list[ScheduledTask]:
    anchor = timezone.now() - timedelta(minutes=5)
    return [
        make_task(name=f"job {n:02d}", code=code, anchor=anchor, next_run_at=anchor, **options)
        for n in range(count)
    ]


def statuses() -> list[str]:
    return list(Execution.objects.order_by("pk").values_list("status", flat=True))


# --- exactly once --------------------------------------------------------------------------


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_two_workers_run_every_slot_exactly_once(broker, queue, workers, monkeypatch) -> None:
    url = BROKERS[broker]
    require_broker(url)
    use_broker(monkeypatch, url)
    tasks = due_tasks(12)
    first, second = workers(url, queue), workers(url, queue)

    report = dispatch()
    assert len(report.dispatched) == 12 and report.executions == []
    # Every message a second time (a redelivery, a second scheduler's send): the rows decide.
    celery_backend.CeleryBackend().submit([e.pk for e in report.dispatched])

    wait_until(
        lambda: statuses().count("completed") == 12,
        what=f"12 completed runs, have {statuses()}",
    )
    time.sleep(1.0)  # the duplicates are consumed meanwhile: they must change nothing
    runs = list(Execution.objects.all())
    assert len(runs) == 12 and {r.status for r in runs} == {"completed"}
    assert sorted(r.task_id for r in runs) == sorted(t.pk for t in tasks)
    assert all(r.output == "ran\n" and r.runner.endswith(":worker") for r in runs)
    assert "not a pending claim" in first.text() + second.text()
    for task in tasks:
        task.refresh_from_db()
        assert task.last_status == "completed"

    first.stop()
    second.stop()
    beats = RunnerHeartbeat.objects.filter(kind=RunnerHeartbeat.Mode.WORKER)
    assert beats.count() >= 2  # a beat per pool process
    assert not beats.filter(stopped_at__isnull=True).exists()  # each said it stopped


# --- a worker killed mid-run ---------------------------------------------------------------


LONG_RUN = """
end = timezone.now() + timedelta(seconds=4)
while timezone.now() < end:
    pass
print('finished')
"""


def test_a_run_on_a_killed_worker_is_reaped_and_retried_elsewhere(
    queue, workers, monkeypatch
) -> None:
    url = BROKERS["redis"]
    require_broker(url)
    use_broker(monkeypatch, url)
    (task,) = due_tasks(1, code=LONG_RUN, max_retries=1, retry_backoff_seconds=1)
    doomed = workers(url, queue, concurrency=1)
    (first,) = dispatch().dispatched
    wait_until(
        lambda: Execution.objects.filter(pk=first.pk, status="running").exists(),
        what="the run to start on the first worker",
    )
    doomed.kill()
    workers(url, queue, concurrency=1)

    def retried() -> bool:
        dispatch()  # reaps the dead worker's run once its lease is out, sends the retry
        return Execution.objects.filter(task=task, status="completed").exists()

    wait_until(retried, what=f"the retry to complete, have {statuses()}")
    first.refresh_from_db()
    assert first.status == "abandoned"
    done = Execution.objects.get(task=task, status="completed")
    assert (done.retry_of_id, done.attempt, done.output) == (first.pk, 2, "finished\n")
    assert Execution.objects.filter(task=task).count() == 2


# --- cancel --------------------------------------------------------------------------------


SPIN = """
print('started')
end = timezone.now() + timedelta(seconds=120)
while timezone.now() < end:
    pass
print('not cancelled')
"""


def test_cancel_reaches_a_run_on_a_worker_and_a_queued_one_never_starts(
    queue, workers, monkeypatch
) -> None:
    from scheduled_tasks import cancelling

    url = BROKERS["redis"]
    require_broker(url)
    use_broker(monkeypatch, url)
    running_task, queued_task = due_tasks(2, code=SPIN)
    worker = workers(url, queue, concurrency=1)  # one run at a time: the second waits
    sent = {e.task_id: e for e in dispatch().dispatched}
    wait_until(
        lambda: Execution.objects.filter(status="running").exists(),
        what="one run to start on the worker",
    )
    running = Execution.objects.get(status="running")
    waiting = next(e for e in sent.values() if e.pk != running.pk)
    cancelling.cancel_execution(waiting.pk, user=None, now=timezone.now())
    cancelling.cancel_execution(running.pk, user=None, now=timezone.now())
    # The worker stops the running one within about a second (its task returns "ran"),
    # then takes the next message and finds it cancelled: it never starts.
    wait_until(
        lambda: "'ran'" in worker.text() and "'not a pending claim'" in worker.text(),
        timeout=60,
        what="the worker to stop the run and skip the cancelled one",
    )
    running.refresh_from_db()
    waiting.refresh_from_db()
    assert running.status == waiting.status == "cancelled"
    assert "not cancelled" not in running.output
    assert waiting.started_at is None
    assert {running_task.pk, queued_task.pk} == set(sent)


# --- the broker restarts -------------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A Redis server of this test's own (nothing kept on disk), which it may restart."""
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed: scripts/test.sh installs it in CI")
        pytest.skip("redis-server is not installed")
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> str:
        for old in processes:
            if old.poll() is None:
                old.kill()
                old.wait()
        proc = subprocess.Popen(
            [server, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", tmp_path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(proc)
        url = f"redis://127.0.0.1:{port}/0"
        wait_until(lambda: _reachable(url) is None, timeout=20, what="the private Redis")
        return url

    yield start
    for proc in processes:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_messages_lost_in_a_broker_restart_are_sent_again(
    queue, workers, monkeypatch, private_redis
) -> None:
    url = private_redis()
    use_broker(monkeypatch, url)
    due_tasks(3)
    sent = dispatch().dispatched  # no worker up: the messages wait in the broker ...
    assert len(sent) == 3
    private_redis()  # ... which restarts and forgets them
    workers(url, queue)

    def all_done() -> bool:
        dispatch()  # once the claims' lease is out: handed back, claimed and sent again
        return statuses().count("completed") == 3

    wait_until(all_done, what=f"3 completed runs, have {statuses()}")
    assert sorted(Execution.objects.values_list("pk", flat=True)) == sorted(e.pk for e in sent)


# --- an unreachable broker -----------------------------------------------------------------


def test_an_unreachable_broker_is_logged_and_loses_nothing(queue, workers, monkeypatch) -> None:
    url = BROKERS["redis"]
    require_broker(url)
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    lost = workers(nowhere, queue, ready=False)
    wait_until(
        lambda: "Cannot connect to redis://" in lost.text() and "refused" in lost.text(),
        what="the worker to log that it cannot connect",
    )

    use_broker(monkeypatch, nowhere)
    due_tasks(2)
    report = dispatch()
    assert report.dispatched == [] and len(report.undelivered) == 2
    assert statuses() == ["pending", "pending"]  # claimed, kept, not dropped

    use_broker(monkeypatch, url)
    workers(url, queue)

    def all_done() -> bool:
        dispatch()
        return statuses() == ["completed", "completed"]

    wait_until(all_done, what=f"2 completed runs, have {statuses()}")
