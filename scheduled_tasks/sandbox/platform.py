"""Where the sandbox can run: it needs POSIX ``fork()`` and resource limits.

Windows has neither; there the scheduler refuses to start with a message naming the supported
ways instead of failing on the first run.
"""

from __future__ import annotations

import os
import sys

SUPPORTED_WAYS = (
    "run TicketProo's scheduler on Linux: on Windows inside WSL 2, or in a Linux container "
    "(e.g. Docker), with the same settings and database"
)


class SandboxUnavailable(RuntimeError):
    """This platform cannot run snippets (no fork or no resource limits)."""


def unsupported_reason(*, platform: str | None = None) -> str | None:
    """Why snippets cannot run here, or None when they can."""
    missing = []
    if not hasattr(os, "fork"):
        missing.append("fork()")
    try:
        import resource  # noqa: F401 - POSIX only
    except ImportError:
        missing.append("resource limits (the resource module)")
    if not missing:
        return None
    return (
        f"The snippet sandbox needs POSIX {' and '.join(missing)}, which this platform "
        f"({platform or sys.platform}) does not have; {SUPPORTED_WAYS}."
    )


def require_supported_platform() -> None:
    """Raise :class:`SandboxUnavailable` with the reason where snippets cannot run."""
    reason = unsupported_reason()
    if reason is not None:
        raise SandboxUnavailable(reason)
