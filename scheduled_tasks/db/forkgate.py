"""No thread of this process is inside SQLite's C library when the sandbox forks.

SQLite's library-wide mutexes (its memory allocator's among them) are plain pthread mutexes
with no fork handlers. A fork while another thread of the process holds one (a web request's
query, the monitor's heartbeat, the Run-now thread) copies it locked into the child, whose
first SQLite call then waits forever: the run hangs until its timeout (seen with "Run now"
started by a threaded web server's background thread on SQLite, 4 runs in 8).

So every call this process makes into SQLite through Django (``scheduled_tasks.db.sqlite3``:
connect, execute, fetch, commit, rollback, close) is *inside* the gate, and the sandbox forks
only when no thread is (:func:`fork`). Calls share the gate: they never wait for each other
(a thread waiting in SQLite for another's write lock must not keep that one out). A fork
waits for the calls in progress to end; after ``FAIR_SECONDS`` of waiting it also holds new
calls back until they have (a thread waiting for a lock gives up after SQLite's busy
timeout, so the wait is bounded). The fork itself holds every new call back for the few
milliseconds ``os.fork()`` takes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# How long a fork lets new SQLite calls start while it waits for the ones in progress.
FAIR_SECONDS = 1.0


class Gate:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._inside = 0  # threads inside a SQLite call
        self._closed = False  # a fork holds new calls back
        self._depth = threading.local()  # a thread's nested calls count once

    @contextmanager
    def call(self) -> Iterator[None]:
        """Around one call into SQLite."""
        depth = getattr(self._depth, "n", 0)
        if depth == 0:
            with self._cond:
                while self._closed:
                    self._cond.wait()
                self._inside += 1
        self._depth.n = depth + 1
        try:
            yield
        finally:
            self._depth.n -= 1
            if self._depth.n == 0:
                with self._cond:
                    self._inside -= 1
                    if self._inside == 0:
                        self._cond.notify_all()

    def fork(self) -> int:
        """``os.fork()`` once no thread of this process is inside SQLite."""
        with self._cond:
            fair_until = time.monotonic() + FAIR_SECONDS
            while self._inside:
                if time.monotonic() >= fair_until:
                    self._closed = True
                self._cond.wait(0.05)
            pid = os.fork()
            if pid == 0:
                return 0
            self._closed = False
            self._cond.notify_all()
        return pid


GATE = Gate()


def fork() -> int:
    """``os.fork()`` with no SQLite call of this process in progress; the child starts with
    a fresh gate (its only thread is the one that forked)."""
    global GATE
    pid = GATE.fork()
    if pid == 0:
        GATE = Gate()
    return pid
