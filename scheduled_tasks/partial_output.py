"""A running execution's output so far, stored while the run goes on (issue #13).

The parent reads the child's output frames into its ``Reader`` (bounded by
``MAX_OUTPUT_BYTES``, as the final output is). A :class:`PartialOutput` per run stores a
snapshot of it at most every :data:`STORE_EVERY_SECONDS`, and only when it grew: one UPDATE of
the execution's ``output`` guarded by ``status=running``, so it never touches a run that ended,
was cancelled or was reaped. The record written at the run's end (``records.finish``) stays
authoritative. A failure is logged, never raised: the run goes on.
"""

from __future__ import annotations

import codecs
import logging
import math
import time
from collections.abc import Callable

from scheduled_tasks.models import Execution
from scheduled_tasks.records import storable

log = logging.getLogger("scheduled_tasks.runner")

# A run's output is written at most this often while it goes on (SQLite: one writer).
STORE_EVERY_SECONDS = 1.0

# What the snapshot reads: the bytes received so far and whether the cap cut them.
Source = Callable[[], tuple[bytes | bytearray, bool]]


def decoded(data: bytes | bytearray) -> str:
    """``data`` as text, leaving out a character whose bytes have not all arrived yet."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode(bytes(data), final=False)


class PartialOutput:
    """The output of one running execution, stored as it grows (see the module)."""

    def __init__(self, execution_id: int, source: Source) -> None:
        self.execution_id = execution_id
        self._source = source
        self._stored_size = 0
        self._stored_at = -math.inf

    def store(self, now: float | None = None) -> bool:
        """Write the output so far if it grew and the last write is old enough; True if a
        row was written."""
        now = time.monotonic() if now is None else now
        if now - self._stored_at < STORE_EVERY_SECONDS:
            return False
        data, truncated = self._source()
        if len(data) == self._stored_size:
            return False
        self._stored_at = now
        self._stored_size = len(data)
        try:
            return bool(
                Execution.objects.filter(
                    pk=self.execution_id, status=Execution.Status.RUNNING
                ).update(output=storable(decoded(data)), output_truncated=truncated)
            )
        except Exception:
            log.exception("execution %s: its output so far could not be stored", self.execution_id)
            return False


def of_run(execution_id: int, run: object) -> PartialOutput | None:
    """The partial output of a sandbox run (``SandboxRun``: its child's reader), or None for
    a run whose output cannot be read before its end."""
    child = getattr(run, "child", None)
    if child is None or not hasattr(child, "reader"):
        return None

    def source() -> tuple[bytes | bytearray, bool]:
        reader = child.reader  # a spare's fallback child gets a new reader
        return reader.output, reader.truncated

    return PartialOutput(execution_id, source)
