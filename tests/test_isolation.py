"""The isolation layer: the parent survives whatever the child does."""

from __future__ import annotations

import os
import signal

from scheduled_tasks.sandbox.isolation import Limits, OutputChannel, run_in_child

LIMITS = Limits(timeout=5, max_output_bytes=1000, max_memory_mb=128)


def test_normal_result_and_streamed_output():
    def target(channel: OutputChannel) -> tuple[str, str]:
        channel.write("one\n")
        channel.write("two\n")
        return "completed", ""

    outcome = run_in_child(target, LIMITS)
    assert (outcome.status, outcome.output, outcome.error) == ("completed", "one\ntwo\n", "")


def test_segfault_is_recorded_as_failed_with_the_signal():
    def target(channel: OutputChannel) -> tuple[str, str]:
        channel.write("before crash\n")
        os.kill(os.getpid(), signal.SIGSEGV)
        return "completed", ""

    outcome = run_in_child(target, LIMITS)
    assert outcome.status == "failed"
    assert "SIGSEGV" in outcome.error
    assert outcome.output == "before crash\n"


def test_abrupt_exit_is_recorded_as_failed():
    def target(channel: OutputChannel) -> tuple[str, str]:
        os._exit(3)

    outcome = run_in_child(target, LIMITS)
    assert outcome.status == "failed"
    assert "exit status 3" in outcome.error


def test_killed_child_is_recorded_as_failed():
    def target(channel: OutputChannel) -> tuple[str, str]:
        os.kill(os.getpid(), signal.SIGKILL)
        return "completed", ""

    outcome = run_in_child(target, LIMITS)
    assert outcome.status == "failed"
    assert "SIGKILL" in outcome.error


def test_cpu_limit_ends_a_busy_child_that_ignores_the_clock():
    def target(channel: OutputChannel) -> tuple[str, str]:
        while True:
            pass

    outcome = run_in_child(target, Limits(timeout=1, max_output_bytes=100, max_memory_mb=64))
    assert outcome.status in {"timeout", "failed"}


def test_memory_limit_raises_memory_error_in_the_child_only():
    def target(channel: OutputChannel) -> tuple[str, str]:
        blob = bytearray(512 * 1024 * 1024)
        return "completed", str(len(blob))

    outcome = run_in_child(target, LIMITS)
    assert outcome.status == "failed"
    assert outcome.error == "memory limit exceeded (128 MB)"


def test_output_cap_is_enforced_by_the_child_and_flagged():
    def target(channel: OutputChannel) -> tuple[str, str]:
        for _ in range(500):
            channel.write("0123456789")
        return "completed", ""

    outcome = run_in_child(target, LIMITS)
    assert len(outcome.output) == 1000
    assert outcome.output_truncated is True


def test_exception_in_the_child_becomes_a_failed_result():
    def target(channel: OutputChannel) -> tuple[str, str]:
        raise RuntimeError("sandbox bug")

    outcome = run_in_child(target, LIMITS)
    assert outcome.status == "failed"
    assert "RuntimeError: sandbox bug" in outcome.error


def test_signals_sent_to_the_parent_group_do_not_reach_the_result():
    # A child that exits cleanly after its result leaves no zombie behind.
    def target(channel: OutputChannel) -> tuple[str, str]:
        return "completed", ""

    for _ in range(5):
        assert run_in_child(target, LIMITS).status == "completed"
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pid = 0
    assert pid == 0
