"""The sandbox: RestrictedPython policy -> runtime guards -> vetted namespace -> a forked
process with rlimits and a wall-clock timeout -> an output cap.

Public API: :func:`run_snippet` and :func:`check_code`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from scheduled_tasks import conf
from scheduled_tasks.sandbox.policy import CodeProblem, check_code
from scheduled_tasks.sandbox.result import COMPLETED, FAILED, TIMEOUT, SnippetResult

__all__ = [
    "COMPLETED",
    "FAILED",
    "TIMEOUT",
    "CodeProblem",
    "Heartbeat",
    "SandboxRun",
    "SnippetResult",
    "check_code",
    "run_function",
    "run_snippet",
    "start_function",
    "start_snippet",
]

Heartbeat = Callable[[], object] | None
Cancel = Callable[[], str | None] | None
# Called in this process with each line the run logs (level, text), besides the log file.
LogSink = Callable[[int, str], None] | None


def _log_sink(label: str, execution_id: int | None, on_log: LogSink) -> Callable[[int, str], None]:
    """The run's lines to the log file (``scheduled_tasks.snippet.<label>``), and to ``on_log``."""
    from scheduled_tasks.sandbox.snippet_logger import log_writer

    write = log_writer(label, execution_id)
    if on_log is None:
        return write

    def both(level: int, text: str) -> None:
        try:
            write(level, text)
        finally:
            on_log(level, text)

    return both


def _limits(timeout: float | None) -> Any:
    from scheduled_tasks.sandbox.isolation import Limits
    from scheduled_tasks.sandbox.platform import require_supported_platform

    require_supported_platform()  # before anything of isolation is touched
    return Limits(
        timeout=float(timeout or conf.get("DEFAULT_TIMEOUT_SECONDS")),
        max_output_bytes=conf.get("MAX_OUTPUT_BYTES"),
        max_memory_mb=conf.get("MAX_MEMORY_MB"),
    )


def _result(outcome: Any) -> SnippetResult:
    return SnippetResult(
        status=outcome.status,
        output=outcome.output,
        error=outcome.error,
        duration=outcome.duration,
        output_truncated=outcome.output_truncated,
        startup=outcome.startup,
    )


class SandboxRun:
    """A run started in the sandbox and followed by its caller: a runner's pool selects on
    ``fds()`` of many at once, calls ``advance`` with what was ready, and takes ``result()``
    once it answers True (and makes the next spares when it has nothing else to do:
    :func:`spares.replenish`)."""

    def __init__(self, child: Any, *, snippet: bool) -> None:
        self.child = child
        self._snippet = snippet
        self._result: SnippetResult | None = None

    @property
    def started(self) -> float:
        return self.child.started

    def fds(self) -> list[int]:
        return self.child.fds()

    def wait_hint(self, now: float) -> float:
        return self.child.wait_hint(now)

    def advance(self, ready: Any, now: float) -> bool:
        return self.child.advance(ready, now)

    def cancel(self, reason: str) -> None:
        self.child.cancel(reason)

    def result(self) -> SnippetResult:
        """What happened (the run must be over)."""
        if self._result is None:
            outcome = self.child.outcome
            assert outcome is not None, "the run is not over"
            if self._snippet:
                end_orphaned_session(outcome)
            self._result = _result(outcome)
        return self._result


def start_snippet(
    code: str,
    *,
    timeout: float | None = None,
    label: str = "snippet",
    execution_id: int | None = None,
    on_log: LogSink = None,
) -> SandboxRun:
    """Start ``code`` in a sandbox child (a spare where this thread keeps them) and return at
    once; see :func:`run_snippet` for the arguments."""
    from scheduled_tasks.sandbox import spares
    from scheduled_tasks.sandbox.confine import (
        announce_layers,
        confine_snippet_process,
        prepare_in_parent,
    )
    from scheduled_tasks.sandbox.execute import SnippetJob

    announce_layers()
    limits = _limits(timeout)
    prepare_in_parent(code)
    job = SnippetJob.of(code, label)
    sink = _log_sink(label, execution_id, on_log)
    child = spares.start(job, limits, confine_snippet_process, sink)
    return SandboxRun(child, snippet=True)


def run_snippet(
    code: str,
    *,
    timeout: float | None = None,
    label: str = "snippet",
    heartbeat: Heartbeat = None,
    cancel: Cancel = None,
    execution_id: int | None = None,
    on_log: LogSink = None,
) -> SnippetResult:
    """Run ``code`` in a sandbox child process and return what happened.

    ``timeout`` is wall-clock seconds (default ``SCHEDULED_TASKS["DEFAULT_TIMEOUT_SECONDS"]``);
    ``label`` names the snippet's logger (``scheduled_tasks.snippet.<label>``); its lines
    carry ``label`` and ``execution_id`` in a fixed prefix;
    ``heartbeat`` is called in this process every few seconds while the snippet runs;
    ``cancel`` is asked as often as the run is looked at (at least every half second), and a
    reason it returns stops the run; ``on_log(level, text)`` gets each line the run logs,
    besides the log file.
    """
    run = start_snippet(
        code, timeout=timeout, label=label, execution_id=execution_id, on_log=on_log
    )
    return _follow(run, heartbeat, cancel)


def _follow(run: SandboxRun, heartbeat: Heartbeat, cancel: Cancel) -> SnippetResult:
    from scheduled_tasks.sandbox.childrun import Watch, follow

    follow(run.child, Watch(heartbeat, conf.get("LEASE_SECONDS") / 3, cancel))
    return run.result()


def end_orphaned_session(outcome: Any) -> None:
    """A child killed mid-run may leave its PostgreSQL session working: end it."""
    if not outcome.clean and outcome.backend_pid is not None:
        from scheduled_tasks.sandbox.dbwall import end_backend

        end_backend(outcome.backend_pid)


def start_function(
    name: str,
    params: dict[str, Any],
    *,
    now: datetime,
    timeout: float | None = None,
    label: str = "job",
    execution_id: int | None = None,
    on_log: LogSink = None,
) -> SandboxRun:
    """Start the registered function ``name(ctx, **params)`` in an isolated child process
    (not confined: registered functions are trusted code) and return at once."""
    import time

    from scheduled_tasks.sandbox.childrun import ChildRun
    from scheduled_tasks.sandbox.execute import execute_function
    from scheduled_tasks.sandbox.isolation import fork_child

    limits = _limits(timeout)
    started = time.monotonic()
    pid, read_fd = fork_child(
        limits, lambda channel: execute_function(name, params, now, channel, label), None
    )
    child = ChildRun(pid, read_fd, started, limits, _log_sink(label, execution_id, on_log))
    return SandboxRun(child, snippet=False)


def run_function(
    name: str,
    params: dict[str, Any],
    *,
    now: datetime,
    timeout: float | None = None,
    label: str = "job",
    heartbeat: Heartbeat = None,
    cancel: Cancel = None,
    execution_id: int | None = None,
    on_log: LogSink = None,
) -> SnippetResult:
    """Run the registered function ``name(ctx, **params)`` in an isolated child process (see
    :func:`run_snippet` for the options)."""
    run = start_function(
        name,
        params,
        now=now,
        timeout=timeout,
        label=label,
        execution_id=execution_id,
        on_log=on_log,
    )
    return _follow(run, heartbeat, cancel)
