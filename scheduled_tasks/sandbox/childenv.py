"""What a sandbox child does to itself before the target runs: descriptors, streams, signals.

Python-level writes (``sys.stdout``/``sys.stderr``, warnings, unraisable exceptions, the
``re.DEBUG`` dump) go into the run's output; log records go to the parent as log lines; fds 0-2
are ``/dev/null``, so C-level writes to them are lost rather than reaching the runner's streams.
Every inherited descriptor but the result pipe and SQLite's files is closed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import sys
import time
import warnings
from typing import Any

from scheduled_tasks.sandbox.protocol import OutputChannel, active_channel


def close_inherited_fds(
    write_fd: int, sqlite: frozenset[str] = frozenset(), job_fd: int | None = None
) -> int:
    """fds 0-2 on /dev/null, every other inherited descriptor closed; returns the result pipe's
    descriptor (moved above 2 if needed).

    Inherited descriptors are the parent's: its database sockets and files, the log file, a web
    server's listening socket, other runs' pipes. The child uses none of them (it opens its own
    database connection on first use, after this, in ``prepare`` or the target), so they go:
    a snippet that escaped the Python layers finds nothing of the parent's to talk to (not the
    runner's PostgreSQL session, whatever role it has). The one exception is SQLite's files
    (:func:`_sqlite_fds`), and a spare's job pipe ``job_fd`` (above 2 already). No Python
    object of the child writes to a closed number afterwards (it could be reused by a file the
    child opens): the old connections are never used again,
    logging is re-routed (:func:`capture_streams`), signal handlers and the wakeup fd are
    reset (:func:`reset_signals`).
    """
    if write_fd <= 2:  # the parent ran with fds 0-2 closed
        write_fd = dup_above(write_fd, 3)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    jobs = () if job_fd is None else (job_fd,)
    keep = sorted({0, 1, 2, write_fd, *jobs, *_sqlite_fds(sqlite)})
    low = 3
    for fd in keep:
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 2**31 - 1)  # close_range(2): as cheap as the number of open fds
    return write_fd


def sqlite_files() -> frozenset[str]:
    """The SQLite database files (and their -wal, -shm, -journal) of the configured databases:
    computed in the parent, before the fork."""
    from django.db import connections

    names: set[str] = set()
    for alias in connections:
        settings_dict = connections[alias].settings_dict
        name = str(settings_dict.get("NAME") or "")
        on_disk = name not in ("", ":memory:") and not name.startswith("file:")
        if settings_dict.get("ENGINE", "").endswith("sqlite3") and on_disk:
            path = os.path.realpath(name)
            names.update(path + suffix for suffix in ("", "-wal", "-shm", "-journal"))
    return frozenset(names)


def _sqlite_fds(files: frozenset[str]) -> set[int]:
    """Descriptors of SQLite database files to keep open in the child.

    SQLite shares one record per database file among all connections of a process, holding
    the descriptors and the shared-memory mapping of the WAL index: the child's own connection
    reuses that record, so closing the inherited descriptors breaks its locking ("locking
    protocol"). The parent's open database files therefore stay; nothing else does.
    """
    keep = set()
    if files:
        for entry in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError, ValueError):
                if os.readlink(f"/proc/self/fd/{entry}") in files:
                    keep.add(int(entry))
    return keep


def dup_above(fd: int, lowest: int) -> int:
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD, lowest)
    os.close(fd)
    return new


_RESET_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGHUP", "SIGALRM", "SIGUSR1", "SIGUSR2", "SIGCHLD")
    if hasattr(signal, name)  # importable where some are missing (sandbox/platform.py)
)


def reset_signals() -> None:
    # The parent's Python-level handlers (the daemon's, say) must not run here: they write to
    # descriptors the child has closed.
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)
    for sig in _RESET_SIGNALS:
        if callable(signal.getsignal(sig)):
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_DFL)
    # Ctrl-C is the parent's business: it decides whether the run stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _ChannelStream(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` in the child: into the run's output, never the runner's."""

    def __init__(self, channel: OutputChannel, name: str) -> None:
        super().__init__()
        self._channel = channel
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def encoding(self) -> str:
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        self._channel.write(text)
        return len(text)

    def isatty(self) -> bool:
        return False


def _call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
    """``Logger.callHandlers`` in the child: every record that passes its logger's level goes
    to the parent as one L frame (once, whatever handlers and propagation say), never to a
    file or stream of the child."""
    channel = active_channel()
    if channel is None:
        return
    try:
        text = f"({record.name}) {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f" [{_describe_exception(record.exc_info[0], record.exc_info[1])}]"
        channel.log(record.levelno, text)
    except Exception:
        with contextlib.suppress(Exception):
            channel.log(logging.ERROR, f"({record.name}) a log record could not be formatted")


def _describe_exception(exc_type: Any, exc: Any) -> str:
    try:
        message = str(exc)
    except Exception:
        message = "(the message could not be shown)"
    name = getattr(exc_type, "__name__", "exception")
    return f"{name}: {message}" if message else name


def capture_streams(channel: OutputChannel) -> None:
    """Python-level writes of the child (print to sys.stdout, tracebacks to sys.stderr, the
    ``re.DEBUG`` dump, warnings, unraisable exceptions) go into the run's output; log records
    go to the parent. C-level writes to fds 1 and 2 go to /dev/null."""
    sys.stdout = _ChannelStream(channel, "<stdout>")
    sys.stderr = _ChannelStream(channel, "<stderr>")

    def unraisable(info: Any) -> None:
        what = info.err_msg or "Exception ignored"
        channel.write(f"{what}: {_describe_exception(info.exc_type, info.exc_value)}\n")

    def showwarning(message: Any, category: Any, filename: str, lineno: int, *args: Any) -> None:
        where = f" (line {lineno})" if filename == "<snippet>" else ""
        channel.write(f"{getattr(category, '__name__', 'Warning')}{where}: {message}\n")

    sys.unraisablehook = unraisable
    warnings.showwarning = showwarning
    logging.Logger.callHandlers = _call_handlers  # type: ignore[method-assign]


def await_end(seconds: float) -> None:
    # Never exit by ourselves: the parent finds our descendants while we are alive (once we
    # are gone they are re-parented out of its reach), then kills us. Stopping tells the
    # parent we are done even when a descendant still holds the pipe open (no EOF then).
    with contextlib.suppress(OSError):
        os.kill(os.getpid(), signal.SIGSTOP)
    end = time.monotonic() + seconds  # continued by someone else: wait, bounded
    while (left := end - time.monotonic()) > 0:
        with contextlib.suppress(InterruptedError):
            time.sleep(left)
