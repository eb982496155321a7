"""A runner's pool: up to ``size`` runs at once, each in its own sandbox child.

One thread forks every child, reads every child's frames, renews the leases and records the
results. No thread of the runner is ever inside the database while it forks (SQLite's locks do
not survive a fork into the child), and the database sees the runner's writes one at a time.

Executors that run to the end when called (the tests' fakes, custom executors) are run in
:meth:`Pool.start` itself, one after another, as a runner without a pool would.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from scheduled_tasks import claims, conf, leases, loglines, partial_output
from scheduled_tasks.models import Execution
from scheduled_tasks.sandbox import (
    SandboxRun,
    SnippetResult,
    run_function,
    run_snippet,
    spares,
    start_function,
    start_snippet,
)

log = logging.getLogger("scheduled_tasks.runner")

Clock = Callable[[], datetime]
Executor = Callable[..., SnippetResult]

# The longest the pool waits without looking (stop requests, cancels, new due work).
POLL_SECONDS = 0.5
# How often a runner asks the database whether its runs are still ``running`` (a person may
# have cancelled one, another runner reaped one): one query, at most once a second.
CANCEL_CHECK_SECONDS = 1.0
# Why a run whose record is no longer ``running`` is stopped (the record says which it was).
NOT_RUNNING = "its record is no longer running (cancelled, or reaped): the run was stopped"


def follows_children(snippet_executor: Executor, function_executor: Executor) -> bool:
    """Whether these executors are the real sandbox, whose children a pool follows itself
    (any other executor runs to the end when called)."""
    return snippet_executor is run_snippet and function_executor is run_function


@dataclass
class _Running:
    claim: claims.Claim
    run: SandboxRun
    lines: loglines.LogLines | None = None
    output: partial_output.PartialOutput | None = None


@dataclass
class Pool:
    """Runs claimed executions, up to ``size`` at once. ``start`` a claim while ``free``;
    ``wait`` returns the executions that ended (recorded, retries scheduled)."""

    size: int
    clock: Clock
    snippet_executor: Executor = run_snippet
    function_executor: Executor = run_function
    on_start: Callable[..., None] | None = None
    on_finish: Callable[[Execution], None] | None = None
    _running: list[_Running] = field(default_factory=list)
    _ended: list[Execution] = field(default_factory=list)
    _next_beat: float = 0.0
    _next_check: float = 0.0

    @property
    def concurrent(self) -> bool:
        """Whether runs go on side by side (the real sandbox), or run to the end in start."""
        return follows_children(self.snippet_executor, self.function_executor)

    @property
    def free(self) -> int:
        return max(self.size - len(self._running), 0)

    @property
    def busy(self) -> int:
        return len(self._running)

    def start(self, claim: claims.Claim) -> None:
        """Start a claimed run whose lease this runner holds (``leases.start`` succeeded)."""
        from scheduled_tasks import runner

        if not self.concurrent:
            self._ended.append(
                runner.run_claim(
                    claim,
                    clock=self.clock,
                    snippet_executor=self.snippet_executor,
                    function_executor=self.function_executor,
                    on_start=self.on_start,
                    on_finish=self.on_finish,
                )
            )
            return
        options = runner.begin_run(claim, self.on_start)
        lines = loglines.LogLines(claim.execution.pk, self.clock)
        try:
            run = runner.call_sandbox(
                claim.task, start_snippet, start_function, self.clock(), on_log=lines.add, **options
            )
        except Exception as exc:  # the sandbox itself failed (e.g. fork refused): record
            result = runner.could_not_start(claim.execution, exc)
            self._ended.append(runner.finish_run(claim, result, self.clock(), self.on_finish))
            return
        if not self._running:
            self._next_beat = time.monotonic() + conf.get("LEASE_SECONDS") / 3
            self._next_check = time.monotonic() + CANCEL_CHECK_SECONDS
        output = partial_output.of_run(claim.execution.pk, run)
        self._running.append(_Running(claim, run, lines, output))

    def wait(self, timeout: float) -> list[Execution]:
        """Follow the runs for up to ``timeout`` seconds, or until one ends; return (and
        forget) the executions that ended since the last call."""
        end = time.monotonic() + max(timeout, 0.0)
        while self._running and not self._ended:
            now = time.monotonic()
            self._heartbeat(now)
            fds = [fd for item in self._running for fd in item.run.fds()]
            hints = [item.run.wait_hint(now) for item in self._running]
            looks = [self._next_beat - now, self._next_check - now]
            wait = min([end - now, POLL_SECONDS, *looks, *hints])
            ready = set(select.select(fds, [], [], max(wait, 0.0))[0])
            now = time.monotonic()
            self._stop_cancelled(now)
            for item in list(self._running):
                if item.run.advance(ready, now):
                    self._record(item)
            # What the runs still going logged meanwhile: one write (each run's lines at most
            # every STORE_EVERY_SECONDS), so a page can show them before the runs end.
            loglines.store(item.lines for item in self._running)
            # And what they printed so far (each run's at most every second, when it grew).
            for item in self._running:
                if item.output is not None:
                    item.output.store(now)
            if time.monotonic() >= end:
                break
        ended, self._ended = self._ended, []
        return ended

    def idle(self) -> None:
        """The runner has nothing else to do now (no run between its claim and its record
        waits on this thread): make the next runs' processes ahead (where this thread keeps
        spares)."""
        if self.concurrent:
            spares.replenish()

    def abandon_all(self, reason: str) -> list[Execution]:
        """Kill every run now (the shutdown timeout passed, the tick failed): each is recorded
        ``abandoned`` with ``reason``, so its retries follow the task's policy. A run that
        cannot be recorded (the database is gone) is left to the lease reaper."""
        from scheduled_tasks import runner

        for item in list(self._running):
            self._running.remove(item)
            item.run.cancel(reason)  # the child's tree is ended here, whatever follows
            try:
                item.run.result()  # its database session too
                loglines.store([item.lines], everything=True)
                duration = time.monotonic() - item.run.started
                result = SnippetResult(Execution.Status.ABANDONED, "", reason, duration)
                self._ended.append(
                    runner.finish_run(item.claim, result, self.clock(), self.on_finish)
                )
            except Exception:
                log.exception(
                    "execution %s could not be recorded abandoned; its lease will expire",
                    item.claim.execution.pk,
                )
        ended, self._ended = self._ended, []
        return ended

    def _record(self, item: _Running) -> None:
        from scheduled_tasks import runner

        self._running.remove(item)
        result = item.run.result()
        # The lines first: a page that shows the run ended shows all of them.
        loglines.store([item.lines], everything=True)
        self._ended.append(runner.finish_run(item.claim, result, self.clock(), self.on_finish))

    def _stop_cancelled(self, now: float) -> None:
        """At most once a second: stop the runs whose records are no longer ``running`` (a
        person cancelled one); their results then write nothing (``records.finish``)."""
        if now < self._next_check:
            return
        self._next_check = now + CANCEL_CHECK_SECONDS
        try:
            running = leases.still_running(item.claim.execution.pk for item in self._running)
        except Exception:
            log.exception("could not look for cancelled runs; the runs go on")
            return
        for item in self._running:
            if item.claim.execution.pk not in running:
                log.info("execution %s: %s", item.claim.execution.pk, NOT_RUNNING)
                item.run.cancel(NOT_RUNNING)

    def _heartbeat(self, now: float) -> None:
        """Renew the leases of the runs in progress; a run whose lease another runner reaped
        (this one was frozen past it) is stopped."""
        from scheduled_tasks import runner

        if now < self._next_beat:
            return
        self._next_beat = now + conf.get("LEASE_SECONDS") / 3
        moment = self.clock()
        for item in self._running:
            try:
                if not leases.renew_lease(item.claim.execution.pk, moment):
                    log.warning(
                        "execution %s lost its lease (reaped as abandoned)",
                        item.claim.execution.pk,
                    )
                    item.run.cancel(runner.LOST_LEASE)
            except Exception:
                log.exception("heartbeat failed; the run goes on")
