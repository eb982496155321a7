"""The embedded scheduler: one leader among many web processes, takeover, where it starts."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone

from scheduled_tasks import embedded, leader
from scheduled_tasks.embedded import LEASE_NAME, EmbeddedScheduler
from scheduled_tasks.models import Execution, SchedulerLease
from tests.conftest import ROOT, database_url_for_subprocess
from tests.factories import T0, make_task

TTL = 30


class WorkerSpy:
    """Replaces the worker thread: records when it would be started and stopped."""

    def __init__(self, monkeypatch, scheduler: EmbeddedScheduler) -> None:
        self.events: list[str] = []
        monkeypatch.setattr(scheduler, "_ensure_worker", lambda: self.events.append("start"))
        monkeypatch.setattr(scheduler, "_stop_worker", lambda: self.events.append("stop"))


def embedded_at(clock_box: list, holder: str, monkeypatch) -> tuple[EmbeddedScheduler, WorkerSpy]:
    scheduler = EmbeddedScheduler(ttl=TTL, interval=1, holder=holder, clock=lambda: clock_box[0])
    return scheduler, WorkerSpy(monkeypatch, scheduler)


@pytest.mark.django_db
def test_of_two_processes_only_one_leads_and_runs_a_worker(monkeypatch):
    clock = [T0]
    first, first_spy = embedded_at(clock, "web-1", monkeypatch)
    second, second_spy = embedded_at(clock, "web-2", monkeypatch)
    assert first.step(T0)
    assert not second.step(T0)
    assert first.is_leader and not second.is_leader
    assert first_spy.events == ["start"]
    assert second_spy.events == ["stop"]
    # Renewals keep it that way.
    clock[0] = T0 + timedelta(seconds=TTL / 3)
    assert first.step(clock[0])
    assert not second.step(clock[0])
    assert leader.holder_of(LEASE_NAME, clock[0]) == "web-1"


@pytest.mark.django_db
def test_another_process_takes_over_once_a_dead_leaders_lease_expires(monkeypatch):
    clock = [T0]
    dead, _ = embedded_at(clock, "web-1", monkeypatch)
    survivor, spy = embedded_at(clock, "web-2", monkeypatch)
    dead.step(T0)  # ... and then it is killed: no more renewals
    clock[0] = T0 + timedelta(seconds=TTL)
    assert not survivor.step(clock[0])
    clock[0] = T0 + timedelta(seconds=TTL + 1)
    assert survivor.step(clock[0])
    assert spy.events == ["stop", "start"]
    # By its own clock, the old leader knows its lease ran out: its worker stops claiming.
    assert not dead.is_leader


@pytest.mark.django_db
def test_a_leader_whose_lease_was_taken_stops_its_worker(monkeypatch):
    clock = [T0]
    slow, spy = embedded_at(clock, "web-1", monkeypatch)
    slow.step(T0)
    clock[0] = T0 + timedelta(seconds=TTL + 5)  # it failed to renew in time
    assert leader.acquire(LEASE_NAME, "web-2", clock[0], TTL)
    assert not slow.step(clock[0])
    assert spy.events == ["start", "stop"]
    assert not slow.is_leader


@pytest.mark.django_db
def test_a_database_error_keeps_the_lease_only_until_it_runs_out(monkeypatch):
    clock = [T0]
    scheduler, _ = embedded_at(clock, "web-1", monkeypatch)
    scheduler.step(T0)

    def down(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(leader, "renew", down)
    monkeypatch.setattr(leader, "acquire", down)
    clock[0] = T0 + timedelta(seconds=TTL / 3)
    assert scheduler.step(clock[0])  # still ours for two more thirds of the period
    clock[0] = T0 + timedelta(seconds=TTL)
    assert not scheduler.step(clock[0])
    assert not scheduler.is_leader


def test_not_started_unless_enabled():
    assert embedded.start_if_enabled() is None
    assert embedded.current() is None


@pytest.mark.django_db(transaction=True)
def test_start_runs_once_per_process_and_stop_releases_the_lease():
    with override_settings(SCHEDULED_TASKS={"EMBEDDED": True, "LEASE_SECONDS": 5}):
        first = embedded.start_if_enabled()
        try:
            assert first is not None
            assert embedded.start_if_enabled() is first
            assert embedded.current() is first
            deadline = time.monotonic() + 10
            while not first.is_leader and time.monotonic() < deadline:
                time.sleep(0.02)
            assert first.is_leader
            assert SchedulerLease.objects.get(name=LEASE_NAME).holder == first.holder
        finally:
            embedded.stop()
    assert embedded.current() is None
    assert not SchedulerLease.objects.filter(name=LEASE_NAME).exists()


@pytest.mark.django_db
def test_management_commands_never_start_it():
    with override_settings(SCHEDULED_TASKS={"EMBEDDED": True}):
        call_command("check", verbosity=0)
        call_command("migrate", verbosity=0)
        assert embedded.current() is None


# -- real processes -----------------------------------------------------------------------------

SETTINGS = """
from tests.settings import *  # noqa

SCHEDULED_TASKS = {
    **SCHEDULED_TASKS,
    "EMBEDDED": True,
    "LEASE_SECONDS": %(ttl)s,
    "DAEMON_INTERVAL_SECONDS": 1,
}
"""

LEASE_TTL = 2  # seconds: renewals every 2/3 s, takeover within 2 + 2/3 s


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    """Environment for child processes whose settings turn the embedded scheduler on."""
    (tmp_path / "embedded_settings.py").write_text(SETTINGS % {"ttl": LEASE_TTL})
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "embedded_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "DATABASE_URL": database_url_for_subprocess(),
    }


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so the test can end a process and its children together
    )


def end(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    proc.communicate(timeout=30)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        time.sleep(0.05)


def lease_holder_pid() -> int | None:
    holder = leader.holder_of(LEASE_NAME, timezone.now())
    return int(holder.split(":")[1]) if holder else None


def run_of(task) -> Execution | None:
    return Execution.objects.filter(task=task, status="completed").first()


def runner_pid(execution: Execution) -> int:
    return int(execution.runner.rsplit(":", 1)[1])


# A web worker in miniature: import the WSGI module (which starts the embedded scheduler, as
# under gunicorn) and serve nothing.
WEB_WORKER = ["-c", "import time, ticketproo.wsgi; time.sleep(300)"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_of_three_web_workers_exactly_one_schedules_and_another_takes_over_after_kill_9(
    embedded_env,
):
    workers = [spawn(WEB_WORKER, embedded_env) for _ in range(3)]
    pids = {proc.pid for proc in workers}
    try:
        first_pid = wait_for(lease_holder_pid, what="a leader")
        assert first_pid in pids
        before = make_task(name="before", anchor=timezone.now())
        execution = wait_for(lambda: run_of(before), what="a run by the first leader")
        assert runner_pid(execution) == first_pid
        assert SchedulerLease.objects.count() == 1

        leader_proc = next(proc for proc in workers if proc.pid == first_pid)
        killed_at = time.monotonic()
        end(leader_proc)
        second_pid = wait_for(
            lambda: (pid := lease_holder_pid()) and pid != first_pid and pid,
            timeout=LEASE_TTL * 10,
            what="a takeover",
        )
        takeover = time.monotonic() - killed_at
        assert second_pid in pids - {first_pid}
        # A lease period plus one polling period, with room for a slow machine.
        assert takeover < LEASE_TTL * 4 / 3 + 3
        after = make_task(name="after", anchor=timezone.now())
        execution = wait_for(lambda: run_of(after), what="a run by the new leader")
        assert runner_pid(execution) == second_pid
        assert set(Execution.objects.values_list("status", flat=True)) == {"completed"}
        assert Execution.objects.count() == 2
    finally:
        for proc in workers:
            end(proc)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_runserver_schedules_only_in_its_serving_child(embedded_env):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = spawn(["manage.py", "runserver", f"127.0.0.1:{port}"], embedded_env)
    try:
        holder_pid = wait_for(lease_holder_pid, what="a leader")
        assert holder_pid != server.pid  # not the autoreloader's parent ...
        stat = Path(f"/proc/{holder_pid}/stat").read_text()
        assert int(stat.rsplit(")", 1)[1].split()[1]) == server.pid  # ... but its child
        task = make_task(name="served", anchor=timezone.now())
        execution = wait_for(lambda: run_of(task), what="a run")
        assert runner_pid(execution) == holder_pid
    finally:
        end(server, signal.SIGINT)  # Ctrl-C: the child exits cleanly and releases the lease
    assert server.returncode is not None
    assert not SchedulerLease.objects.filter(name=LEASE_NAME).exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_migrate_check_and_shell_never_start_it_but_the_wsgi_module_does(embedded_env):
    probe = (
        "import threading\n"
        "from django.core.management import call_command\n"
        "from scheduled_tasks import embedded\n"
        "call_command('migrate', verbosity=0)\n"
        "call_command('check', verbosity=0)\n"
        "print(embedded.current(), sorted(t.name for t in threading.enumerate()))\n"
    )
    proc = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", probe],
        cwd=ROOT,
        env=embedded_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "None ['MainThread']"
    for command in (["migrate", "--noinput"], ["check"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=embedded_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert not SchedulerLease.objects.exists()

    wsgi = subprocess.run(
        [
            sys.executable,
            "-c",
            "import ticketproo.wsgi as w, scheduled_tasks.embedded as e; "
            "print(e.current() is not None); e.stop()",
        ],
        cwd=ROOT,
        env=embedded_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wsgi.returncode == 0, wsgi.stderr
    assert wsgi.stdout.strip() == "True"
