"""A run's log lines in the database, stored while the run goes on.

The parent receives each line its sandbox child logs (``on_log(level, text)``); a
:class:`LogLines` per execution keeps them in memory, bounded (``MAX_LOG_LINES`` lines, each
cut at :data:`LINE_CHARS` characters), and :func:`store` writes what is pending of many runs in
one ``bulk_create`` when the runner looks at its runs anyway (at most every
:data:`STORE_EVERY_SECONDS` per run) and at each run's end. The text comes from the child, so
it is made storable first (lone surrogates, NUL); the log file gets every line as before.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from django.db import transaction

from scheduled_tasks import conf
from scheduled_tasks.models import ExecutionLogLine
from scheduled_tasks.records import storable
from scheduled_tasks.sandbox.protocol import log_level

log = logging.getLogger("scheduled_tasks.runner")

# The longest line kept; a longer one is cut and ends with CUT_MARK.
LINE_CHARS = 2000
CUT_MARK = "…"
# The last line stored once a run has logged MAX_LOG_LINES lines.
MORE_NOT_STORED = "(… further log lines not stored)"
# A run's pending lines are written at most this often while it goes on (SQLite: one writer).
STORE_EVERY_SECONDS = 1.0


def message(text: str) -> str:
    """``text`` as stored: storable, and cut at :data:`LINE_CHARS` characters (marked)."""
    text = storable(text)
    if len(text) > LINE_CHARS:
        text = text[: LINE_CHARS - len(CUT_MARK)] + CUT_MARK
    return text


class LogLines:
    """The log lines of one execution, gathered as they arrive: ``add`` is the run's extra
    ``on_log``. After ``max_lines`` lines one marker line is kept and the rest dropped."""

    def __init__(
        self, execution_id: int, clock: Callable[[], datetime], max_lines: int | None = None
    ) -> None:
        self.execution_id = execution_id
        self._clock = clock
        self._max_lines = conf.get("MAX_LOG_LINES") if max_lines is None else max_lines
        self._seq = 0
        self._full = False
        self._pending: list[ExecutionLogLine] = []
        self._stored_at = -math.inf

    def add(self, level: int, text: str) -> None:
        if self._full:
            return
        if self._seq >= self._max_lines:
            self._full = True
            level, text = logging.WARNING, MORE_NOT_STORED
        self._seq += 1
        self._pending.append(
            ExecutionLogLine(
                execution_id=self.execution_id,
                seq=self._seq,
                at=self._clock(),
                level=log_level(level),
                message=message(text),
            )
        )

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def due(self, now: float) -> bool:
        """Whether lines wait and the last write of this run's lines is old enough."""
        return self.pending and now - self._stored_at >= STORE_EVERY_SECONDS

    def take(self, now: float) -> list[ExecutionLogLine]:
        lines, self._pending = self._pending, []
        self._stored_at = now
        return lines


def cut_short(lines: list[ExecutionLogLine]) -> bool:
    """Whether a run's stored lines end with the marker: it logged more than was kept."""
    return bool(lines) and lines[-1].message == MORE_NOT_STORED


def store(collectors: Iterable[LogLines | None], *, everything: bool = False) -> int:
    """Write the pending lines of ``collectors`` in one statement: those due (or all, with
    ``everything``: a run's end). A failure is logged, never raised: the run goes on, the
    lines stay in the log file. Returns how many lines were written."""
    now = time.monotonic()
    rows: list[ExecutionLogLine] = []
    for lines in collectors:
        if lines is not None and (lines.due(now) or (everything and lines.pending)):
            rows += lines.take(now)
    if not rows:
        return 0
    try:
        with transaction.atomic():
            ExecutionLogLine.objects.bulk_create(rows)
    except Exception:
        log.exception("%s log line(s) of a run could not be stored", len(rows))
        return 0
    return len(rows)
