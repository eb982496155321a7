"""The outcome of one snippet run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

COMPLETED = "completed"
FAILED = "failed"
TIMEOUT = "timeout"


@dataclass(frozen=True)
class SnippetResult:
    status: str  # "completed", "failed" or "timeout"
    output: str
    error: str
    duration: float  # seconds, wall clock, process start to end
    output_truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.status == COMPLETED

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
