"""Spare children: forked and confined before their run, used once, never trusted more than a
fresh child (sandbox/spares.py)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from scheduled_tasks.sandbox import confine, run_snippet, spares
from scheduled_tasks.sandbox.isolation import STALE_EXIT, Limits, OutputChannel, Watch
from scheduled_tasks.sandbox.protocol import OutputChannel as Channel
from scheduled_tasks.sandbox.protocol import ProtocolError, Reader
from tests.test_confine import escaped

pytestmark = pytest.mark.django_db(transaction=True)

LIMITS = Limits(timeout=10, max_output_bytes=100_000, max_memory_mb=256)
WATCH = Watch()


def no_confinement() -> None:
    """For tests of the mechanism: a child that may write the marker files below."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] not in b"ZX"
    except OSError:  # reaped meanwhile
        return False


def warm_run(code: str, **options):
    """A snippet run as the daemon does it: then, with nothing else to do, the next spare."""
    result = run_snippet(code, **options)
    spares.replenish()
    return result


def the_spare() -> int:
    (pid,) = spares.live_pids()
    return pid


class Marker:
    """A picklable target that counts its runs in a file and prints its pid."""

    def __init__(self, path: Path, exit_status: int | None = None) -> None:
        self.path, self.exit_status = str(path), exit_status

    def __call__(self, channel: OutputChannel) -> tuple[str, str]:
        with open(self.path, "a") as f:
            f.write("ran\n")
        channel.write(f"{os.getpid()}\n")
        if self.exit_status is not None:
            os._exit(self.exit_status)
        return "completed", ""


def runs(path: Path) -> int:
    return path.read_text().count("ran") if path.exists() else 0


def test_the_next_run_takes_the_spare_and_a_new_one_is_made(tmp_path):
    marker = tmp_path / "runs"
    with spares.kept_warm():
        first = spares.run(Marker(marker), LIMITS, WATCH, no_confinement)
        spare = the_spare()
        second = spares.run(Marker(marker), LIMITS, WATCH, no_confinement)
        assert second.status == "completed"
        assert int(second.output) == spare  # the spare ran it
        assert int(first.output) != spare
        assert the_spare() != spare  # and a new one waits
    assert spares.live_pids() == []
    assert runs(marker) == 2


def test_without_kept_warm_no_spare_is_made():
    result = run_snippet("print(1)")
    assert result.output == "1\n"
    assert spares.live_pids() == []


def test_snippets_run_alike_in_a_spare_and_in_a_fresh_child():
    code = "x = 1\nprint('hi', x)\nlogger.info('noted')\ny = x / 0\n"
    cold = run_snippet(code, timeout=10)
    with spares.kept_warm():
        warm_run("pass", timeout=10)
        warm = warm_run(code, timeout=10)
    for result in (cold, warm):
        assert result.status == "failed"
        assert "Line 4" in result.error and "ZeroDivisionError" in result.error
    assert (warm.output, warm.error) == (cold.output, cold.error)


def test_an_escaped_snippet_finds_every_layer_closed_in_a_spare(django_user_model):
    django_user_model.objects.create_user("alice", password="alice-pw")
    with spares.kept_warm():
        spares.run(escaped, LIMITS, WATCH, confine.confine_snippet_process)
        spare = the_spare()
        outcome = spares.run(escaped, LIMITS, WATCH, confine.confine_snippet_process)
    assert outcome.status == "completed", outcome.error
    assert not _alive(spare)
    report = json.loads(outcome.output)
    assert report.pop("ticket_titles").startswith("done")
    assert report.pop("secret_key") == "<not available in the sandbox>"
    report.pop("read_database_file")
    assert all(value.startswith("refused") for value in report.values()), report


def test_the_runs_limits_reach_the_spare():
    with spares.kept_warm():
        warm_run("pass", timeout=10)
        timed = warm_run("while True:\n    pass\n", timeout=1)
        warm_run("pass", timeout=10)
        big = warm_run("x = 'a' * (600 * 1024 * 1024)\n", timeout=10)
    assert timed.status == "timeout"
    assert 1 <= timed.duration < 5  # counted from the job, not from the spare's fork
    assert big.status == "failed" and "memory limit exceeded" in big.error


def test_changed_settings_send_the_old_spare_away():
    with spares.kept_warm():
        warm_run("pass", timeout=10)
        old = the_spare()
        config = {**settings.SCHEDULED_TASKS, "MAX_OUTPUT_BYTES": 10}
        with override_settings(SCHEDULED_TASKS=config):
            result = warm_run("print('x' * 100)", timeout=10)
        assert not _alive(old)
    assert result.output == "x" * 10 and result.output_truncated


def test_an_old_spare_is_replaced(monkeypatch):
    with spares.kept_warm():
        warm_run("pass", timeout=10)
        old = the_spare()
        monkeypatch.setattr(spares, "MAX_AGE_SECONDS", 0.0)
        assert warm_run("print(2)", timeout=10).output == "2\n"
        assert not _alive(old)


def test_a_spare_killed_while_waiting_leaves_its_job_to_a_fresh_child(tmp_path):
    marker = tmp_path / "runs"
    with spares.kept_warm():
        spares.run(Marker(marker), LIMITS, WATCH, no_confinement)
        spare = the_spare()
        os.kill(spare, signal.SIGKILL)
        outcome = spares.run(Marker(marker), LIMITS, WATCH, no_confinement)
    assert outcome.status == "completed"
    assert int(outcome.output) != spare
    assert runs(marker) == 2  # once each: the job was not run twice


def test_a_spare_that_exits_stale_before_its_job_started_is_replaced(tmp_path, monkeypatch):
    from scheduled_tasks.sandbox import isolation

    marker = tmp_path / "runs"
    with spares.kept_warm():
        # The spare forked from here finds its database session lost when the job comes.
        monkeypatch.setattr(isolation, "_statement_timeout", lambda timeout: False)
        spares.run(Marker(marker), LIMITS, WATCH, no_confinement)
        spare = the_spare()
        monkeypatch.undo()
        outcome = spares.run(Marker(marker), LIMITS, WATCH, no_confinement)
    assert outcome.status == "completed"
    assert int(outcome.output) != spare
    assert runs(marker) == 2


def test_a_snippet_that_fakes_the_stale_exit_is_not_run_again(tmp_path):
    # After the job started (G), whatever the child does is the run's: an escaped snippet
    # exiting with the stale status must not get a second run.
    marker = tmp_path / "runs"
    with spares.kept_warm():
        spares.run(Marker(tmp_path / "first"), LIMITS, WATCH, no_confinement)
        outcome = spares.run(Marker(marker, STALE_EXIT), LIMITS, WATCH, no_confinement)
    assert outcome.status == "failed"
    assert f"exit status {STALE_EXIT}" in outcome.error
    assert runs(marker) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL sessions")
def test_a_spare_whose_database_session_was_ended_hands_its_job_over(caplog):
    with spares.kept_warm():
        warm_run("pass", timeout=10)
        spare = the_spare()
        role = settings.SANDBOX_TEST_ROLE
        ended: list = []
        deadline = time.monotonic() + 10
        while not ended and time.monotonic() < deadline:  # the spare connects as it prepares
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE usename = %s AND datname = current_database()",
                    [role],
                )
                ended = cursor.fetchall()
            time.sleep(0.01)
        assert ended == [(True,)]  # the spare's session, the only one of the sandbox role
        with caplog.at_level("INFO", logger="scheduled_tasks.sandbox"):
            result = warm_run("print(Ticket.objects.count())", timeout=10)
        assert not _alive(spare)
    assert f"spare sandbox child {spare} could not take its job" in caplog.text
    assert result.status == "completed", result.error
    assert result.output == "0\n"


def test_discard_all_ends_every_spare():
    with spares.kept_warm():
        warm_run("pass", timeout=10)
        spare = the_spare()
        spares.discard_all()
        assert spares.live_pids() == []
        assert not _alive(spare)
        assert warm_run("print(3)", timeout=10).output == "3\n"


# -- the G frame -----------------------------------------------------------------------------


def frames(*sends: str) -> bytes:
    read_fd, write_fd = os.pipe()
    channel = Channel(write_fd, 1000)
    for send in sends:
        if send == "B":
            channel.backend(4242)
        elif send == "G":
            channel.job_started()
        elif send == "O":
            channel.write("out")
    channel.close()
    data = os.read(read_fd, 65536)
    os.close(read_fd)
    return data


@pytest.mark.parametrize("sends", [("G",), ("B", "G"), ("G", "O"), ("B", "G", "O")])
def test_the_job_start_frame_is_accepted_first_or_after_the_backend(sends):
    reader = Reader(1000)
    reader.feed(frames(*sends))
    assert reader.job_started


@pytest.mark.parametrize("sends", [("O", "G"), ("G", "G"), ("B", "O", "G")])
def test_a_job_start_frame_anywhere_else_is_refused(sends):
    with pytest.raises(ProtocolError):
        Reader(1000).feed(frames(*sends))


def test_spares_sent_away_by_another_thread_are_skipped_not_used_or_closed_twice():
    import threading

    with spares.kept_warm():
        warm_run("pass", timeout=10)
        spare = the_spare()
        # At exit, discard_all runs in the main thread while a scheduler thread still lists
        # its spares: that thread must neither use nor close them again.
        other = threading.Thread(target=spares.discard_all)
        other.start()
        other.join()
        assert not _alive(spare)
        result = warm_run("print(4)", timeout=10)
        assert result.output == "4\n" and result.status == "completed"
    assert spares.live_pids() == []
