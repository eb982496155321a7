"""What every execution backend provides."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime


class BackendError(Exception):
    """The backend cannot be used or cannot take the work (bad setting, broker unreachable)."""


class Backend(ABC):
    """Where claimed executions run.

    ``executes_here``: True when the runner that claims work runs it itself (``inline``): the
    runner's pool starts each claim as ``running``. False when other processes run it (a queue
    and its workers): the runner claims work as ``pending`` under its lease and calls
    :meth:`submit`; whoever runs it takes the claim with ``leases.take`` (a compare-and-set,
    so a message delivered twice runs once). A submitted execution nobody takes before the
    claim's lease runs out is handed back and claimed and submitted again by the next tick;
    one that was taken and whose worker died is reaped as abandoned and retried per its task.
    """

    name: str = ""
    executes_here: bool = True

    @abstractmethod
    def submit(self, execution_ids: Sequence[int]) -> None:
        """Hand claimed (``pending``, leased) executions over to be run. May raise
        :class:`BackendError`; what it could not hand over is claimed again later."""

    def check(self) -> list[str]:
        """Problems with this backend's configuration, for ``manage.py check`` (empty: none)."""
        return []

    def status(self, now: datetime) -> dict[str, object]:
        """What health checks report about this backend, with ``ok`` (no secret in it)."""
        return {"name": self.name, "ok": True}
