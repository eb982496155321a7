"""The wire between a sandbox child and its parent.

Frames of ``kind (1 byte) + length (4 bytes) + payload``, child to parent:

- ``O`` output text (UTF-8) as it is produced, so a timeout still keeps what was printed;
- ``T`` the output was cut at the cap (empty payload, once);
- ``L`` one log line: a level byte (10..50; 0 = "the log budget is spent") + UTF-8 text;
- ``R`` the final JSON result ``{"status", "error", "truncated"}``, once, last;
- ``B`` the PostgreSQL backend pid of the child's connection (4 bytes), sent while the child is
  still ours (before any snippet code runs): accepted only as the very first frame, once, so
  that the parent can end that session if it has to kill the child.

:class:`OutputChannel` is the child's end. :class:`Reader` is the parent's, and trusts none of
it: a frame's header is checked before its payload is read (kind known, length within what is
left of the output cap, the log budget, or :data:`MAX_RESULT_BYTES`), so the parent never holds
more than the cap, one log or result frame and one read; the result is checked field by field
(:func:`validate_result`); a child may only claim ``completed`` or ``failed`` — ``timeout`` and
``cancelled`` are the parent's verdicts. Anything else raises :class:`ProtocolError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("scheduled_tasks.sandbox")

_HEADER = struct.Struct("!cI")
_PID = struct.Struct("!I")
_MOMENT = struct.Struct("!d")
MAX_ERROR_CHARS = 8000
# The result is three small fields; the error is clipped to MAX_ERROR_CHARS (at most 6 bytes a
# character once JSON-escaped, i.e. 48 000 bytes) before it is sent.
MAX_RESULT_BYTES = 64 * 1024
_READ_BYTES = 65536
INVALID_RESULT = "invalid result from the sandbox"
CHILD_STATUSES = frozenset({"completed", "failed"})
LOG_LEVELS = frozenset({logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, 50})
LOG_LIMIT_LEVEL = 0  # an L frame with this level and no text: the child's log budget is spent
LOG_LIMIT_NOTICE = "(log limit reached: further lines of this run go to its output only)"

# In the child: the run's channel (the snippet's logger and the captured streams use it).
_ACTIVE: OutputChannel | None = None


class OutputChannel:
    """The child's end: sends output (up to the cap), log lines (up to the log budget), and the
    result."""

    def __init__(self, fd: int, max_bytes: int, log_budget: int | None = None) -> None:
        self._fd = fd
        self._left = max_bytes
        self._log_left = max_bytes if log_budget is None else log_budget
        self.truncated = False

    def _send(self, kind: bytes, payload: bytes) -> None:
        data = _HEADER.pack(kind, len(payload)) + payload
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def write(self, text: str) -> None:
        if self._left <= 0:
            self._mark_truncated()
            return
        data = text.encode("utf-8", errors="replace")
        cut = len(data) > self._left
        if cut:
            data = utf8_prefix(data, self._left)
        self._left -= len(data)
        if data:
            self._send(b"O", data)
        if cut:
            self._mark_truncated()

    def log(self, level: int, text: str) -> None:
        """One line for the scheduler's log file, written by the parent."""
        if self._log_left <= 0:
            return
        payload = bytes([log_level(level)]) + text.encode("utf-8", errors="backslashreplace")
        if len(payload) > self._log_left:
            self._log_left = 0
            self._send(b"L", bytes([LOG_LIMIT_LEVEL]))
            return
        self._log_left -= len(payload)
        self._send(b"L", payload)

    def _mark_truncated(self) -> None:
        # Told at once, so the parent knows even if the run then times out.
        if not self.truncated:
            self.truncated = True
            self._send(b"T", b"")

    def backend(self, pid: int) -> None:
        """Tell the parent which database session is ours (first frame, before the snippet)."""
        self._send(b"B", _PID.pack(pid))

    def job_started(self) -> None:
        """Tell the parent the target starts now (before the snippet's code runs)."""
        self._send(b"G", _MOMENT.pack(time.monotonic()))

    def set_cap(self, max_bytes: int) -> None:
        """The run's output cap and log budget, for a spare that learns them with its job."""
        self._left = self._log_left = max_bytes

    def result(self, status: str, error: str) -> None:
        payload = {"status": status, "error": clip(error), "truncated": self.truncated}
        self._send(b"R", json.dumps(payload).encode())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def active_channel() -> OutputChannel | None:
    """The channel of the run this process is the child of (None outside a sandbox child)."""
    return _ACTIVE


def set_active(channel: OutputChannel | None) -> None:
    global _ACTIVE
    _ACTIVE = channel


def log_level(level: int) -> int:
    """A level the wire carries: the standard level at or below ``level`` (DEBUG at least)."""
    for standard in (50, logging.ERROR, logging.WARNING, logging.INFO):
        if level >= standard:
            return standard
    return logging.DEBUG


def utf8_prefix(data: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes of ``data`` without splitting a character."""
    return data[:limit].decode("utf-8", errors="ignore").encode("utf-8")


def clip(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Keep the start and the end (where the exception itself is) of a long error."""
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head - 40
    return f"{text[:head]}\n... ({len(text) - head - tail} characters cut) ...\n{text[-tail:]}"


class ProtocolError(Exception):
    """The child sent something a well-behaved child never sends."""


class Reader:
    """The parent's end: parses frames as they arrive and trusts nothing.

    A frame's header is checked before its payload is accepted: output frames must fit in
    what is left of the cap (their bytes go straight into ``output``), log lines in what is
    left of the log budget, the result in :data:`MAX_RESULT_BYTES`. Memory held: the output
    (at most the cap), one log or result frame being assembled, and one read.
    """

    def __init__(
        self,
        max_bytes: int,
        on_log: Callable[[int, str], None] | None = None,
        log_budget: int | None = None,
    ) -> None:
        self.output = bytearray()
        self.max_bytes = max_bytes
        self.log_left = max_bytes if log_budget is None else log_budget
        self.on_log = on_log
        self.truncated = False
        self.result: dict[str, Any] | None = None
        self.backend_pid: int | None = None
        self.job_started = False
        self.job_started_at: float | None = None  # the child's monotonic clock
        self._frames = 0
        self._backend_frames = 0
        self._header = bytearray()
        self._kind: bytes | None = None
        self._left = 0  # payload bytes still to come for the current frame
        self._payload = bytearray()

    @property
    def busy(self) -> bool:
        """In the middle of a frame."""
        return self._kind is not None or bool(self._header)

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            if self._kind is None:
                need = _HEADER.size - len(self._header)
                self._header += view[:need]
                view = view[need:]
                if len(self._header) < _HEADER.size:
                    return
                kind, length = _HEADER.unpack(self._header)
                self._header.clear()
                self._start(kind, length)
                if length == 0:
                    self._finish()
                continue
            take = view[: self._left]
            view = view[len(take) :]
            self._left -= len(take)
            if self._kind == b"O":
                self.output += take
            else:
                self._payload += take
            if self._left == 0:
                self._finish()

    def _start(self, kind: bytes, length: int) -> None:
        if self.result is not None:
            raise ProtocolError("data after the result")
        self._frames += 1
        if kind == b"B":
            # Only the child's own code sends it, before the snippet runs: the first frame.
            if self._frames != 1 or length != _PID.size:
                raise ProtocolError("a backend frame that is not the first")
            self._backend_frames = 1
        elif kind == b"G":
            if length != _MOMENT.size or self._frames != 1 + self._backend_frames:
                raise ProtocolError("a bad job-start frame")
        elif kind == b"O":
            if not 0 < length <= self.max_bytes - len(self.output):
                raise ProtocolError(f"an output frame of {length} bytes")
        elif kind == b"T":
            if length or self.truncated:
                raise ProtocolError("a bad truncation frame")
        elif kind == b"L":
            if not 0 < length <= self.log_left:
                raise ProtocolError(f"a log frame of {length} bytes")
            self.log_left -= length
        elif kind == b"R":
            if not 0 < length <= MAX_RESULT_BYTES:
                raise ProtocolError(f"a result frame of {length} bytes")
        else:
            raise ProtocolError(f"an unknown frame kind {kind!r}")
        self._kind, self._left = kind, length

    def _finish(self) -> None:
        kind, payload = self._kind, bytes(self._payload)
        self._kind = None
        self._payload.clear()
        if kind == b"T":
            self.truncated = True
        elif kind == b"G":
            self.job_started = True
            self.job_started_at = _MOMENT.unpack(payload)[0]
        elif kind == b"B":
            self.backend_pid = _PID.unpack(payload)[0] or None
        elif kind == b"L":
            self._log_line(payload)
        elif kind == b"R":
            self.result = validate_result(payload)

    def _log_line(self, payload: bytes) -> None:
        level, text = payload[0], payload[1:].decode("utf-8", errors="replace")
        if level == LOG_LIMIT_LEVEL:
            if text:
                raise ProtocolError("a bad log limit frame")
            self.log_left = 0
            level, text = logging.WARNING, LOG_LIMIT_NOTICE
        elif level not in LOG_LEVELS:
            raise ProtocolError(f"a log line of level {level}")
        if self.on_log is not None:
            try:
                self.on_log(level, text)
            except Exception:
                log.exception("a snippet's log line could not be written")

    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")


def validate_result(payload: bytes) -> dict[str, Any]:
    """The child's result, checked: exactly status (completed/failed), error (str), truncated
    (bool). Raises :class:`ProtocolError`."""
    try:
        result = json.loads(payload)
    except Exception:  # ValueError, RecursionError: whatever the bytes were
        raise ProtocolError("a result that is not JSON") from None
    if not isinstance(result, dict) or set(result) != {"status", "error", "truncated"}:
        raise ProtocolError("a result with the wrong fields")
    status, error, truncated = result["status"], result["error"], result["truncated"]
    if type(status) is not str or status not in CHILD_STATUSES:
        raise ProtocolError("a status the child may not claim")
    if type(error) is not str or type(truncated) is not bool:
        raise ProtocolError("a result field of the wrong type")
    return {"status": status, "error": clip(error), "truncated": truncated}
