"""Recording the end of a run.

What a run produced comes from its sandbox child, i.e. possibly from a snippet that escaped
the Python layers: its strings are made storable first (:func:`storable`), and if storing the
outcome still fails, the run is recorded ``failed`` with the reason, so that one hostile result
never stops the runner.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from django.db import connection, transaction

from scheduled_tasks import last_outcome
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.sandbox import SnippetResult

log = logging.getLogger("scheduled_tasks.records")

_SURROGATE = re.compile("[\ud800-\udfff]")
# What the output or error of a run that could not be stored is replaced with.
STORE_FAILED = "the outcome of this run could not be stored: {reason}"


def storable(text: str) -> str:
    """``text`` as every database stores it: lone surrogates (not encodable in UTF-8) become
    U+FFFD, NUL (refused by PostgreSQL) becomes the four characters ``\\x00``."""
    if not isinstance(text, str):
        text = str(text)
    text = _SURROGATE.sub("\ufffd", text)
    return text.replace("\x00", "\\x00")


def finish(execution: Execution, result: SnippetResult, now: datetime) -> str | None:
    """Store a run's outcome: one UPDATE of its execution row (the task points at its latest
    run, ``ScheduledTask.last_execution``, so its last status needs no write of its own; an
    older run finishing late cannot speak for the task). A run that failed, timed out or was
    abandoned also marks its task failing (``last_outcome``): a second UPDATE, for those only.

    Returns the status the record had: ``"running"``, or ``"abandoned"`` when another runner
    reaped the run while it went on (its runner was frozen past the lease) — the real outcome
    then replaces that verdict. None when nothing was written: the run was stopped because it
    lost its lease (the reaper's verdict stands) or because a person cancelled it.
    """
    values: dict[str, object] = {
        "status": result.status,
        "finished_at": now,
        # What the run's own code took: the sandbox's start-up (fork, confinement) aside.
        "duration_seconds": round(max(result.duration - result.startup, 0.0), 6),
        "output": storable(result.output),
        "output_truncated": result.output_truncated,
        "error": storable(result.error),
        "lease_expires_at": None,
    }
    if result.startup and execution.started_at is not None:
        # The run started when its code began: lateness then means what a user thinks it does.
        values["started_at"] = min(execution.started_at + timedelta(seconds=result.startup), now)
    try:
        return _guarded(execution, result.status, values)
    except Exception as exc:  # a result the database refuses must not stop the runner
        log.exception("execution %s: its outcome could not be stored", execution.pk)
        reason = storable(f"{type(exc).__name__}: {exc}")[:2000]
        values.update(
            status=Execution.Status.FAILED,
            output="",
            output_truncated=False,
            error=STORE_FAILED.format(reason=reason),
        )
        return _finish(execution, Execution.Status.FAILED, values)


def _guarded(execution: Execution, status: str, values: dict[str, object]) -> str | None:
    # Inside a caller's transaction a refused statement would abort it (PostgreSQL) and the
    # fallback could not be written: there the attempt gets a savepoint. A runner is in
    # autocommit, where the attempt is the one statement.
    if connection.in_atomic_block:
        with transaction.atomic():
            return _finish(execution, status, values)
    return _finish(execution, status, values)


def _finish(execution: Execution, status: str, values: dict[str, object]) -> str | None:
    """Compare-and-set: running -> outcome (the one statement of an ordinary run's end); else
    abandoned -> outcome (reaped while it went on, the real outcome wins), except a cancel.
    A run cancelled by a person, or one the reaper handed on, is not written."""
    previous = None
    candidates = [Execution.Status.RUNNING]
    if status != Execution.Status.CANCELLED:
        candidates.append(Execution.Status.ABANDONED)
    for candidate in candidates:
        if Execution.objects.filter(pk=execution.pk, status=candidate).update(**values):
            previous = candidate
            break
    if previous is None:
        return None
    for field, value in values.items():
        setattr(execution, field, value)
    if last_outcome.is_failing(status) or previous == Execution.Status.ABANDONED:
        # The claim left the task "not failing"; only an outcome that changes that is written.
        last_outcome.run_ended(execution.pk, execution.task_id, status)
    return str(previous)


def record_test_run(
    task: ScheduledTask, result: SnippetResult, started: datetime, finished: datetime
) -> Execution:
    """Keep a test run of edited (maybe unsaved) code in the task's history; the schedule and
    the task's last status (its ``last_execution``) are left alone."""
    return Execution.objects.create(
        task=task,
        status=result.status,
        trigger=Execution.Trigger.TEST,
        started_at=started,
        finished_at=finished,
        created_at=started,
        duration_seconds=round(result.duration, 6),
        output=storable(result.output),
        output_truncated=result.output_truncated,
        error=storable(result.error),
    )
