"""The long-running scheduler loop, shared by ``run_scheduled_tasks --daemon`` and the embedded
thread: tick, sleep until the next due time (or the interval, whichever is sooner), repeat.

``Scheduler.run_once()`` is one unit of work (a tick plus the sleep it leaves); ``run()`` loops
over it until stopped. Everything that touches time or the database is injectable, so tests
drive the loop with a fake clock and sleeper.

Stopping (SIGTERM / SIGINT, or ``stop()`` from another thread): nothing new is claimed, the run
in progress finishes, the loop ends. With a shutdown timeout, a run still going when it passes
(or at a second signal) has its process killed and is recorded as abandoned, so its retries
follow the task's policy.

Database outages: a failing tick is logged, the connection is dropped and the tick retried
after an exponential backoff (1 s doubling to 60 s). Retrying is safe because every claim is a
conditional write in the database: a slot whose claim did not commit is still due, and one
whose claim did commit is never claimed again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from types import FrameType
from typing import Any

from django.db import DatabaseError, InterfaceError, close_old_connections, connection
from django.utils import timezone

from scheduled_tasks import backends, claims, conf, leases, runner
from scheduled_tasks.models import Execution
from scheduled_tasks.pool import follows_children
from scheduled_tasks.sandbox import SnippetResult, run_function, run_snippet, spares

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT_SECONDS",
    "Scheduler",
    "ShutdownTimeout",
    "backoff_seconds",
    "plan_sleep",
]

log = logging.getLogger("scheduled_tasks.daemon")

Clock = Callable[[], datetime]
Sleeper = Callable[[float], None]
TickFunction = Callable[..., runner.TickReport]
NextDue = Callable[[datetime], datetime | None]

# How long a run in progress may go on after SIGTERM/SIGINT before it is killed (the daemon's
# --shutdown-timeout default; the systemd unit's TimeoutStopSec must be longer).
DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 60.0
BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# While the loop sleeps it looks this often for work that became due earlier than planned
# (a task created or edited in the meantime); one cheap indexed MIN() query.
PEEK_SECONDS = 1.0
# When the earliest due item is one the last tick could not start (its task already runs
# max_instances times elsewhere), look again this often rather than spinning.
BUSY_POLL_SECONDS = 1.0

DB_ERRORS = (DatabaseError, InterfaceError)


class ShutdownTimeout(BaseException):
    """Raised in the main thread when the shutdown timeout passes during a run.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` between the signal
    and the sandbox swallows it; the sandbox's ``finally`` kills the child on the way out.
    """


def plan_sleep(
    now: datetime,
    next_due: datetime | None,
    interval: float,
    *,
    stuck_before: datetime | None = None,
    busy_poll: float = BUSY_POLL_SECONDS,
) -> float:
    """Seconds to sleep after a tick: until ``next_due`` or ``interval``, whichever is sooner.

    ``stuck_before``: the moment of a tick that started nothing. A due time at or before it is
    work that tick saw and could not start (busy), so poll again in ``busy_poll`` seconds
    instead of at once.
    """
    if next_due is None:
        return float(interval)
    if stuck_before is not None and next_due <= stuck_before:
        return float(min(interval, busy_poll))
    return float(min(interval, max(0.0, (next_due - now).total_seconds())))


def backoff_seconds(
    failures: int,
    initial: float = BACKOFF_INITIAL_SECONDS,
    cap: float = BACKOFF_MAX_SECONDS,
) -> float:
    """Wait before retry number ``failures`` (1, 2, ...): initial, 2x, 4x, ... up to ``cap``."""
    return float(min(cap, initial * 2 ** max(0, failures - 1)))


class _Wakeup:
    """An interruptible sleep: a pipe that ``set()`` writes to and ``wait()`` selects on.

    Safe to ``set()`` from a signal handler or another thread (``threading.Event.set`` may
    deadlock in a signal handler that interrupted the same Event's ``wait``). The lock is
    reentrant for the same reason, and keeps ``set()`` from writing to a closed (and maybe
    reused) descriptor.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def set(self) -> None:
        with self._lock:
            if self._write >= 0:
                with contextlib.suppress(BlockingIOError):  # already set
                    os.write(self._write, b"x")

    def wait(self, timeout: float) -> None:
        read = self._read
        if read < 0:
            return
        ready, _, _ = select.select([read], [], [], max(0.0, timeout))
        if ready:
            with contextlib.suppress(BlockingIOError):
                os.read(read, 4096)

    def close(self) -> None:
        with self._lock:
            fds, self._read, self._write = (self._read, self._write), -1, -1
            for fd in fds:
                if fd >= 0:
                    os.close(fd)


class Scheduler:
    """Runs ``runner.tick`` whenever work is due until stopped.

    ``keep_running`` is asked before each claim and between sleeps: the embedded mode passes
    "do we still hold the leader lease". ``shutdown_timeout`` (seconds, None = wait for the
    run) only applies to stops requested by a signal, i.e. in the daemon's main thread.
    """

    def __init__(
        self,
        *,
        interval: float | None = None,
        shutdown_timeout: float | None = None,
        keep_running: Callable[[], bool] | None = None,
        runner_id: str | None = None,
        on_start: runner.Hook = None,
        on_finish: runner.FinishHook = None,
        clock: Clock = timezone.now,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Sleeper | None = None,
        tick: TickFunction = runner.tick,
        next_due_at: NextDue = runner.next_due_at,
        snippet_executor: runner.Executor = run_snippet,
        function_executor: runner.Executor = run_function,
        peek_seconds: float | None = PEEK_SECONDS,
        backoff_initial: float = BACKOFF_INITIAL_SECONDS,
        backoff_max: float = BACKOFF_MAX_SECONDS,
        concurrency: int | None = None,
        kind: str = "daemon",
        monitored: bool = False,
    ) -> None:
        self.interval = float(interval or conf.get("DAEMON_INTERVAL_SECONDS"))
        self.concurrency = conf.concurrency(concurrency)
        self.shutdown_timeout = shutdown_timeout
        self.runner_id = runner_id or claims.runner_identity()
        self.peek_seconds = peek_seconds
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.last_report: runner.TickReport | None = None
        self.failures = 0  # consecutive failed ticks
        self._keep_running = keep_running
        self._on_start = on_start
        # Alerts (runner heartbeat, alert checks, a check right after each run): for real
        # runners (the daemon command, the embedded leader); tests of the loop leave them off.
        self.kind = kind
        self.monitored = monitored
        self._on_finish = self._alerting(on_finish) if monitored else on_finish
        self._clock = clock
        self._monotonic = monotonic
        self._tick = tick
        self._next_due_at = next_due_at
        # A run queued since the last tick ("Run now") can hide behind an older due item the
        # last tick saw but could not start: asked only then (the real runner's queries).
        self._queued_since = runner.queued_since if next_due_at is runner.next_due_at else None
        if follows_children(snippet_executor, function_executor):
            # The real sandbox: the tick's pool follows its children and kills them itself
            # when the shutdown timeout passes (see ``forced``).
            self._snippet_executor, self._function_executor = run_snippet, run_function
        else:  # executors that run to the end when called
            self._snippet_executor = self._guarded(snippet_executor)
            self._function_executor = self._guarded(function_executor)
        self._wakeup = _Wakeup()
        self._sleep = sleep or self._wakeup.wait
        self._stopping = False
        self._woken = False
        self._forced = ""  # why the run in progress must be killed now (shutdown timeout)
        self._in_sandbox = False
        self._signalled = False
        self._last_tick_at: datetime | None = None

    # -- stopping ---------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """True once the loop should end: stop() was called or keep_running said no."""
        if self._stopping:
            return True
        return self._keep_running is not None and not self._keep_running()

    def stop(self) -> None:
        """Stop claiming and end the loop after the run in progress. Thread- and signal-safe."""
        self._stopping = True
        self._wakeup.set()

    def wake(self) -> None:
        """End the loop's idle wait now and tick (a run was queued: "Run now" in this
        process). Thread-safe; a wake during a tick is forgotten (the tick looks anyway)."""
        self._woken = True
        self._wakeup.set()

    @contextlib.contextmanager
    def signals_handled(self) -> Iterator[None]:
        """SIGTERM/SIGINT stop the loop (a second one kills the run in progress at once).

        Only possible in the main thread; restores the previous handlers on exit.
        """
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)
        previous = {sig: signal.getsignal(sig) for sig in handled}
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGALRM, self._on_alarm)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._signalled:
            log.warning("%s received again: killing the run in progress now", name)
            self._force(f"at a second {name}")
            return
        self._signalled = True
        if self.shutdown_timeout is None:
            log.info("%s received: claiming nothing more; the run in progress may finish", name)
        else:
            log.info(
                "%s received: claiming nothing more; a run in progress gets %g s to finish",
                name,
                self.shutdown_timeout,
            )
        self.stop()
        if self.shutdown_timeout is not None:
            if self.shutdown_timeout <= 0:
                self._force("at once (shutdown timeout 0)")
            else:
                signal.setitimer(signal.ITIMER_REAL, self.shutdown_timeout)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        log.warning("shutdown timeout (%g s) passed", self.shutdown_timeout or 0)
        self._force(f"after the shutdown timeout ({self.shutdown_timeout or 0:g} s)")

    def _force(self, reason: str) -> None:
        self._forced = reason
        # Raise only inside the sandbox call: there the exception unwinds through the code
        # that kills the child. Anywhere else the flag is enough (nothing new starts).
        if self._in_sandbox:
            raise ShutdownTimeout(reason)

    def _guarded(self, executor: runner.Executor) -> runner.Executor:
        """Wrap a sandbox executor so a forced shutdown kills and records its run."""

        def run(*args: Any, **kwargs: Any) -> SnippetResult:
            if self._forced:
                return self._killed(0.0)
            started = self._monotonic()
            try:
                self._in_sandbox = True
                result = executor(*args, **kwargs)
                self._in_sandbox = False
                return result
            except ShutdownTimeout:
                return self._killed(self._monotonic() - started)
            finally:
                self._in_sandbox = False

        return run

    def _killed(self, duration: float) -> SnippetResult:
        return SnippetResult(Execution.Status.ABANDONED, "", self._forced_reason(), duration)

    # -- the loop ---------------------------------------------------------------------------

    def run_once(self) -> float:
        """One tick; returns the seconds to sleep before the next one."""
        now = self._clock()
        report = self._tick(
            now,
            clock=self._clock,
            runner=self.runner_id,
            on_start=self._on_start,
            on_finish=self._on_finish,
            should_stop=lambda: self.stopping,
            snippet_executor=self._snippet_executor,
            function_executor=self._function_executor,
            concurrency=self.concurrency,
            forced=self._forced_reason,
        )
        self.last_report = report
        self._last_tick_at = now
        if self.stopping:
            return 0.0
        after = self._clock()
        progressed = bool(report.executions or report.skipped or report.dispatched)
        return plan_sleep(
            after,
            self._next_due_at(after),
            self.interval,
            stuck_before=None if progressed else now,
        )

    def run(self) -> None:
        """Tick and sleep until stopped. Never raises for a failing tick: logs and backs off."""
        # Each slot's next sandbox process is forked and confined ahead, between a run's
        # record and the next claim (never inside a run: the fork holds up its record), or
        # before the loop sleeps. One more than the slots: a run that follows another at once
        # takes a spare made a run earlier, already confined, not the one just forked.
        # With workers elsewhere (Celery) nothing is forked here: no spares.
        warm = backends.current().executes_here
        with (
            spares.kept_warm(self.concurrency + 1) if warm else contextlib.nullcontext(),
            self._monitor(),
        ):
            self._loop()

    # -- alerts (scheduled_tasks/alerts/) ----------------------------------------------------

    @contextlib.contextmanager
    def _monitor(self) -> Iterator[None]:
        """While the loop runs: this runner's heartbeat and the alert checks, in a thread of
        their own (a long tick must not look like a dead scheduler); never fails the loop."""
        if not self.monitored:
            yield
            return
        from scheduled_tasks.alerts.monitor import RunnerMonitor

        monitor = RunnerMonitor(
            self.runner_id, self.kind, concurrency=self.concurrency, clock=self._clock
        )
        try:
            monitor.start()
        except Exception:
            log.exception("could not start the alert monitor")
        try:
            yield
        finally:
            monitor.stop()

    def _alerting(self, on_finish: runner.FinishHook) -> runner.FinishHook:
        """``on_finish`` followed by the alert rules about the run that ended."""
        from scheduled_tasks import alerts

        def finished(execution: Execution) -> None:
            if on_finish is not None:
                on_finish(execution)
            try:
                alerts.after_run(execution, self._clock())
            except Exception:
                log.exception("alert check after execution %s failed", execution.pk)

        return finished

    def _forced_reason(self) -> str:
        """Why the runs in progress must be killed now ("" while they may go on)."""
        if not self._forced:
            return ""
        return f"The scheduler was shutting down: the run was killed {self._forced}."

    def _loop(self) -> None:
        log.info(
            "scheduler loop started (runner %s, %d slot(s), interval %g s, shutdown timeout %s)",
            self.runner_id,
            self.concurrency,
            self.interval,
            "none" if self.shutdown_timeout is None else f"{self.shutdown_timeout:g} s",
        )
        down_since: float | None = None
        try:
            while not self.stopping:
                try:
                    delay = self.run_once()
                except ShutdownTimeout:
                    self._abandon_own_runs()
                    break
                except DB_ERRORS as exc:
                    if down_since is None:
                        down_since = self._monotonic()
                    self._failed(exc, database=True)
                    continue
                except Exception as exc:
                    if down_since is None:
                        down_since = self._monotonic()
                    self._failed(exc, database=False)
                    continue
                if self.failures:
                    log.warning(
                        "scheduler recovered: tick succeeded after %d failed attempt(s) "
                        "over %.1f s",
                        self.failures,
                        self._monotonic() - (down_since or self._monotonic()),
                    )
                    self.failures = 0
                    down_since = None
                self._wait(delay, peek=True)
        finally:
            self._wakeup.close()  # a Scheduler runs once
            log.info("scheduler loop stopped (runner %s)", self.runner_id)

    def _failed(self, exc: BaseException, *, database: bool) -> None:
        self.failures += 1
        delay = backoff_seconds(self.failures, self.backoff_initial, self.backoff_max)
        what = "database unavailable" if database else "tick failed"
        level = logging.ERROR if self.failures == 1 else logging.WARNING
        log.log(
            level,
            "%s (attempt %d): %s: %s; retrying in %g s",
            what,
            self.failures,
            type(exc).__name__,
            str(exc).strip().splitlines()[0] if str(exc).strip() else "",
            delay,
            exc_info=not database,
        )
        self._reset_connection()
        self._wait(delay, peek=False)

    @staticmethod
    def _reset_connection() -> None:
        # Drop this thread's (possibly broken) connection; the next query opens a fresh one.
        with contextlib.suppress(Exception):
            close_old_connections()
        with contextlib.suppress(Exception):
            connection.close()

    def _wait(self, seconds: float, *, peek: bool) -> None:
        """Sleep ``seconds``, ending early when stopped or (with ``peek``) when work becomes
        due sooner than planned."""
        deadline = self._monotonic() + seconds
        while not self.stopping:
            left = deadline - self._monotonic()
            if left <= 0:
                return
            slice_ = left if not peek or self.peek_seconds is None else min(left, self.peek_seconds)
            self._sleep(slice_)
            if peek and self._woken:
                self._woken = False
                return
            if slice_ >= left:
                continue  # the deadline has come (or the loop was stopped): no need to look
            if peek and self.peek_seconds is not None and not self.stopping:
                sooner = self._peek()
                if sooner is not None:
                    deadline = min(deadline, self._monotonic() + sooner)

    def _peek(self) -> float | None:
        """Seconds until the earliest due item if it is new since the last tick, else None."""
        try:
            now = self._clock()
            due = self._next_due_at(now)
        except DB_ERRORS:
            return 0.0  # tick now: it meets the same error and the outage handling takes over
        if due is None:
            return None
        if self._last_tick_at is not None and due <= self._last_tick_at:
            try:
                if self._queued_since is not None and self._queued_since(self._last_tick_at, now):
                    return 0.0
            except DB_ERRORS:
                return 0.0
            return None
        return max(0.0, (due - now).total_seconds())

    def _abandon_own_runs(self) -> None:
        """After a ShutdownTimeout escaped outside the sandbox call: whatever this runner still
        has running is not running any more. Expire its leases and reap them now."""
        with contextlib.suppress(*DB_ERRORS):
            now = self._clock()
            Execution.objects.filter(
                status__in=[Execution.Status.PENDING, Execution.Status.RUNNING],
                runner=self.runner_id,
            ).update(lease_expires_at=now)
            leases.reap_abandoned(now)
