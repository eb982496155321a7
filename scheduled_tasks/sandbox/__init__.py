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
    "SnippetResult",
    "check_code",
    "run_function",
    "run_snippet",
]

Heartbeat = Callable[[], object] | None
Cancel = Callable[[], str | None] | None


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
    )


def run_snippet(
    code: str,
    *,
    timeout: float | None = None,
    label: str = "snippet",
    heartbeat: Heartbeat = None,
    cancel: Cancel = None,
    execution_id: int | None = None,
) -> SnippetResult:
    """Run ``code`` in a fresh child process and return what happened.

    ``timeout`` is wall-clock seconds (default ``SCHEDULED_TASKS["DEFAULT_TIMEOUT_SECONDS"]``);
    ``label`` names the snippet's logger (``scheduled_tasks.snippet.<label>``); its lines
    carry ``label`` and ``execution_id`` in a fixed prefix;
    ``heartbeat`` is called in this process every few seconds while the snippet runs.
    """
    from scheduled_tasks.sandbox.confine import (
        announce_layers,
        confine_snippet_process,
        prepare_in_parent,
    )
    from scheduled_tasks.sandbox.execute import execute_snippet
    from scheduled_tasks.sandbox.isolation import run_in_child
    from scheduled_tasks.sandbox.snippet_logger import log_writer

    announce_layers()
    prepare_in_parent(code)
    outcome = run_in_child(
        lambda channel: execute_snippet(code, channel, label),
        _limits(timeout),
        prepare=confine_snippet_process,
        heartbeat=heartbeat,
        heartbeat_every=conf.get("LEASE_SECONDS") / 3,
        cancel=cancel,
        on_log=log_writer(label, execution_id),
    )
    end_orphaned_session(outcome)
    return _result(outcome)


def end_orphaned_session(outcome: Any) -> None:
    """A child killed mid-run may leave its PostgreSQL session working: end it."""
    if not outcome.clean and outcome.backend_pid is not None:
        from scheduled_tasks.sandbox.dbwall import end_backend

        end_backend(outcome.backend_pid)


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
) -> SnippetResult:
    """Run the registered function ``name(ctx, **params)`` in an isolated child process."""
    from scheduled_tasks.sandbox.execute import execute_function
    from scheduled_tasks.sandbox.isolation import run_in_child
    from scheduled_tasks.sandbox.snippet_logger import log_writer

    outcome = run_in_child(
        lambda channel: execute_function(name, params, now, channel, label),
        _limits(timeout),
        heartbeat=heartbeat,
        heartbeat_every=conf.get("LEASE_SECONDS") / 3,
        cancel=cancel,
        on_log=log_writer(label, execution_id),
    )
    return _result(outcome)
