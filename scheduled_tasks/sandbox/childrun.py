"""The parent's side of one sandbox child's run, advanced without blocking.

A :class:`ChildRun` reads the child's frames as they come, keeps the wall clock, and ends the
child's process tree when the run is over; it never waits by itself, so one loop can follow
many children at once (a runner's pool) as well as one (:func:`follow`).

The run is over when the child has sent its result *and* closed the pipe (or stopped itself, or
exited); until then the deadline still applies. A frame the parent refuses ends the run
``failed`` with "invalid result from the sandbox" and the child's tree is killed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import select
import signal
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from scheduled_tasks.sandbox import proctree
from scheduled_tasks.sandbox.protocol import INVALID_RESULT, ProtocolError, Reader

log = logging.getLogger("scheduled_tasks.sandbox")

POLL_SECONDS = 0.5  # the longest a follower waits without looking (cancel, heartbeats)
_SETTLE_POLL_SECONDS = 0.01
_EXIT_WAIT_SECONDS = 1.0  # after the pipe closed without a result: how long to await the exit
_READ_BYTES = 65536


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
    # Seconds from the run's start to its code's (the fork, the set-up, the confinement).
    startup: float = 0.0


@dataclass(frozen=True)
class Watch:
    """What a follower does while a child runs (see :func:`follow`)."""

    heartbeat: Callable[[], object] | None = None
    heartbeat_every: float = 20.0
    cancel: Callable[[], str | None] | None = None
    on_log: Callable[[int, str], None] | None = None


# A fresh child instead of a spare that never took its job: (pid, read end of its frames).
Fallback = Callable[[], tuple[int, int]]


class ChildRun:
    """One child's run, from its parent. ``fds()`` are what to select on, ``wait_hint(now)``
    how long until it needs a look anyway, ``advance(ready, now)`` takes what is ready and
    answers whether the run is over (then ``outcome`` holds it). Owns the child's descriptors.

    ``fallback`` (spares only): if the child ends ``failed`` without having said it started
    its job (no ``G`` frame, so none of the snippet's code ran), the run goes on in the
    child it makes.
    """

    def __init__(
        self,
        pid: int,
        read_fd: int,
        started: float,
        limits: Limits,
        on_log: Callable[[int, str], None] | None = None,
        *,
        pidfd: int | bool | None = True,
        fallback: Fallback | None = None,
    ) -> None:
        self.started = started
        self.limits = limits
        self.deadline = started + limits.timeout
        self.outcome: ChildOutcome | None = None
        self._on_log = on_log
        self._fallback = fallback
        self._begin(pid, read_fd, _pidfd(pid) if pidfd is True else pidfd or None)

    def _begin(self, pid: int, read_fd: int, pidfd: int | None) -> None:
        self.pid, self.read_fd, self.pidfd = pid, read_fd, pidfd
        self.reader = Reader(self.limits.max_output_bytes, self._on_log)
        self.timed_out = self.exited = self.eof = False
        self.cancelled: str | None = None
        self.invalid = ""
        self.wait_status = 0
        self._closing_until: float | None = None  # the pipe closed without a result

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def job_started(self) -> bool:
        return self.reader.job_started

    def fds(self) -> list[int]:
        if self.done:
            return []
        if self._closing_until is not None:
            return [] if self.pidfd is None else [self.pidfd]
        return [self.read_fd] if self.pidfd is None else [self.read_fd, self.pidfd]

    def wait_hint(self, now: float) -> float:
        """Seconds until this run needs a look even if none of its descriptors is ready."""
        hint = self.deadline - now
        if self._closing_until is not None:
            hint = min(hint, self._closing_until - now, 0.005 if self.pidfd is None else hint)
        elif self.reader.result is not None:
            hint = min(hint, _SETTLE_POLL_SECONDS)  # a stopped child makes no descriptor ready
        elif self.pidfd is None:
            hint = min(hint, POLL_SECONDS)
        return max(hint, 0.0)

    def advance(self, ready: Collection[int], now: float) -> bool:
        """Take what is ready (``ready``: descriptors select() returned, any run's); True once
        the run is over."""
        if self.done:
            return True
        mine = [fd for fd in self.fds() if fd in ready]
        try:
            if self._closing_until is not None:
                if mine or (self.pidfd is None and _exited(self.pid)):
                    self.exited = True
                    return self._finish()
                if now >= self._closing_until or now >= self.deadline:
                    return self._finish()
                return False
            if now >= self.deadline:
                # The parent may come back late (a pool's runner was writing to a busy
                # database): a child that sent its result and stopped meanwhile is done.
                _drain(self.read_fd, self.reader)
                if self.reader.result is not None and _settled(self.pid):
                    self.exited = True
                    return self._finish()
                self.timed_out = True
                return self._finish()
            if self.reader.result is not None and _settled(self.pid):
                # What it wrote before it stopped is all in the pipe: read it, so that data
                # after the result is refused however the reads fell.
                _drain(self.read_fd, self.reader)
                self.exited = True
                return self._finish()
            if self.read_fd in mine:
                chunk = os.read(self.read_fd, _READ_BYTES)
                if chunk:
                    self.reader.feed(chunk)
                else:
                    self.eof = True  # the child (and every holder of its pipe) closed it
            elif self.pidfd in mine or (not mine and self.pidfd is None and _exited(self.pid)):
                # Gone: take what it wrote before (a descendant may hold the pipe open).
                self.exited = True
                _drain(self.read_fd, self.reader)
            if self.eof and not self.exited and self.reader.result is None:
                # Closed without a result: a crash, most likely; let its exit status tell.
                self._closing_until = min(now + _EXIT_WAIT_SECONDS, self.deadline)
                return False
            if self.eof or self.exited:
                return self._finish()
        except ProtocolError as exc:
            self.invalid = str(exc)
            return self._finish()
        return False

    def cancel(self, reason: str) -> None:
        """Stop the child now; the run ends ``cancelled`` with ``reason``."""
        if not self.done:
            self.cancelled = reason
            self._finish()

    def _finish(self) -> bool:
        pid, reader = self.pid, self.reader
        had_descendants = proctree.end_tree(pid)
        if (
            reader.result is not None
            and not (self.invalid or self.timed_out or self.cancelled)
            and not had_descendants
        ):
            # Killed after its result: the exit status says nothing more, and the kernel's
            # teardown of the child's memory need not hold up the run's answer. (A child that
            # had descendants is waited for: they come to us, to be swept, once it is gone.)
            proctree.reap_later(pid, self.pidfd)
            self.pidfd = None  # the reaper owns it now
        else:
            _, self.wait_status = os.waitpid(pid, 0)
        proctree.CHILDREN.discard(pid)
        if proctree.adopting() and proctree.last_pid() != pid:
            proctree.sweep_orphans()
        os.close(self.read_fd)
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        outcome = self._outcome(time.monotonic() - self.started)
        if (
            self._fallback is not None
            and not reader.job_started
            and outcome.status == "failed"
            and not self.invalid
        ):
            fallback, self._fallback = self._fallback, None
            log.info("spare sandbox child %s could not take its job: a fresh child runs it", pid)
            new_pid, read_fd = fallback()
            self._begin(new_pid, read_fd, _pidfd(new_pid))
            return False
        self.outcome = outcome
        return True

    def _outcome(self, duration: float) -> ChildOutcome:
        outcome = self._verdict(duration)
        moment = self.reader.job_started_at
        if moment is None:
            return outcome
        # The child's own moment, sent before the snippet ran; kept within the run's bounds.
        startup = min(max(moment - self.started, 0.0), duration)
        return dataclasses.replace(outcome, startup=startup)

    def _verdict(self, duration: float) -> ChildOutcome:
        reader, limits = self.reader, self.limits
        result = reader.result
        truncated = reader.truncated or bool(result and result["truncated"])
        output, backend = reader.text(), reader.backend_pid
        if self.invalid:
            log.warning(
                "sandbox child %s sent %s: the run is recorded as failed", self.pid, self.invalid
            )
            error = INVALID_RESULT
            return ChildOutcome("failed", output, error, truncated, duration, False, backend)
        if self.timed_out:
            error = f"timed out after {limits.timeout:g} s"
            return ChildOutcome("timeout", output, error, truncated, duration, False, backend)
        if self.cancelled:
            reason = self.cancelled
            return ChildOutcome("cancelled", output, reason, truncated, duration, False, backend)
        if result is None:
            if self.exited:
                error = _describe_exit(self.wait_status, limits)
            else:
                error = "the snippet's process closed its pipe without a result"
            return ChildOutcome("failed", output, error, truncated, duration, False, backend)
        status, error = result["status"], result["error"]
        return ChildOutcome(status, output, error, truncated, duration, True, backend)


def follow(run: ChildRun, watch: Watch) -> ChildOutcome:
    """Follow one run to its end: heartbeats every ``heartbeat_every`` seconds (errors logged,
    never fatal), ``cancel`` asked on every look (a reason stops the child). Whatever is raised
    meanwhile (a shutdown timeout from a signal handler) kills the child on its way out."""
    next_beat = run.started + watch.heartbeat_every
    try:
        while not run.done:
            now = time.monotonic()
            if watch.heartbeat is not None and now >= next_beat:
                next_beat = now + watch.heartbeat_every
                try:
                    watch.heartbeat()
                except Exception:
                    log.exception("heartbeat failed; the run goes on")
            if watch.cancel is not None and (reason := watch.cancel()):
                run.cancel(reason)
                break
            wait = min(run.wait_hint(now), POLL_SECONDS, max(next_beat - now, 0.0))
            fds = run.fds()
            ready = select.select(fds, [], [], wait)[0] if fds else _pause(wait)
            run.advance(ready, time.monotonic())
    finally:
        if not run.done:
            run.cancel("interrupted")
    assert run.outcome is not None
    return run.outcome


def _pause(seconds: float) -> list[int]:
    time.sleep(seconds)
    return []


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
