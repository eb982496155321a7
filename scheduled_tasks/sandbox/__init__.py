"""The sandbox: RestrictedPython policy -> runtime guards -> vetted namespace -> a forked
process with rlimits and a wall-clock timeout -> an output cap.

Public API: :func:`run_snippet` and :func:`check_code`.
"""

from __future__ import annotations

from scheduled_tasks import conf
from scheduled_tasks.sandbox.policy import CodeProblem, check_code
from scheduled_tasks.sandbox.result import COMPLETED, FAILED, TIMEOUT, SnippetResult

__all__ = [
    "COMPLETED",
    "FAILED",
    "TIMEOUT",
    "CodeProblem",
    "SnippetResult",
    "check_code",
    "run_snippet",
]


def run_snippet(
    code: str, *, timeout: float | None = None, label: str = "snippet"
) -> SnippetResult:
    """Run ``code`` in a fresh child process and return what happened.

    ``timeout`` is wall-clock seconds (default ``SCHEDULED_TASKS["DEFAULT_TIMEOUT_SECONDS"]``);
    ``label`` names the snippet's logger (``scheduled_tasks.snippet.<label>``).
    """
    from scheduled_tasks.sandbox.execute import execute_snippet
    from scheduled_tasks.sandbox.isolation import Limits, run_in_child

    limits = Limits(
        timeout=float(timeout or conf.get("DEFAULT_TIMEOUT_SECONDS")),
        max_output_bytes=conf.get("MAX_OUTPUT_BYTES"),
        max_memory_mb=conf.get("MAX_MEMORY_MB"),
    )
    outcome = run_in_child(lambda channel: execute_snippet(code, channel, label), limits)
    return SnippetResult(
        status=outcome.status,
        output=outcome.output,
        error=outcome.error,
        duration=outcome.duration,
        output_truncated=outcome.output_truncated,
    )
