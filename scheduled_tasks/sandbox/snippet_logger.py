"""The snippet's ``logger``, and how its lines reach the scheduler's log file.

In the child, :class:`SnippetLogger` writes each line to the run's output and sends it to the
parent as an ``L`` frame (the child may be confined: read-only filesystem, another uid; and
its bytes are not to be trusted). In the parent, :func:`log_writer` writes the lines through
the ``scheduled_tasks.snippet.<label>`` logger, one record per line, escaped so that a line can
neither end early nor pass for one of the runner's, and prefixed with the run it came from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from scheduled_tasks.sandbox import protocol

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, the bidirectional
# overrides and isolates (they reorder what a terminal shows), and lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_line(text: str) -> str:
    """``text`` as one printable line: controls, separators and surrogates as ``\\xNN`` or
    ``\\uNNNN``, and nothing the log file's encoder can refuse."""
    escaped = _UNSAFE.sub(_escape_char, text)
    return escaped.encode("utf-8", errors="backslashreplace").decode("utf-8")


def run_prefix(label: str, execution_id: int | None = None) -> str:
    """The fixed start of every line a run logs: which task (label) and which execution."""
    run = f" execution {execution_id}" if execution_id is not None else ""
    return f"[snippet {escape_line(label)}{run}] "


def log_writer(label: str, execution_id: int | None = None) -> Callable[[int, str], None]:
    """In the parent: ``write(level, text)`` for the lines a run's child sends."""
    logger = logging.getLogger(f"scheduled_tasks.snippet.{label}")
    prefix = run_prefix(label, execution_id)

    def write(level: int, text: str) -> None:
        if logger.isEnabledFor(level):
            logger.log(level, "%s%s", prefix, escape_line(text))

    return write


class SnippetLogger:
    """``logger`` in snippets: lines go to the captured output and to the scheduler's log.

    The log file gets at most ``budget`` bytes per run (the output cap), one line per call
    (controls escaped by the parent, so a snippet cannot forge the runner's lines). Inside a
    sandbox child the lines travel to the parent; elsewhere (a namespace built in-process, in
    tests) they are logged here, escaped the same way.
    """

    __slots__ = ("_budget", "_channel", "_logger", "_prefix", "_sink")

    def __init__(self, sink: Callable[[str], None], label: str, budget: int = 65536) -> None:
        self._sink = sink
        self._channel = protocol.active_channel()
        self._logger = logging.getLogger(f"scheduled_tasks.snippet.{label}")
        self._prefix = run_prefix(label)
        self._budget = budget

    def _log(self, level: int, msg: Any, *args: Any) -> None:
        if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
            text = str(msg) % args[0]  # logging's rule: a single mapping fills %(name)s fields
        else:
            text = str(msg) % args if args else str(msg)
        self._sink(f"[{logging.getLevelName(level)}] {text}\n")
        if self._channel is not None:
            self._channel.log(level, text)
            return
        if self._budget <= 0:
            return
        line = escape_line(text)
        self._budget -= len(line.encode("utf-8"))
        if self._budget <= 0:
            level, line = logging.WARNING, protocol.LOG_LIMIT_NOTICE
        self._logger.log(level, "%s%s", self._prefix, line)

    def debug(self, msg: Any, *args: Any) -> None:
        self._log(logging.DEBUG, msg, *args)

    def info(self, msg: Any, *args: Any) -> None:
        self._log(logging.INFO, msg, *args)

    def warning(self, msg: Any, *args: Any) -> None:
        self._log(logging.WARNING, msg, *args)

    def error(self, msg: Any, *args: Any) -> None:
        self._log(logging.ERROR, msg, *args)

    def critical(self, msg: Any, *args: Any) -> None:
        self._log(logging.CRITICAL, msg, *args)

    exception = error
    warn = warning
