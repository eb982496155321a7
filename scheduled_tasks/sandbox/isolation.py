"""Run a function in a forked child with rlimits, a wall-clock timeout and an output cap.

The parent survives whatever the child does: a crash, a kill, a memory bomb, an endless loop.
Django is prepared once in the parent; each run is a plain ``fork()`` (a few milliseconds),
not a fresh interpreter.

Wire format from child to parent: frames of ``kind (1 byte) + length (4 bytes) + payload``,
``O`` for output text as it is produced (so a timeout still keeps what was printed) and
``R`` for the final JSON result.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import json
import logging
import os
import resource
import select
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("scheduled_tasks.sandbox")

_HEADER = struct.Struct("!cI")
_POLL_SECONDS = 0.5
MAX_ERROR_CHARS = 8000

# Old connection objects the child must never close or free (see _forget_inherited_connections).
_KEEP_ALIVE: list[Any] = []


@dataclass(frozen=True)
class Limits:
    timeout: float  # wall-clock seconds
    max_output_bytes: int
    max_memory_mb: int


@dataclass(frozen=True)
class ChildOutcome:
    status: str  # completed / failed / timeout
    output: str
    error: str
    output_truncated: bool
    duration: float


class OutputChannel:
    """The child's end: sends output (up to the cap) and the result."""

    def __init__(self, fd: int, max_bytes: int) -> None:
        self._fd = fd
        self._left = max_bytes
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

    def _mark_truncated(self) -> None:
        # Told at once, so the parent knows even if the run then times out.
        if not self.truncated:
            self.truncated = True
            self._send(b"T", b"")

    def result(self, status: str, error: str) -> None:
        payload = {"status": status, "error": clip(error), "truncated": self.truncated}
        self._send(b"R", json.dumps(payload).encode())


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


def _vm_size_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def apply_limits(limits: Limits) -> None:
    """rlimits for the child: address space (on top of what is already mapped), CPU, no cores."""
    memory = limits.max_memory_mb * 1024 * 1024 + _vm_size_bytes()
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(limits.timeout) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _forget_inherited_connections() -> None:
    # The parent's database sockets are shared with us after fork. Closing them here would send
    # PostgreSQL a Terminate on the parent's session, so drop the wrappers' references without
    # closing, keep the objects alive (freeing a libpq connection also closes it), and let the
    # child open connections of its own on first use.
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.connection is not None:
            _KEEP_ALIVE.append(conn.connection)
        conn.connection = None
        conn.in_atomic_block = False
        conn.savepoint_ids = []
        conn.atomic_blocks = []
        conn.needs_rollback = False
        conn.closed_in_transaction = False
        conn.run_on_commit = []


def _limit_statements(timeout: float) -> None:
    # A killed child does not stop its query on the PostgreSQL server: bound it there too.
    from django.db import connections

    for alias in connections:
        conn = connections[alias]
        if conn.vendor == "postgresql":
            options = dict(conn.settings_dict.get("OPTIONS") or {})
            extra = f"-c statement_timeout={int(timeout * 1000)}"
            options["options"] = f"{options.get('options', '')} {extra}".strip()
            conn.settings_dict["OPTIONS"] = options


def _scrub_secrets() -> None:
    # Defence in depth: nothing in the child needs these once Django is configured.
    from django.conf import settings

    for name in ("SECRET_KEY", "DATABASE_URL"):
        os.environ.pop(name, None)
    if settings.configured:
        settings.SECRET_KEY = "<not available in the sandbox>"  # noqa: S105
        settings.SECRET_KEY_FALLBACKS = []


def _close_child_connections() -> None:
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.connection not in _KEEP_ALIVE:
            with contextlib.suppress(Exception):  # the process is about to exit anyway
                conn.close()


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    # If the runner is killed (kill -9), its run must not go on unseen beside the retry that
    # another runner will start once the lease expires.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _child_main(
    write_fd: int,
    limits: Limits,
    target: Callable[[OutputChannel], tuple[str, str]],
    parent: int,
) -> None:
    channel = OutputChannel(write_fd, limits.max_output_bytes)
    try:
        _die_with_parent(parent)
        faulthandler.disable()  # a crash is reported to the parent, not dumped on its stderr
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        # Ctrl-C reaches the whole process group; the parent decides whether the run stops.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _forget_inherited_connections()
        _limit_statements(limits.timeout)
        _scrub_secrets()
        apply_limits(limits)
        status, error = target(channel)
        _close_child_connections()
        channel.result(status, error)
    except MemoryError:
        channel.result("failed", f"memory limit exceeded ({limits.max_memory_mb} MB)")
    except BaseException as exc:  # the parent must get an answer whatever happened
        with contextlib.suppress(BaseException):
            channel.result("failed", f"sandbox error: {type(exc).__name__}: {exc}")
    finally:
        os._exit(0)  # never run the parent's atexit handlers or flush its buffers


class _Reader:
    """The parent's end: collects frames, enforcing the output cap again."""

    def __init__(self, max_bytes: int) -> None:
        self.buffer = bytearray()
        self.output = bytearray()
        self.max_bytes = max_bytes
        self.truncated = False
        self.result: dict[str, Any] | None = None

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk
        while len(self.buffer) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(self.buffer)
            if len(self.buffer) < _HEADER.size + length:
                return
            payload = bytes(self.buffer[_HEADER.size : _HEADER.size + length])
            del self.buffer[: _HEADER.size + length]
            if kind == b"O":
                room = self.max_bytes - len(self.output)
                if len(payload) > room:
                    self.truncated = True
                    payload = utf8_prefix(payload, max(room, 0))
                self.output += payload
            elif kind == b"T":
                self.truncated = True
            elif kind == b"R":
                self.result = json.loads(payload)

    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")


def _describe_exit(wait_status: int, limits: Limits) -> str:
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        if sig == signal.SIGXCPU:
            return f"CPU time limit exceeded ({int(limits.timeout) + 1} s)"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"the snippet's process was killed by {name}"
    code = os.waitstatus_to_exitcode(wait_status)
    return f"the snippet's process ended unexpectedly (exit status {code})"


def run_in_child(
    target: Callable[[OutputChannel], tuple[str, str]],
    limits: Limits,
    *,
    heartbeat: Callable[[], object] | None = None,
    heartbeat_every: float = 20.0,
    cancel: Callable[[], str | None] | None = None,
) -> ChildOutcome:
    """Fork, run ``target(channel) -> (status, error)`` in the child, and collect the outcome.

    ``heartbeat`` is called in the parent every ``heartbeat_every`` seconds while the child
    runs (the runner renews its lease there); its errors are logged, never fatal. ``cancel``
    is asked on every poll; a reason stops the child and the run ends ``cancelled``.
    """
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        _child_main(write_fd, limits, target, parent)
    os.close(write_fd)
    reader = _Reader(limits.max_output_bytes)
    deadline = started + limits.timeout
    next_beat = started + heartbeat_every
    timed_out = False
    cancelled: str | None = None
    wait_status: int | None = None
    try:
        while reader.result is None:
            current = time.monotonic()
            remaining = deadline - current
            if remaining <= 0:
                timed_out = True
                break
            if heartbeat is not None and current >= next_beat:
                next_beat = current + heartbeat_every
                try:
                    heartbeat()
                except Exception:
                    log.exception("heartbeat failed; the run goes on")
            if cancel is not None:
                cancelled = cancel()
                if cancelled:
                    break
            wait = min(remaining, _POLL_SECONDS, max(next_beat - current, 0.0))
            ready, _, _ = select.select([read_fd], [], [], wait)
            if ready:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    break  # EOF: the child is gone
                reader.feed(chunk)
            else:
                # A sibling fork may hold our pipe open, so EOF alone is not enough.
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    wait_status = status
                    break
    finally:
        if timed_out or reader.result is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if wait_status is None:
            _, wait_status = os.waitpid(pid, 0)
        os.close(read_fd)
    duration = time.monotonic() - started
    truncated = reader.truncated or bool(reader.result and reader.result.get("truncated"))
    if timed_out:
        error = f"timed out after {limits.timeout:g} s"
        return ChildOutcome("timeout", reader.text(), error, truncated, duration)
    if cancelled and reader.result is None:
        return ChildOutcome("cancelled", reader.text(), cancelled, truncated, duration)
    if reader.result is None:
        error = _describe_exit(wait_status, limits)
        return ChildOutcome("failed", reader.text(), error, truncated, duration)
    status = reader.result.get("status", "failed")
    return ChildOutcome(status, reader.text(), reader.result.get("error", ""), truncated, duration)
