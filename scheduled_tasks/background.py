"""Handing a queued "Run now" to a runner at once (issue #13); the web process's fallback.

"Run now" never runs in the request: it queues a pending manual execution
(``run_requests.request_run``) and answers. Once the request's transaction commits,
:func:`hand_over` makes sure something starts the run within about a second:

- the embedded scheduler leading in this very process is woken directly;
- a live daemon or embedded leader elsewhere (a fresh ``RunnerHeartbeat`` of a scheduler that
  has not stopped) needs nothing: its idle wait looks for due work every second
  (``daemon.PEEK_SECONDS``);
- with a backend whose workers run the work (Celery), the run is claimed for them and sent at
  once;
- with no live runner, this web process starts the run itself in a background thread (never
  in the request): the thread claims it like any runner (``claims.claim_pending``, which
  respects ``max_instances`` and lets manual runs of inactive tasks run) and runs it through
  the runner's normal path (``runner.run_claim``: sandbox child, lease, log lines, output so
  far, cancel, record, retry, alerts). One run at a time, in the order asked; a run the
  thread cannot claim (a runner took it, its task is busy elsewhere) is left pending for the
  next runner.

Limits of the fallback: it decides when the run is asked for. A runner that died without a
word looks alive until its heartbeat is ``2 * HEARTBEAT_SECONDS`` (+5 s) old, and a run asked
for meanwhile waits for the next runner. Retries of a failed run are not run by the web
process (they wait for a scheduler), and a run the thread follows ends with its process (its
lease then expires and a runner records it abandoned).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from datetime import datetime, timedelta

from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from scheduled_tasks import claims, conf, run_requests, runner
from scheduled_tasks.backends import base as backends_base
from scheduled_tasks.models import Execution, RunnerHeartbeat, ScheduledTask

log = logging.getLogger("scheduled_tasks.runner")

Mode = RunnerHeartbeat.Mode

# Runners that start a queued run within about a second (a cron pass looks once a minute).
PROMPT_KINDS = (Mode.DAEMON, Mode.EMBEDDED)
# How the way a queued run is started is reported to the caller (the page says it).
BY_THIS_PROCESS = "embedded"
BY_RUNNER = "runner"
BY_WEB = "web"
BY_WORKERS = "workers"


def runner_alive(now: datetime) -> bool:
    """Whether a daemon or embedded leader beat lately and has not stopped (one indexed
    query on the heartbeats)."""
    fresh = now - timedelta(seconds=2 * conf.get("HEARTBEAT_SECONDS") + 5)
    return RunnerHeartbeat.objects.filter(
        kind__in=PROMPT_KINDS, stopped_at__isnull=True, last_seen_at__gte=fresh
    ).exists()


def hand_over(execution_id: int, now: datetime) -> str:
    """Make sure the queued run ``execution_id`` starts soon (see the module); say how:
    :data:`BY_WORKERS`, :data:`BY_THIS_PROCESS`, :data:`BY_RUNNER` or :data:`BY_WEB`. What it
    starts, it starts once the caller's transaction commits (at once in autocommit)."""
    from scheduled_tasks import backends, embedded

    backend = backends.current()
    if not backend.executes_here:
        transaction.on_commit(lambda: send_to_workers(execution_id, backend))
        return BY_WORKERS
    scheduler = embedded.current()
    if scheduler is not None and scheduler.is_leader:
        transaction.on_commit(scheduler.wake)
        return BY_THIS_PROCESS
    if runner_alive(now):
        return BY_RUNNER
    transaction.on_commit(lambda: start(execution_id))
    return BY_WEB


def send_to_workers(execution_id: int, backend: backends_base.Backend) -> bool:
    """With a backend whose workers run the work: claim the queued run for them and send it
    at once (a runner would within a second; this spares the wait). False if it could not
    be claimed now (its task is busy) or sent: a runner's tick claims and sends it later."""
    claim = claims.claim_pending(
        execution_id, timezone.now, runner=f"{claims.runner_identity()}:web", start=False
    )
    if claim is None:
        return False
    try:
        backend.submit([execution_id])
    except backends_base.BackendError as exc:
        log.error("execution %s: could not send it to the workers now: %s", execution_id, exc)
        return False
    return True


def queue_run(task: ScheduledTask, now: datetime) -> tuple[Execution, str]:
    """ "Run now" from a page, a bulk action or the API: queue the run, hand it over; the new
    execution and how it will start (:func:`hand_over`)."""
    execution = run_requests.request_run(task, now=now)
    return execution, hand_over(execution.pk, now)


# -- the web process's runner thread -------------------------------------------------------

_lock = threading.Lock()
_queue: deque[int] = deque()
_thread: threading.Thread | None = None
_last: threading.Thread | None = None  # the newest thread, until it has ended (join)
_pid = os.getpid()


def start(execution_id: int) -> None:
    """Run the pending execution ``execution_id`` in this process's background thread, after
    the runs queued before it."""
    global _thread, _last, _pid
    with _lock:
        if _pid != os.getpid():  # a forked worker: the parent's queue and thread are not ours
            _queue.clear()
            _thread, _pid = None, os.getpid()
        _queue.append(execution_id)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_work, name="scheduled-tasks-run-now", daemon=True)
            _last = _thread
            _thread.start()


def join(timeout: float | None = None) -> bool:
    """Wait until the background thread has run everything queued; True if it has (tests)."""
    thread = _last
    if thread is not None:
        thread.join(timeout)
        return not thread.is_alive()
    return True


def _next() -> int | None:
    global _thread
    with _lock:
        if _queue:
            return _queue.popleft()
        _thread = None  # ends now: a later start() makes a new one
        return None


def _work() -> None:
    identity = f"{claims.runner_identity()}:web"
    try:
        while (execution_id := _next()) is not None:
            try:
                run_one(execution_id, runner_id=identity)
            except Exception:
                log.exception("execution %s: the web process could not run it", execution_id)
            finally:
                close_old_connections()
    finally:
        connections.close_all()  # this thread's connections only


def run_one(execution_id: int, *, runner_id: str) -> bool:
    """Claim the pending execution and run it here to its end; False if it could not be
    claimed (taken by a runner, cancelled, its task busy elsewhere)."""
    from scheduled_tasks import alerts

    claim = claims.claim_pending(execution_id, timezone.now, runner=runner_id)
    if claim is None:
        log.info("execution %s: not started by the web process (taken or busy)", execution_id)
        return False
    log.info("execution %s: no runner is alive, the web process runs it", execution_id)
    execution = runner.run_claim(claim)
    try:
        alerts.after_run(execution, timezone.now())
    except Exception:
        log.exception("alert check after execution %s failed", execution.pk)
    return True
