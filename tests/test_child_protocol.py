"""The parent does not trust the child: frames, results, the deadline, the process tree, fds.

Each target plays a snippet that escaped the Python layers: it owns the child and writes
whatever bytes it likes to the result pipe.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import time

import pytest

from scheduled_tasks.sandbox import proctree
from scheduled_tasks.sandbox.isolation import Limits, OutputChannel, run_in_child
from scheduled_tasks.sandbox.protocol import (
    INVALID_RESULT,
    MAX_ERROR_CHARS,
    MAX_RESULT_BYTES,
    ProtocolError,
    Reader,
)
from tests.conftest import ROOT

LIMITS = Limits(timeout=5, max_output_bytes=1000, max_memory_mb=128)
SHORT = Limits(timeout=0.5, max_output_bytes=1000, max_memory_mb=128)


def frame(kind: bytes, payload: bytes, length: int | None = None) -> bytes:
    return struct.pack("!cI", kind, len(payload) if length is None else length) + payload


def raw(channel: OutputChannel, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(channel._fd, view) :]


def result(**fields) -> bytes:
    return frame(b"R", json.dumps(fields).encode())


def forging(data: bytes, then_sleep: float = 30.0):
    """A target that sends ``data`` and then lingers (the parent must not wait for it)."""

    def target(channel: OutputChannel) -> tuple[str, str]:
        raw(channel, data)
        time.sleep(then_sleep)
        return "completed", ""

    return target


def is_gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for init to reap it."""
    info = proctree.proc_stat(pid)
    return info is None or info[1] in b"ZX"


# -- frames -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(frame(b"O", b"x" * 1001), id="output-frame-over-the-cap"),
        pytest.param(frame(b"O", b"x" * 600) + frame(b"O", b"y" * 401), id="output-over-the-rest"),
        pytest.param(frame(b"O", b"", length=2**32 - 1), id="output-header-claims-4-GiB"),
        pytest.param(frame(b"R", b"", length=MAX_RESULT_BYTES + 1), id="result-over-64-KiB"),
        pytest.param(frame(b"Z", b"hello"), id="unknown-kind"),
        pytest.param(frame(b"O", b""), id="empty-output-frame"),
        pytest.param(frame(b"T", b"") + frame(b"T", b""), id="truncated-twice"),
        pytest.param(frame(b"T", b"x"), id="truncated-with-payload"),
        pytest.param(frame(b"L", b"\x07line"), id="log-line-of-an-unknown-level"),
        pytest.param(frame(b"L", b"\x14" + b"x" * 1000), id="log-line-over-the-budget"),
        pytest.param(frame(b"L", b"\x00more"), id="log-limit-frame-with-text"),
    ],
)
def test_a_frame_outside_its_bounds_fails_the_run_and_kills_the_child(data: bytes):
    started = time.monotonic()
    outcome = run_in_child(forging(data), LIMITS)
    assert (outcome.status, outcome.error) == ("failed", INVALID_RESULT)
    assert time.monotonic() - started < LIMITS.timeout  # not left to run out its time


def test_the_reader_refuses_an_oversized_frame_from_its_header_alone():
    reader = Reader(1000)
    with pytest.raises(ProtocolError):
        reader.feed(struct.pack("!cI", b"O", 10**9))
    assert len(reader.output) == 0


def test_a_partial_frame_is_never_buffered_beyond_its_checked_length():
    reader = Reader(1000)
    reader.feed(frame(b"O", b"abc", length=500))  # 3 of 500 announced bytes
    assert bytes(reader.output) == b"abc" and reader.busy
    reader.feed(b"d" * 497)
    assert len(reader.output) == 500 and not reader.busy
    with pytest.raises(ProtocolError):
        reader.feed(frame(b"O", b"e" * 501))  # more than what is left of the cap


def test_frames_split_at_every_byte_are_reassembled():
    data = (
        frame(b"O", "héllo ".encode())
        + frame(b"T", b"")
        + result(status="completed", error="", truncated=True)
    )
    reader = Reader(1000)
    for i in range(len(data)):
        reader.feed(data[i : i + 1])
    assert reader.text() == "héllo "
    assert reader.truncated
    assert reader.result == {"status": "completed", "error": "", "truncated": True}


def test_a_partial_frame_then_silence_times_out_without_growing():
    outcome = run_in_child(forging(frame(b"O", b"abc", length=900)), SHORT)
    assert outcome.status == "timeout"
    assert outcome.output == "abc"


# -- the result ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[1, 2]", id="a-list"),
        pytest.param(b"\xff\xfe", id="bad-bytes"),
        pytest.param(b"[" * 50000 + b"]" * 50000, id="deeply-nested"),
        pytest.param(json.dumps({"status": "timeout", "error": "", "truncated": False}).encode(),
                     id="claims-timeout"),
        pytest.param(json.dumps({"status": "cancelled", "error": "", "truncated": False}).encode(),
                     id="claims-cancelled"),
        pytest.param(json.dumps({"status": "abandoned", "error": "", "truncated": False}).encode(),
                     id="claims-abandoned"),
        pytest.param(json.dumps({"status": "completed", "error": 3, "truncated": False}).encode(),
                     id="error-not-a-string"),
        pytest.param(json.dumps({"status": "completed", "error": "", "truncated": 1}).encode(),
                     id="truncated-not-a-bool"),
        pytest.param(json.dumps({"status": "completed", "error": ""}).encode(),
                     id="a-field-missing"),
        pytest.param(json.dumps({"status": "completed", "error": "", "truncated": False,
                                 "output": "forged"}).encode(), id="an-extra-field"),
        pytest.param(json.dumps({"status": ["completed"], "error": "", "truncated": False})
                     .encode(), id="status-not-a-string"),
    ],
)  # fmt: skip
def test_a_malformed_result_records_the_run_as_failed(payload: bytes):
    outcome = run_in_child(forging(frame(b"R", payload)), LIMITS)
    assert (outcome.status, outcome.error) == ("failed", INVALID_RESULT)


def test_a_long_error_in_the_result_is_clipped():
    def target(channel: OutputChannel) -> tuple[str, str]:
        raw(channel, result(status="failed", error="e" * 40000, truncated=False))
        os._exit(0)

    outcome = run_in_child(target, LIMITS)
    assert outcome.status == "failed"
    assert len(outcome.error) <= MAX_ERROR_CHARS
    assert "characters cut" in outcome.error


def test_data_after_the_result_fails_the_run():
    def target(channel: OutputChannel) -> tuple[str, str]:
        raw(channel, result(status="completed", error="", truncated=False))
        channel.write("more after the result\n")
        return "completed", ""

    outcome = run_in_child(target, LIMITS)
    assert (outcome.status, outcome.error) == ("failed", INVALID_RESULT)


def test_data_after_the_result_fails_the_run_when_the_child_stops_first(monkeypatch):
    # The parent read the forged result alone, and by its next look the child had written
    # more and stopped: what is in the pipe is still read (a race a loaded machine won).
    from scheduled_tasks.sandbox import childrun

    def settled_once_stopped(pid: int) -> bool:
        os.waitid(os.P_PID, pid, os.WSTOPPED | os.WEXITED | os.WNOWAIT)
        return True

    monkeypatch.setattr(childrun, "_settled", settled_once_stopped)

    def target(channel: OutputChannel) -> tuple[str, str]:
        raw(channel, result(status="completed", error="", truncated=False))
        time.sleep(0.3)  # the parent reads the first result alone meanwhile
        channel.write("more after the result\n")
        return "completed", ""

    outcome = run_in_child(target, LIMITS)
    assert (outcome.status, outcome.error) == ("failed", INVALID_RESULT)


def test_a_forged_early_result_does_not_stop_the_clock():
    # The snippet claims success at once and runs on past its timeout: the parent waits for
    # the child to close its pipe or exit, up to the deadline, and records a timeout.
    outcome = run_in_child(
        forging(result(status="completed", error="", truncated=False), then_sleep=30), SHORT
    )
    assert outcome.status == "timeout"
    assert outcome.error == "timed out after 0.5 s"


def test_a_child_that_exits_right_after_a_valid_result_is_believed():
    def target(channel: OutputChannel) -> tuple[str, str]:
        channel.write("done\n")
        raw(channel, result(status="completed", error="", truncated=False))
        os._exit(0)

    outcome = run_in_child(target, LIMITS)
    assert (outcome.status, outcome.output) == ("completed", "done\n")


# -- the process tree ---------------------------------------------------------------------------


def spawn_detached(channel: OutputChannel, *, double_fork: bool = False) -> None:
    """Start a descendant in a session of its own that would sleep for a minute; report its
    pid in the output."""
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        os.setsid()
        if double_fork and os.fork() != 0:
            os._exit(0)  # the grandchild's child is orphaned: re-parented to the subreaper
        os.write(write, f"{os.getpid()}\n".encode())
        os.close(write)
        time.sleep(60)
        os._exit(0)
    os.close(write)
    pid = b""
    while not pid.endswith(b"\n"):
        pid += os.read(read, 32)
    channel.write(pid.decode())


@pytest.mark.parametrize("double_fork", [False, True], ids=["setsid", "setsid-double-fork"])
def test_descendants_in_their_own_session_die_when_the_run_ends_normally(double_fork: bool):
    def target(channel: OutputChannel) -> tuple[str, str]:
        spawn_detached(channel, double_fork=double_fork)
        return "completed", ""

    outcome = run_in_child(target, LIMITS)
    assert outcome.status == "completed", outcome.error
    assert is_gone(int(outcome.output))


def test_descendants_die_when_the_run_times_out():
    def target(channel: OutputChannel) -> tuple[str, str]:
        spawn_detached(channel)
        if os.fork() == 0:  # one more in the child's own group
            time.sleep(60)
            os._exit(0)
        time.sleep(60)
        return "completed", ""

    outcome = run_in_child(target, SHORT)
    assert outcome.status == "timeout"
    assert is_gone(int(outcome.output))


def test_descendants_die_when_the_result_is_invalid():
    def target(channel: OutputChannel) -> tuple[str, str]:
        spawn_detached(channel)
        raw(channel, frame(b"Z", b""))
        time.sleep(60)
        return "completed", ""

    outcome = run_in_child(target, LIMITS)
    assert (outcome.status, outcome.error) == ("failed", INVALID_RESULT)
    assert is_gone(int(outcome.output))


def test_the_child_is_its_own_session_leader_and_a_subreaper():
    def target(channel: OutputChannel) -> tuple[str, str]:
        channel.write(f"{os.getsid(0) == os.getpid()} {os.getpgrp() == os.getpid()}\n")
        return "completed", ""

    assert run_in_child(target, LIMITS).output == "True True\n"


def test_no_process_and_no_zombie_is_left_behind():
    def target(channel: OutputChannel) -> tuple[str, str]:
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            channel.write(f"{pid}\n")
        return "completed", ""

    before = proctree.live_descendants(os.getpid())
    outcome = run_in_child(target, LIMITS)
    assert outcome.status == "completed"
    assert all(is_gone(int(pid)) for pid in outcome.output.split())
    # The child was killed once it answered; it finishes exiting and is reaped in the
    # background: within moments nothing of it is left, neither a process nor a zombie.
    # (Processes other tests left behind may come and go meanwhile: only new ones count.)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (new_descendants(before) or zombies_of(os.getpid())):
        time.sleep(0.01)
    assert new_descendants(before) == []
    assert zombies_of(os.getpid()) == []


def new_descendants(before: list[int]) -> list[int]:
    return sorted(set(proctree.live_descendants(os.getpid())) - set(before))


def zombies_of(pid: int) -> list[int]:
    return [
        kid
        for kid in proctree._direct_children(pid)
        if (info := proctree.proc_stat(kid)) is not None and info[1] == b"Z"
    ]


# -- file descriptors ---------------------------------------------------------------------------


def test_the_child_keeps_only_its_pipe_stdio_on_dev_null_and_database_files():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    other_read, other_write = os.pipe()

    def target(channel: OutputChannel) -> tuple[str, str]:
        fds = {}
        for entry in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # the directory listing's own fd
                fds[int(entry)] = os.readlink(f"/proc/self/fd/{entry}")
        channel.write(json.dumps({"fds": fds, "pipe": channel._fd}))
        return "completed", ""

    try:
        outcome = run_in_child(target, LIMITS)
    finally:
        listener.close()
        os.close(other_read)
        os.close(other_write)
    data = json.loads(outcome.output)
    fds = {int(k): v for k, v in data["fds"].items()}
    assert [fds[0], fds[1], fds[2]] == ["/dev/null"] * 3
    assert fds[data["pipe"]].startswith("pipe:")
    others = {fd: path for fd, path in fds.items() if fd > 2 and fd != data["pipe"]}
    assert all(
        path.endswith((".sqlite3", ".sqlite3-wal", ".sqlite3-shm", ".sqlite3-journal"))
        for path in others.values()
    ), others


EXITS_FIRST_SCRIPT = """
import json, os, subprocess, sys, time, django
django.setup()
from scheduled_tasks.sandbox import isolation, proctree
from scheduled_tasks.sandbox.isolation import Limits, run_in_child

def target(channel):
    read, write = os.pipe()
    if os.fork() == 0:
        os.setsid()
        os.write(write, f"{os.getpid()}\\n".encode())
        time.sleep(30)
        os._exit(0)
    channel.write(os.read(read, 32).decode())
    os._exit(0)  # the child goes first: its descendant is re-parented

adopting = sys.argv[1] == "adopt" and isolation.adopt_orphans()
own = subprocess.Popen(["sleep", "30"])  # the runner's own child: must survive a sweep
outcome = run_in_child(target, Limits(timeout=5, max_output_bytes=100, max_memory_mb=128))
pid = int(outcome.output)
info = proctree.proc_stat(pid)
gone = info is None or info[1] in b"ZX"
alive = own.poll() is None
own.kill()
if not gone:
    os.kill(pid, 9)
print(json.dumps({"adopting": adopting, "gone": gone, "own_child_alive": alive}))
"""


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["adopt", "plain"])
def test_a_child_that_exits_first_leaves_nothing_when_the_runner_adopts_orphans(mode: str):
    # run_scheduled_tasks adopts orphans (the runner is a subreaper); a process that is not
    # only a runner (web, tests) does not, and there a child that exits before its detached
    # descendant hides it: the OS layers (no fork under seccomp) close that gap.
    from tests.test_runner_streams import subprocess_env

    proc = subprocess.run(
        [sys.executable, "-c", EXITS_FIRST_SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=subprocess_env(),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["own_child_alive"] is True
    assert report["gone"] is (mode == "adopt")


# -- the backend frame --------------------------------------------------------------------------


def test_a_backend_frame_is_believed_only_as_the_first_frame():
    reader = Reader(100)
    reader.feed(b"B" + (4).to_bytes(4, "big") + (4242).to_bytes(4, "big"))
    assert reader.backend_pid == 4242
    late = Reader(100)
    late.feed(b"O\x00\x00\x00\x01x")
    with pytest.raises(ProtocolError):
        late.feed(b"B" + (4).to_bytes(4, "big") + (1).to_bytes(4, "big"))
    with pytest.raises(ProtocolError):
        Reader(100).feed(b"B" + (8).to_bytes(4, "big") + bytes(8))
    twice = Reader(100)
    twice.feed(b"B" + (4).to_bytes(4, "big") + (7).to_bytes(4, "big"))
    with pytest.raises(ProtocolError):
        twice.feed(b"B" + (4).to_bytes(4, "big") + (8).to_bytes(4, "big"))
