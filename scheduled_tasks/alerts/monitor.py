"""Background threads that keep the alerts current, apart from the work they watch.

- ``RunnerMonitor``, one per runner (daemon, embedded leader, cron pass): writes the runner's
  heartbeat every ``HEARTBEAT_SECONDS`` and runs every alert rule every
  ``ALERT_CHECK_SECONDS``; from its thread it also recomputes the dashboard's charts every
  ``chart_snapshot.REFRESH_SECONDS`` (never in the caller's thread: a cron pass must not wait
  for them before it runs anything). It is a thread, not a step of the scheduler loop, because one
  tick may go on for as long as runs keep coming (a 30-minute run, a steady stream of due
  work): a loop-driven heartbeat would then report a busy scheduler as dead. The thread
  lives exactly as long as the runner (started and stopped around the loop), so it stops
  beating when the runner stops or its process dies.
- ``WebMonitor``, one per serving web process (started from ``wsgi.py``/``asgi.py`` through
  ``embedded.start_if_enabled``, and revived after a fork by ``AlertMonitorMiddleware``):
  runs the scheduler-down rule once a minute, so that alert fires when every runner is dead.

Both start the process's notification sender (``notify.start_sender``). Nothing here ever
raises into the runner: each step logs its failure and goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime

from django.db import DatabaseError, InterfaceError, close_old_connections, connections
from django.utils import timezone

from scheduled_tasks import conf, heartbeats
from scheduled_tasks.alerts import notify, service
from scheduled_tasks.models import Execution, RunnerHeartbeat
from scheduled_tasks.threads import running_here

log = logging.getLogger("scheduled_tasks.alerts")

Clock = Callable[[], datetime]
# How often a web process runs the scheduler-down rule.
WEB_CHECK_SECONDS = 60.0


def _forget_connection() -> None:
    with contextlib.suppress(Exception):
        connections["default"].close()


def _never_raising(what: str, step: Callable[[], object]) -> None:
    """Run one step of a monitor; log its failure (a database gone: a warning, and a fresh
    connection next time) instead of raising into the thread."""
    try:
        step()
    except (DatabaseError, InterfaceError) as exc:
        log.warning("%s: database unavailable: %s", what, exc)
        _forget_connection()
    except Exception:
        log.exception("%s failed", what)


def _running_count(runner: str) -> int:
    return Execution.objects.running().filter(runner=runner).count()


class RunnerMonitor:
    """A runner's heartbeat and alert checks.

    ``start(now)`` beats and checks at once in the caller's thread (a one-minute cron pass
    gets its heartbeat before it runs anything), then a daemon thread repeats them;
    ``stop()`` ends the thread and records the clean stop. ``step(now)`` is one round, for
    tests.
    """

    def __init__(
        self,
        runner: str,
        kind: str,
        *,
        concurrency: int = 1,
        running: Callable[[], int] | None = None,
        clock: Clock = timezone.now,
        monotonic: Callable[[], float] = time.monotonic,
        heartbeat_seconds: float | None = None,
        check_seconds: float | None = None,
        charts_seconds: float | None = None,
        rules: bool = True,
    ) -> None:
        from scheduled_tasks import chart_snapshot

        self.runner = runner
        self.kind = kind
        self.concurrency = concurrency
        self.heartbeat_seconds = float(heartbeat_seconds or conf.get("HEARTBEAT_SECONDS"))
        self.check_seconds = float(check_seconds or conf.get("ALERT_CHECK_SECONDS"))
        self.charts_seconds = float(charts_seconds or chart_snapshot.REFRESH_SECONDS)
        # A Celery worker beats only: the alert rules and the charts are the scheduler's.
        self.rules = rules
        self._running = running or (lambda: _running_count(runner))
        self._clock = clock
        self._monotonic = monotonic
        self._next_beat = 0.0
        self._next_check = 0.0
        self._next_charts = 0.0
        self._started = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self, now: datetime) -> None:
        """Beat and check if their time has come. Never raises."""
        moment = self._monotonic()
        if moment >= self._next_beat:
            self._next_beat = moment + self.heartbeat_seconds
            self.beat(now)
        if self.rules and moment >= self._next_check:
            self._next_check = moment + self.check_seconds
            _never_raising("alert checks", lambda: service.check_all(now))

    def refresh_charts(self, now: datetime) -> None:
        """Recompute the dashboard's charts if their time has come and no other process did
        lately. Never raises."""
        from scheduled_tasks import chart_snapshot

        moment = self._monotonic()
        if not self.rules or moment < self._next_charts:
            return
        self._next_charts = moment + self.charts_seconds
        _never_raising("dashboard charts", lambda: chart_snapshot.refresh_if_due(now))

    def beat(self, now: datetime) -> bool:
        try:
            heartbeats.beat(
                self.runner,
                self.kind,
                now,
                concurrency=self.concurrency,
                running=self._running(),
                started=not self._started,
            )
        except (DatabaseError, InterfaceError) as exc:
            log.warning("heartbeat of %s: database unavailable: %s", self.runner, exc)
            _forget_connection()
            return False
        except Exception:
            log.exception("heartbeat of %s failed", self.runner)
            return False
        self._started = True
        return True

    def start(self, now: datetime | None = None) -> None:
        self.step(now or self._clock())
        if self.rules:
            notify.start_sender()
        self._thread = threading.Thread(
            target=self._run, name="scheduled-tasks-monitor", daemon=True
        )
        self._thread.start()

    def stop(self, wait: float = 2.0) -> None:
        """End the thread and record the runner's clean stop. A daemon or cron pass owns its
        process, which is about to exit: its sender finishes the send in progress first (the
        embedded scheduler's process goes on serving, and so does its sender)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)
        try:
            heartbeats.stopped(self.runner, self._clock())
        except Exception:
            log.warning("could not record that runner %s stopped", self.runner, exc_info=True)
        if self.kind in (RunnerHeartbeat.Mode.DAEMON, RunnerHeartbeat.Mode.CRON) and self.rules:
            notify.stop_sender()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                wait = (
                    min(self._next_beat, self._next_check, self._next_charts)
                    if self.rules
                    else self._next_beat
                )
                wait -= self._monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
                self.step(self._clock())
                if not self._stop.is_set():
                    self.refresh_charts(self._clock())
                with contextlib.suppress(Exception):
                    close_old_connections()
        finally:
            connections.close_all()  # this thread's connections only


class WebMonitor:
    """The scheduler-down check of a web process, once a minute in a daemon thread."""

    def __init__(self, *, interval: float = WEB_CHECK_SECONDS, clock: Clock = timezone.now):
        self.interval = interval
        self._clock = clock
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return running_here(self._pid, self._thread, self._stop)

    def step(self, now: datetime) -> None:
        """One scheduler-down check. Never raises."""
        _never_raising("scheduler-down check", lambda: service.check_scheduler_down(now))

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="scheduled-tasks-web-monitor", daemon=True
        )
        self._thread.start()

    def stop(self, wait: float = 2.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.step(self._clock())
                with contextlib.suppress(Exception):
                    close_old_connections()
                self._stop.wait(self.interval)
        finally:
            connections.close_all()


_lock = threading.Lock()
_web_enabled = False
_web: WebMonitor | None = None


def enable_web_monitor() -> None:
    """Mark this process as one that serves requests and start its monitor (wsgi/asgi)."""
    global _web_enabled
    _web_enabled = True
    ensure_web_monitor()


def ensure_web_monitor() -> WebMonitor | None:
    """Start this process's web monitor and sender if it serves requests and they are not
    running here (a forked worker inherits the flag, not the threads). No database work."""
    global _web
    if not _web_enabled:
        return None
    with _lock:
        if _web is None or not _web.alive:
            _web = WebMonitor()
            _web.start()
            notify.start_sender()
        return _web


def stop_web_monitor(wait: float = 2.0) -> None:
    global _web, _web_enabled
    with _lock:
        monitor, _web, _web_enabled = _web, None, False
    if monitor is not None:
        monitor.stop(wait)
