"""Run a function in a forked child with rlimits, a wall-clock timeout and an output cap.

The parent survives whatever the child does: a crash, a kill, a memory bomb, an endless loop,
and bytes forged by a snippet that escaped the Python layers (it then controls the child
completely). Django is prepared once in the parent; each run is a plain ``fork()`` (a few
milliseconds), not a fresh interpreter.

The child reports through frames (:mod:`.protocol`), prepares itself (:mod:`.childenv`:
descriptors, streams, signals) and leads its own process tree (:mod:`.proctree`). The wall
clock holds after a result: the run is over when the child has sent its result *and* closed
the pipe (or stopped itself, or exited); until then the deadline still applies. The child
never exits by itself: it waits to be killed, so that the parent can find and kill its
descendants first. A frame the parent refuses ends the run ``failed`` with "invalid result
from the sandbox" and the child's tree is killed.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import logging
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scheduled_tasks.sandbox import childenv, proctree

try:
    import resource
except ImportError:  # not POSIX: sandbox/platform.py refuses to run snippets here
    resource = None  # type: ignore[assignment]
from scheduled_tasks.sandbox.proctree import adopt_orphans
from scheduled_tasks.sandbox.protocol import (
    INVALID_RESULT,
    LOG_LIMIT_NOTICE,
    MAX_ERROR_CHARS,
    OutputChannel,
    ProtocolError,
    Reader,
    active_channel,
    clip,
    set_active,
    utf8_prefix,
)

__all__ = [
    "INVALID_RESULT",
    "LOG_LIMIT_NOTICE",
    "MAX_ERROR_CHARS",
    "ChildOutcome",
    "Limits",
    "OutputChannel",
    "active_channel",
    "adopt_orphans",
    "apply_limits",
    "clip",
    "run_in_child",
    "utf8_prefix",
]

log = logging.getLogger("scheduled_tasks.sandbox")

_POLL_SECONDS = 0.5
_SETTLE_POLL_SECONDS = 0.01
_READ_BYTES = 65536

# Old connection objects the child must never close or free (see _forget_inherited_connections).
_KEEP_ALIVE: list[Any] = []


@dataclass(frozen=True)
class Limits:
    timeout: float  # wall-clock seconds
    max_output_bytes: int
    max_memory_mb: int


@dataclass(frozen=True)
class ChildOutcome:
    status: str  # completed / failed / timeout / cancelled
    output: str
    error: str
    output_truncated: bool
    duration: float
    # The child ended by itself after a valid result (False: it was killed mid-way, and a
    # database session of its may still be working for it).
    clean: bool = False
    # The PostgreSQL backend of the child's connection, as it reported before any snippet ran.
    backend_pid: int | None = None


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
    # child open connections of its own on first use. (childenv.close_inherited_fds has closed
    # our copies of their descriptors: that sends nothing, the parent's copies stay open.)
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


def _die_with_parent(parent: int) -> None:
    # If the runner is killed (kill -9), its run must not go on unseen beside the retry that
    # another runner will start once the lease expires.
    proctree.prctl(proctree.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _child_main(
    write_fd: int,
    limits: Limits,
    target: Callable[[OutputChannel], tuple[str, str]],
    parent: int,
    prepare: Callable[[], object] | None = None,
    sqlite: frozenset[str] = frozenset(),
) -> None:
    channel = OutputChannel(write_fd, limits.max_output_bytes)
    try:
        proctree.own_session()
        _die_with_parent(parent)
        channel._fd = childenv.close_inherited_fds(write_fd, sqlite)
        set_active(channel)
        faulthandler.disable()  # a crash is reported to the parent, not dumped on its stderr
        childenv.reset_signals()
        childenv.capture_streams(channel)
        _forget_inherited_connections()
        _limit_statements(limits.timeout)
        _scrub_secrets()
        apply_limits(limits)
        if prepare is not None:
            # Confinement (database wall, secrets, OS layers): after the limits are set, before
            # anything of the snippet runs.
            prepare()
        status, error = target(channel)
        _close_child_connections()
        channel.result(status, error)
    except MemoryError:
        with contextlib.suppress(BaseException):
            channel.result("failed", f"memory limit exceeded ({limits.max_memory_mb} MB)")
    except BaseException as exc:  # the parent must get an answer whatever happened
        with contextlib.suppress(BaseException):
            channel.result("failed", f"sandbox error: {type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(BaseException):
            channel.close()
            childenv.await_end(limits.timeout + 60)
        os._exit(0)  # never run the parent's atexit handlers or flush its buffers


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


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)  # readable once the child has exited (not reaped)
    except (AttributeError, OSError):
        return None


def _settled(pid: int) -> bool:
    """Whether the child has stopped (its end after a result) or exited, without reaping it."""
    flags = os.WEXITED | os.WSTOPPED | os.WNOHANG | os.WNOWAIT
    try:
        return os.waitid(os.P_PID, pid, flags) is not None
    except ChildProcessError:
        return True


def _exited(pid: int) -> bool:
    # Without reaping: the pid stays ours (and its group id unused by others) until waitpid.
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def run_in_child(
    target: Callable[[OutputChannel], tuple[str, str]],
    limits: Limits,
    *,
    heartbeat: Callable[[], object] | None = None,
    heartbeat_every: float = 20.0,
    cancel: Callable[[], str | None] | None = None,
    prepare: Callable[[], object] | None = None,
    on_log: Callable[[int, str], None] | None = None,
) -> ChildOutcome:
    """Fork, run ``target(channel) -> (status, error)`` in the child, and collect the outcome.

    ``prepare`` runs in the child after the rlimits are set and before ``target``: the
    snippet's confinement (untrusted code gets it, registered functions do not).

    ``heartbeat`` is called in the parent every ``heartbeat_every`` seconds while the child
    runs (the runner renews its lease there); its errors are logged, never fatal. ``cancel``
    is asked on every poll; a reason stops the child and the run ends ``cancelled``.
    ``on_log(level, text)`` is called in the parent for each log line of the child (the text
    is the child's: escape it before writing it anywhere).
    """
    sqlite = childenv.sqlite_files()
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    parent = os.getpid()
    # Frozen objects are left alone by the child's garbage collector: it does not touch (and
    # so copy) every page of the runner's heap. The parent unfreezes at once.
    gc.freeze()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        _child_main(write_fd, limits, target, parent, prepare, sqlite)
    gc.unfreeze()
    os.close(write_fd)
    pidfd = _pidfd(pid)
    reader = Reader(limits.max_output_bytes, on_log)
    deadline = started + limits.timeout
    next_beat = started + heartbeat_every
    timed_out = False
    cancelled: str | None = None
    invalid = ""
    exited = eof = False
    try:
        while not (eof or exited):
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
            if reader.result is not None:
                # A result, but the pipe is still open: done once the child stops or exits.
                if _settled(pid):
                    exited = True
                    break
                wait = min(wait, _SETTLE_POLL_SECONDS)
            watched = [read_fd] if pidfd is None else [read_fd, pidfd]
            ready, _, _ = select.select(watched, [], [], wait)
            if read_fd in ready:
                chunk = os.read(read_fd, _READ_BYTES)
                if chunk:
                    reader.feed(chunk)
                else:
                    eof = True  # the child (and every holder of its pipe) closed it
            elif (pidfd is not None and pidfd in ready) or (not ready and _exited(pid)):
                # Gone: take what it wrote before (a descendant may hold the pipe open).
                exited = True
                _drain(read_fd, reader)
        if eof and reader.result is None:
            # Closed without a result: a crash, most likely; let its exit status tell.
            exited = _wait_exit(pid, pidfd, min(1.0, deadline - time.monotonic()))
    except ProtocolError as exc:
        invalid = str(exc)
    finally:
        proctree.end_tree(pid)
        if reader.result is not None and not (invalid or timed_out or cancelled):
            # Killed after its result: the exit status says nothing more, and the kernel's
            # teardown of the child's memory need not hold up the run's answer.
            wait_status = 0
            proctree.reap_later(pid, pidfd)
            pidfd = None  # the reaper owns it now
        else:
            _, wait_status = os.waitpid(pid, 0)
        if proctree.adopting() and proctree.last_pid() != pid:
            proctree.sweep_orphans()
        os.close(read_fd)
        if pidfd is not None:
            os.close(pidfd)
    duration = time.monotonic() - started
    result = reader.result
    truncated = reader.truncated or bool(result and result["truncated"])
    output = reader.text()
    backend = reader.backend_pid
    if invalid:
        log.warning("sandbox child %s sent %s: the run is recorded as failed", pid, invalid)
        return ChildOutcome("failed", output, INVALID_RESULT, truncated, duration, False, backend)
    if timed_out:
        error = f"timed out after {limits.timeout:g} s"
        return ChildOutcome("timeout", output, error, truncated, duration, False, backend)
    if cancelled:
        return ChildOutcome("cancelled", output, cancelled, truncated, duration, False, backend)
    if result is None:
        if exited:
            error = _describe_exit(wait_status, limits)
        else:
            error = "the snippet's process closed its pipe without a result"
        return ChildOutcome("failed", output, error, truncated, duration, False, backend)
    status, error = result["status"], result["error"]
    return ChildOutcome(status, output, error, truncated, duration, True, backend)


def _wait_exit(pid: int, pidfd: int | None, timeout: float) -> bool:
    """Whether the child exits (without reaping it) within ``timeout`` seconds."""
    if pidfd is not None:
        return bool(select.select([pidfd], [], [], max(timeout, 0.0))[0])
    end = time.monotonic() + timeout
    while not _exited(pid):
        if time.monotonic() >= end:
            return False
        time.sleep(0.005)
    return True


def _drain(read_fd: int, reader: Reader) -> None:
    """Read what is in the pipe now, without waiting for more."""
    os.set_blocking(read_fd, False)
    try:
        while True:
            try:
                chunk = os.read(read_fd, _READ_BYTES)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            if not chunk:
                return
            reader.feed(chunk)  # bounded: every accepted frame spends the cap or a budget
    finally:
        os.set_blocking(read_fd, True)
