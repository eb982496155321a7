"""The outcome of one snippet run."""

from __future__ import annotations

from dataclasses import dataclass

COMPLETED = "completed"
FAILED = "failed"
TIMEOUT = "timeout"


@dataclass(frozen=True)
class SnippetResult:
    status: str  # "completed", "failed" or "timeout"
    output: str
    error: str
    duration: float  # seconds, wall clock, from the start of the run (the fork) to its end
    output_truncated: bool = False
    # Seconds of ``duration`` before the run's own code began (fork, set-up, confinement).
    startup: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == COMPLETED
