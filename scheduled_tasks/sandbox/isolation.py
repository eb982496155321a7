"""Run a function in a forked child with rlimits, a wall-clock timeout and an output cap.

The parent survives whatever the child does: a crash, a kill, a memory bomb, an endless loop,
and bytes forged by a snippet that escaped the Python layers (it then controls the child
completely). Django is prepared once in the parent; each run is a plain ``fork()`` (a few
milliseconds), not a fresh interpreter.

This module is the child's side and the fork. The child reports through frames
(:mod:`.protocol`), prepares itself (:mod:`.childenv`: descriptors, streams, signals) and leads
its own process tree (:mod:`.proctree`); it never exits by itself: it waits to be killed, so
that the parent can find and kill its descendants first. The parent follows it with a
:class:`~.childrun.ChildRun`.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import logging
import os
import pickle
import signal
import time
from collections.abc import Callable
from typing import Any

from scheduled_tasks.db import forkgate
from scheduled_tasks.sandbox import childenv, proctree
from scheduled_tasks.sandbox.childrun import ChildOutcome, ChildRun, Limits, Watch, follow

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
    "ChildRun",
    "Limits",
    "OutputChannel",
    "active_channel",
    "adopt_orphans",
    "apply_limits",
    "clip",
    "fork_child",
    "run_in_child",
    "utf8_prefix",
]

log = logging.getLogger("scheduled_tasks.sandbox")

_READ_BYTES = 65536

# Old connection objects the child must never close or free (see _forget_inherited_connections).
_KEEP_ALIVE: list[Any] = []


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
    target: Callable[[OutputChannel], tuple[str, str]] | None,
    parent: int,
    prepare: Callable[[], object] | None = None,
    sqlite: frozenset[str] = frozenset(),
    job_fd: int | None = None,
) -> None:
    """The child: set up, confine (``prepare``), run ``target``, report, wait to be killed.

    A spare (``job_fd`` given, no target) is set up and confined ahead of time, then waits for
    its job (:func:`_await_job`): the run's limits and target, sent by the parent.
    """
    channel = OutputChannel(write_fd, limits.max_output_bytes)
    try:
        proctree.own_session()
        _die_with_parent(parent)
        if job_fd is not None and job_fd <= 2:  # the parent ran with fds 0-2 closed
            job_fd = childenv.dup_above(job_fd, 3)
        channel._fd = childenv.close_inherited_fds(write_fd, sqlite, job_fd)
        set_active(channel)
        faulthandler.disable()  # a crash is reported to the parent, not dumped on its stderr
        childenv.reset_signals()
        childenv.capture_streams(channel)
        _forget_inherited_connections()
        if job_fd is None:
            _limit_statements(limits.timeout)
        _scrub_secrets()
        if job_fd is None:
            apply_limits(limits)
        if prepare is not None:
            # Confinement (database wall, secrets, OS layers): after the limits are set, before
            # anything of the snippet runs.
            prepare()
        if job_fd is not None:
            limits, target = _await_job(job_fd, channel)
        assert target is not None
        channel.job_started()  # the run's code starts now (a spare: it took its job)
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


# A spare that cannot take its job (its database session was lost meanwhile: a server restart,
# an idle timeout) exits with this status before it says it started; the job is then run in a
# fresh child instead.
STALE_EXIT = 75


def _await_job(
    job_fd: int, channel: OutputChannel
) -> tuple[Limits, Callable[[OutputChannel], tuple[str, str]]]:
    """A spare's job: read it whole (the parent closes the pipe after it), apply its limits,
    check the database session (exit :data:`STALE_EXIT` if it is lost)."""
    chunks = []
    while chunk := os.read(job_fd, _READ_BYTES):
        chunks.append(chunk)
    os.close(job_fd)
    if not chunks:  # discarded unused: end the database session politely
        _close_child_connections()
        os._exit(0)
    # The parent's own bytes, written before any snippet code ran in this process.
    limits, target = pickle.loads(b"".join(chunks))  # noqa: S301
    channel.set_cap(limits.max_output_bytes)
    apply_limits(limits)  # lowering limits needs no privilege, after the OS layers too
    if not _statement_timeout(limits.timeout):
        os._exit(STALE_EXIT)
    return limits, target


def _statement_timeout(timeout: float) -> bool:
    """Bound the spare's open PostgreSQL session's statements (the cold path sets it when it
    connects); False when that session is lost."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.vendor == "postgresql" and conn.connection is not None:
            try:
                with conn.cursor() as cursor:
                    cursor.execute(
                        "SELECT set_config('statement_timeout', %s, false)",
                        [str(int(timeout * 1000))],
                    )
            except Exception:
                return False
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
    started = time.monotonic()
    pid, read_fd = fork_child(limits, target, prepare)
    run = ChildRun(pid, read_fd, started, limits, on_log)
    return follow(run, Watch(heartbeat, heartbeat_every, cancel))


def fork_child(
    limits: Limits,
    target: Callable[[OutputChannel], tuple[str, str]] | None,
    prepare: Callable[[], object] | None,
    job_fd: int | None = None,
) -> tuple[int, int]:
    """Fork a child (a spare when ``job_fd`` is given); returns its pid and the read end of
    its frames."""
    sqlite = childenv.sqlite_files()
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    # Frozen objects are left alone by the child's garbage collector: it does not touch (and
    # so copy) every page of the runner's heap. The parent unfreezes at once.
    gc.freeze()
    pid = forkgate.fork()  # never while another thread is inside SQLite
    if pid == 0:  # child
        os.close(read_fd)
        _child_main(write_fd, limits, target, parent, prepare, sqlite, job_fd)
    proctree.CHILDREN.add(pid)
    gc.unfreeze()
    os.close(write_fd)
    return pid, read_fd
