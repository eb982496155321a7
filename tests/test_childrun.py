"""The parent's side of a run (sandbox/childrun.py), advanced by hand as a pool does."""

from __future__ import annotations

import time

from scheduled_tasks.sandbox.childrun import ChildRun, Limits
from scheduled_tasks.sandbox.isolation import OutputChannel, fork_child

LIMITS = Limits(timeout=0.5, max_output_bytes=1000, max_memory_mb=256)


def quick(channel: OutputChannel) -> tuple[str, str]:
    channel.write("done\n")
    return "completed", ""


def endless(channel: OutputChannel) -> tuple[str, str]:
    channel.write("started\n")
    while True:
        pass


def follow_late(target) -> ChildRun:
    started = time.monotonic()
    pid, read_fd = fork_child(LIMITS, target, None)
    run = ChildRun(pid, read_fd, started, LIMITS)
    time.sleep(0.8)  # the parent is away (busy elsewhere) past the run's deadline
    run.advance(set(), time.monotonic())
    assert run.done
    return run


def test_a_child_that_finished_while_the_parent_was_away_completed():
    run = follow_late(quick)
    assert (run.outcome.status, run.outcome.output) == ("completed", "done\n")


def test_a_child_still_running_at_the_deadline_timed_out():
    run = follow_late(endless)
    assert run.outcome.status == "timeout"
    assert run.outcome.output == "started\n"  # what it printed is kept
