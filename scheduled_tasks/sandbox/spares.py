"""Spare children: a snippet's process forked, set up and confined before its run is due.

Most of a run's cost needs nothing of the snippet: the fork, the child's set-up, and its
confinement (the database wall, the secrets scrub, the OS layers). A process that runs snippets
one after another (the daemon and the embedded scheduler, inside :func:`kept_warm`) keeps
spares per thread (the daemon: one per slot and one more), made once a run is recorded, so the
next run only sends its job down a pipe: its limits and its snippet, compiled in the parent. A
spare runs one job and is then killed like any other child: nothing of one run is left for the
next.

A spare is used only

- by the thread that forked it (its death signal follows that thread), as one of up to
  ``count`` it keeps (a runner's pool keeps one per slot);
- under the settings and database it was made with (:func:`current_key`), for at most
  :data:`MAX_AGE_SECONDS`;
- if its database session still answers: it checks when the job arrives and, if not, exits
  before it says the job started (the ``G`` frame). A run whose spare never said so is run in
  a fresh child instead; no snippet code ran in the spare.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass

from scheduled_tasks.sandbox import proctree
from scheduled_tasks.sandbox.childrun import ChildOutcome, ChildRun, Limits, Watch, follow
from scheduled_tasks.sandbox.isolation import OutputChannel, fork_child

log = logging.getLogger("scheduled_tasks.sandbox")

# A spare's database session may be dropped by the server after a long idle time: replace it.
MAX_AGE_SECONDS = 300.0

Target = Callable[[OutputChannel], tuple[str, str]]


@dataclass
class Spare:
    pid: int
    pidfd: int | None
    read_fd: int
    job_fd: int
    key: Hashable
    born: float


_local = threading.local()
_lock = threading.Lock()
_live: dict[int, Spare] = {}


@contextlib.contextmanager
def kept_warm(count: int = 1) -> Iterator[None]:
    """In this thread, keep up to ``count`` spares ready (made after each run, see
    :func:`replenish`); those left at the end are sent away."""
    outer = getattr(_local, "warm", 0)
    _local.warm = max(count, 0)
    try:
        yield
    finally:
        _local.warm = outer
        if not outer:
            for spare in _spares():
                discard(spare)
            _local.spares = []


def warm() -> int:
    """How many spares this thread keeps (0: none)."""
    return int(getattr(_local, "warm", 0))


def current_key() -> Hashable:
    """What a spare must have been made under to be used now: this process and thread, the
    scheduler's settings and the database."""
    from django.conf import settings
    from django.db import connections

    db = connections["default"].settings_dict
    where = tuple(str(db.get(k)) for k in ("ENGINE", "NAME", "HOST", "PORT", "USER"))
    config = repr(getattr(settings, "SCHEDULED_TASKS", None))
    return (os.getpid(), threading.get_ident(), config, where)


def start(
    target: Target,
    limits: Limits,
    prepare: Callable[[], object],
    on_log: Callable[[int, str], None] | None = None,
) -> ChildRun:
    """Start ``target`` (picklable: it is sent to the spare) confined by ``prepare``: in one
    of this thread's spares if it has a usable one, else in a fresh child. Non-blocking."""
    key = current_key()
    _local.recipe = (key, prepare, limits)
    started = time.monotonic()

    def fresh() -> tuple[int, int]:
        return fork_child(limits, target, prepare)

    spare = _take(key)  # ours alone from here on: a running child, ended by its ChildRun
    if spare is not None:
        try:
            _send(spare.job_fd, pickle.dumps((limits, target)))
        except OSError:  # it died waiting (killed from outside): nothing of the run started
            os.close(spare.job_fd)
            _end(spare)
        else:
            os.close(spare.job_fd)
            return ChildRun(
                spare.pid, spare.read_fd, started, limits, on_log, pidfd=spare.pidfd, fallback=fresh
            )
    pid, read_fd = fresh()
    return ChildRun(pid, read_fd, started, limits, on_log)


def run(
    target: Target,
    limits: Limits,
    watch: Watch,
    prepare: Callable[[], object],
) -> ChildOutcome:
    """:func:`start` and follow to the end, then :func:`replenish`."""
    outcome = follow(start(target, limits, prepare, watch.on_log), watch)
    replenish()
    return outcome


def replenish() -> None:
    """Make this thread's spares, up to the number it keeps: call it when the runner has
    nothing else to do (a run recorded, the next ones started), off the runs' path."""
    recipe = getattr(_local, "recipe", None)
    if recipe is None:
        return
    key, prepare, limits = recipe
    if key != current_key():
        return  # made under other settings: the next start makes no use of it
    while len(_spares()) < warm():
        _make(key, prepare, limits)


def _make(key: Hashable, prepare: Callable[[], object], limits: Limits) -> None:
    job_read, job_write = os.pipe()
    try:
        pid, read_fd = fork_child(limits, None, prepare, job_fd=job_read)
    finally:
        os.close(job_read)
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    spare = Spare(pid, pidfd, read_fd, job_write, key, time.monotonic())
    with _lock:
        _live[pid] = spare
    _spares().append(spare)


def _spares() -> list[Spare]:
    if not hasattr(_local, "spares"):
        _local.spares = []
    return _local.spares


def _take(key: Hashable) -> Spare | None:
    """One of this thread's spares that may run under ``key``, taken out of the live ones (no
    other thread may send it away any more); those that may not (other settings, too old)
    are sent away, those already sent away (by :func:`discard_all`) skipped."""
    spares = _spares()
    while spares:
        spare = spares.pop(0)
        if not _own(spare):
            continue
        if spare.key != key or time.monotonic() - spare.born > MAX_AGE_SECONDS:
            _dismiss(spare)
            continue
        return spare
    return None


def _own(spare: Spare) -> bool:
    """Take ``spare`` out of the live ones: True for the one caller that does (it alone may
    then use or close its descriptors)."""
    with _lock:
        return _live.pop(spare.pid, None) is not None


def _send(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _end(spare: Spare) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(spare.pid, signal.SIGKILL)
    proctree.CHILDREN.discard(spare.pid)
    proctree.reap_later(spare.pid, spare.pidfd)
    os.close(spare.read_fd)


def discard(spare: Spare) -> None:
    """Send a spare away unused, unless it was taken or sent away already."""
    if _own(spare):
        _dismiss(spare)


def _dismiss(spare: Spare) -> None:
    """Send away a spare the caller owns: it closes its database session and exits (then is
    reaped)."""
    os.close(spare.job_fd)  # an empty job: the spare exits by itself
    try:
        if spare.pidfd is not None:
            import select

            select.select([spare.pidfd], [], [], 2.0)
    finally:
        _end(spare)


def discard_all() -> None:
    """Send every spare of this process away (at exit, before a test database is dropped)."""
    _local.spares = []
    with _lock:
        spares = list(_live.values())
        _live.clear()  # ours now: a thread still holding one in its list skips it
    for spare in spares:
        with contextlib.suppress(OSError):
            _dismiss(spare)


def live_pids() -> list[int]:
    with _lock:
        return list(_live)


atexit.register(discard_all)
