"""The scheduler inside the web process (``SCHEDULED_TASKS["EMBEDDED"] = True``).

Started only from ``ticketproo/wsgi.py`` and ``ticketproo/asgi.py``, i.e. only by a process
that serves requests (runserver's serving child, each gunicorn/uvicorn worker), never by
``migrate``, the tests or any other management command, and at most once per process.

Every such process runs two daemon threads:

- the *lease keeper* tries every ``ttl / 3`` seconds to take or renew the leader lease (a row
  in ``SchedulerLease``); of many workers exactly one holds it at a time;
- while it holds the lease, a *worker* thread runs the same ``Scheduler`` loop as
  ``run_scheduled_tasks --daemon``. It stops claiming as soon as the lease may have run out by
  this process's clock (a failed renewal, a database outage), so two leaders never overlap
  by more than the run one of them has in progress, and claims are exactly-once regardless.

Processes that do not lead look at the lease every ``FOLLOWER_POLL_SECONDS`` (a read; they
write only when it is free or expired), so a released lease is taken over within about half
a second. The leader releases it (a compare-and-set DELETE on its holder) whenever its process
ends cleanly:

- SIGTERM: ``start()``, called from the main thread (gunicorn sync workers, wsgiref, runserver
  ``--noreload``), wraps the SIGTERM handler in place. Ours asks the threads to stop and then
  hands the signal on: to the previous Python handler (gunicorn's graceful exit, which ends in
  ``sys.exit`` and so in ``atexit`` below), or, if there was none (``SIG_DFL``), it waits for
  the release, restores the default action and re-sends SIGTERM, so the process still dies of
  the signal. An ignored SIGTERM stays ignored.
- ``atexit``: every clean interpreter exit (gunicorn's worker exit after SIGTERM, SIGQUIT, a
  reload or ``max_requests``; runserver's child, whose SIGTERM handler calls ``sys.exit`` and
  which exits to reload) stops the threads, lets the run in progress finish for up to
  ``shutdown_wait`` seconds and releases the lease.

If the leader dies without a word (``kill -9``, a crash), another worker takes over once the
lease expires: within ``ttl`` plus one follower poll.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType

from django.db import DatabaseError, InterfaceError, connection, connections
from django.utils import timezone

from scheduled_tasks import conf, leader
from scheduled_tasks.claims import runner_identity
from scheduled_tasks.daemon import Scheduler
from scheduled_tasks.threads import running_here

__all__ = ["LEASE_NAME", "EmbeddedScheduler", "current", "start", "start_if_enabled", "stop"]

log = logging.getLogger("scheduled_tasks.embedded")

LEASE_NAME = "embedded-scheduler"
# How often a process that does not lead looks whether the lease is free (one indexed read).
FOLLOWER_POLL_SECONDS = 0.5

_lock = threading.Lock()
_current: EmbeddedScheduler | None = None


def start_if_enabled() -> EmbeddedScheduler | None:
    """Start the embedded scheduler if the settings ask for it (called by wsgi.py/asgi.py)."""
    _start_alert_monitor()
    if not conf.get("EMBEDDED"):
        return None
    return start()


def _start_alert_monitor() -> None:
    """Every serving process checks whether the scheduler is down (and sends alerts), even
    when the scheduler is not embedded: it must fire when every runner is dead."""
    try:
        from scheduled_tasks.alerts.monitor import enable_web_monitor

        enable_web_monitor()
    except Exception:
        log.exception("could not start the alert monitor")


def start(*, ttl: float | None = None, interval: float | None = None) -> EmbeddedScheduler:
    """Start this process's embedded scheduler, or return the one already running.

    Raises SandboxUnavailable (with the supported ways) where snippets cannot run.
    """
    from scheduled_tasks.sandbox.platform import require_supported_platform

    global _current
    require_supported_platform()
    with _lock:
        if _current is not None and _current.alive:
            return _current
        _current = EmbeddedScheduler(
            ttl=ttl or conf.get("LEASE_SECONDS"),
            interval=interval or conf.get("DAEMON_INTERVAL_SECONDS"),
        )
        _current.start()
        atexit.register(_current.stop)
        _wrap_sigterm()
        return _current


def current() -> EmbeddedScheduler | None:
    """This process's running embedded scheduler, if any."""
    with _lock:
        return _current if _current is not None and _current.alive else None


def stop(wait: float = 5.0) -> None:
    """Stop this process's embedded scheduler (tests, shutdown hooks)."""
    with _lock:
        scheduler = _current
    if scheduler is not None:
        scheduler.stop(wait)


# -- SIGTERM ------------------------------------------------------------------------------------

_previous_sigterm: Callable[[int, FrameType | None], object] | int | None = None
_terminating = False  # a SIGTERM with the default action is being handled


def _wrap_sigterm() -> None:
    """Put ``_on_sigterm`` in front of this process's SIGTERM handler (main thread only)."""
    global _previous_sigterm
    if threading.current_thread() is not threading.main_thread():
        return  # runserver's serving thread: its SIGTERM handler calls sys.exit -> atexit
    previous = signal.getsignal(signal.SIGTERM)
    if previous is _on_sigterm or previous is signal.SIG_IGN or previous is None:
        return  # already ours; ignored on purpose; or set outside Python (cannot be chained)
    _previous_sigterm = previous
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Stop the embedded scheduler (releasing the lease), then do what SIGTERM did before."""
    global _terminating
    scheduler = _current
    previous = _previous_sigterm
    if callable(previous):
        # The server exits in its own way (gunicorn: after its requests, via sys.exit); start
        # the release now and let atexit wait for it.
        if scheduler is not None:
            scheduler.request_stop()
        previous(signum, frame)
        return
    # SIG_DFL: the process is about to die of this signal, so release first, then die of it.
    # A second SIGTERM while we wait for the release ends the process at once.
    if scheduler is not None and not _terminating:
        _terminating = True
        scheduler.stop()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


class EmbeddedScheduler:
    """The lease keeper and the worker it runs while it holds the lease."""

    def __init__(
        self,
        *,
        ttl: float,
        interval: float,
        name: str = LEASE_NAME,
        holder: str | None = None,
        clock: Callable[[], datetime] = timezone.now,
        shutdown_wait: float = 5.0,
    ) -> None:
        self.name = name
        self.ttl = float(ttl)
        self.interval = float(interval)
        # host:pid identifies the runner of each execution; the suffix keeps two processes
        # that happen to share a pid (containers, pid reuse) from sharing a lease.
        self.holder = holder or f"{runner_identity()}:{secrets.token_hex(3)}"
        self.shutdown_wait = shutdown_wait
        self._clock = clock
        self._pid = os.getpid()
        self._held_until: datetime | None = None
        # A plain flag, set before the Event, so that a signal handler interrupting stop()
        # never re-enters Event.set() (whose lock is not reentrant).
        self._stop_requested = False
        self._stopped = threading.Event()
        self._keeper: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self._scheduler: Scheduler | None = None

    @property
    def alive(self) -> bool:
        """True while the lease keeper thread runs in this process (False in a forked child)."""
        return running_here(self._pid, self._keeper, self._stopped)

    @property
    def is_leader(self) -> bool:
        """Whether this process holds the lease, by its own clock (what the worker obeys)."""
        held_until = self._held_until
        return held_until is not None and self._clock() < held_until

    @property
    def poll_seconds(self) -> float:
        """The keeper's pause: the leader renews every ttl / 3; the others look more often."""
        third = self.ttl / 3
        return third if self._held_until is not None else min(third, FOLLOWER_POLL_SECONDS)

    def start(self) -> None:
        self._keeper = threading.Thread(
            target=self._keep, name="scheduled-tasks-lease", daemon=True
        )
        self._keeper.start()
        log.info("embedded scheduler started (holder %s, lease %g s)", self.holder, self.ttl)

    def request_stop(self) -> None:
        """Stop claiming and have the keeper release the lease, without waiting for it.

        Safe in a signal handler: sets a flag, an Event the main thread never waits on, and
        the worker's signal-safe wakeup.
        """
        if self._pid != os.getpid() or self._stop_requested:
            return  # a forked child must not release its parent's lease
        self._stop_requested = True
        self._stopped.set()
        self._stop_worker()

    def stop(self, wait: float | None = None) -> None:
        """Stop claiming, let the run in progress finish (up to ``wait`` s), release the lease.

        Waits for the keeper even if the stop was already requested (a SIGTERM handler asks,
        ``atexit`` waits)."""
        if self._pid != os.getpid():
            return
        if wait is not None and not self._stop_requested:
            self.shutdown_wait = wait  # how long the keeper waits for the worker's run
        self.request_stop()
        keeper = self._keeper
        if keeper is not None and keeper is not threading.current_thread():
            keeper.join(self.shutdown_wait + 2.0)

    # -- the lease keeper -------------------------------------------------------------------

    def step(self, now: datetime) -> bool:
        """One round of the keeper: take or renew the lease, start or stop the worker.

        Returns whether this process leads after the round.
        """
        had_it = self._held_until is not None
        try:
            if had_it:
                held = leader.renew(self.name, self.holder, now, self.ttl)
                if not held:
                    log.warning("embedded scheduler lost the lease %r (%s)", self.name, self.holder)
                    held = leader.acquire(self.name, self.holder, now, self.ttl)
            elif leader.holder_of(self.name, now) not in (None, self.holder):
                held = False  # followers only read while someone else holds it
            else:
                held = leader.acquire(self.name, self.holder, now, self.ttl)
        except (DatabaseError, InterfaceError) as exc:
            # Keep what we believe we hold until it runs out by our clock; the worker stops
            # claiming then. Drop the possibly broken connection for the next round.
            log.warning("embedded scheduler could not check the lease %r: %s", self.name, exc)
            with contextlib.suppress(Exception):
                connection.close()
            if not self.is_leader:
                self._held_until = None
            return self.is_leader
        if held:
            # Counted from before the query: what we hold is never longer than the database says.
            self._held_until = now + timedelta(seconds=self.ttl)
            if not had_it:
                log.info("embedded scheduler %s now leads (lease %r)", self.holder, self.name)
            self._ensure_worker()
        else:
            self._held_until = None
            self._stop_worker()
        return held

    def _keep(self) -> None:
        try:
            while not self._stopped.is_set():
                try:
                    self.step(self._clock())
                except Exception:  # a bug, not an outage: log it, keep the process scheduling
                    log.exception("embedded scheduler: lease round failed")
                self._stopped.wait(self.poll_seconds)
        finally:
            self._stop_worker()
            worker = self._worker
            if worker is not None:
                worker.join(self.shutdown_wait)
            if self._held_until is not None:
                self._held_until = None
                if worker is not None and worker.is_alive():
                    log.warning(
                        "embedded scheduler: a run still in progress after %g s; it ends with "
                        "this process and is recorded as abandoned once its lease expires",
                        self.shutdown_wait,
                    )
                try:
                    if leader.release(self.name, self.holder):
                        log.info(
                            "embedded scheduler %s released the lease %r", self.holder, self.name
                        )
                except Exception:
                    log.exception("could not release the lease %r", self.name)
            connections.close_all()  # this thread's connections only
            log.info("embedded scheduler stopped (holder %s)", self.holder)

    # -- the worker -------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            return
        scheduler = Scheduler(
            interval=self.interval,
            keep_running=lambda: self.is_leader and not self._stopped.is_set(),
            kind="embedded",
            monitored=True,
        )
        self._scheduler = scheduler
        self._worker = threading.Thread(
            target=self._work, args=(scheduler,), name="scheduled-tasks-worker", daemon=True
        )
        self._worker.start()

    def wake(self) -> None:
        """Have the worker tick now (a run was queued in this process); nothing if it does
        not lead."""
        scheduler = self._scheduler
        if scheduler is not None and self.is_leader:
            scheduler.wake()

    def _stop_worker(self) -> None:
        scheduler = self._scheduler
        if scheduler is not None:
            scheduler.stop()

    @staticmethod
    def _work(scheduler: Scheduler) -> None:
        try:
            scheduler.run()
        finally:
            connections.close_all()  # this thread's connections only
