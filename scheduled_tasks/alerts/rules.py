"""The alert rules: which conditions hold at ``now``, and whether an open alert's condition
has cleared. Read-only; ``service.py`` opens and resolves.

Every query is served by an index and bounded (``LIMIT`` subjects per rule and check), so a
check costs the same with 10 or 100 000 tasks:

- failures in a row: tasks with a failed run that ended in the last ``LOOKBACK``
  (``sched_exec_finished``), then each one's latest runs (``sched_exec_task_time``);
- long run: running executions (``sched_exec_status``) that started before the threshold;
- missed: skipped slots recorded in the last ``LOOKBACK`` (``sched_exec_finished``), and
  active tasks overdue past their grace (``sched_task_active_due``);
- scheduler down: one lookup of a recent heartbeat (``last_seen_at``) and of an active task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from scheduled_tasks import conf, heartbeats
from scheduled_tasks.models import Alert, Execution, ScheduledTask
from scheduled_tasks.querysets import EARLIEST_SLOT

Kind = Alert.Kind
Status = Execution.Status

# A run that ended this far back no longer makes a new alert (the runner that recorded it
# checked already; the on_finish hook checks at once).
LOOKBACK = timedelta(hours=1)
# At most this many subjects per rule and check; the next check takes the rest.
LIMIT = 200
FAILING = (Status.FAILED, Status.TIMEOUT, Status.ABANDONED)
# The outcomes that count in a streak: cancelled and skipped runs neither fail nor succeed.
COUNTED = (*FAILING, Status.COMPLETED)
_FAR_FUTURE = datetime.max.replace(tzinfo=EARLIEST_SLOT.tzinfo)


@dataclass(frozen=True)
class Condition:
    """Something an alert is about. ``since`` dates its latest evidence: an alert resolved
    by hand is not reopened for evidence older than its resolution."""

    kind: str
    key: str
    message: str
    since: datetime | None = None
    task_id: int | None = None
    execution_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def failures_key(task_id: int) -> str:
    return f"failures:task={task_id}"


def long_run_key(execution_id: int) -> str:
    return f"long_run:execution={execution_id}"


def missed_key(task_id: int) -> str:
    return f"missed:task={task_id}"


SCHEDULER_DOWN_KEY = "scheduler_down"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _runs(task_id: int) -> Any:
    """The task's runs that are not test runs, newest first (``sched_exec_task_time``)."""
    return (
        Execution.objects.filter(task_id=task_id)
        .exclude(trigger=Execution.Trigger.TEST)
        .order_by("-created_at")
    )


# -- failures in a row ----------------------------------------------------------------------


def failures_in_a_row(task_id: int, task_name: str = "") -> Condition | None:
    """The condition when the task's latest ``ALERT_FAILURES_IN_A_ROW`` finished runs all
    failed, timed out or were abandoned."""
    count = conf.get("ALERT_FAILURES_IN_A_ROW")
    if not count:
        return None
    rows = list(
        _runs(task_id)
        .filter(status__in=COUNTED)
        .values("id", "status", "finished_at", "task__name")[:count]
    )
    if len(rows) < count or any(row["status"] not in FAILING for row in rows):
        return None
    name = task_name or rows[0]["task__name"]
    return Condition(
        kind=Kind.FAILURES,
        key=failures_key(task_id),
        message=f"Task “{name}” failed {count} times in a row (latest: {rows[0]['status']}).",
        since=rows[0]["finished_at"],
        task_id=task_id,
        execution_id=rows[0]["id"],
        details={
            "in_a_row": count,
            "executions": [row["id"] for row in rows],
            "statuses": [row["status"] for row in rows],
        },
    )


def failures_cleared(task_id: int) -> bool:
    """Whether the task's latest finished run completed (or it has none left)."""
    latest = _runs(task_id).filter(status__in=COUNTED).values_list("status", flat=True).first()
    return latest is None or latest == Status.COMPLETED


def failure_candidates(now: datetime) -> list[int]:
    """Tasks with a failed run that ended in the last ``LOOKBACK``."""
    return list(
        # A closed range: PostgreSQL without statistics then estimates few rows and reads
        # the index (see querysets.due).
        Execution.objects.filter(status__in=FAILING, finished_at__range=(now - LOOKBACK, now))
        .exclude(trigger=Execution.Trigger.TEST)
        .order_by()
        .values_list("task_id", flat=True)
        .distinct()[:LIMIT]
    )


def failures(now: datetime) -> list[Condition]:
    """Every task failing ``ALERT_FAILURES_IN_A_ROW`` times in a row (recent failures)."""
    if not conf.get("ALERT_FAILURES_IN_A_ROW"):
        return []
    found = (failures_in_a_row(task_id) for task_id in failure_candidates(now))
    return [condition for condition in found if condition is not None]


# -- long runs ------------------------------------------------------------------------------


def long_runs(now: datetime) -> list[Condition]:
    """Runs still going ``ALERT_THRESHOLD_MINUTES`` after they started."""
    minutes = conf.get("ALERT_THRESHOLD_MINUTES")
    if not minutes:
        return []
    rows = (
        Execution.objects.running()
        .filter(started_at__lt=now - timedelta(minutes=minutes))
        .order_by()
        .values("id", "task_id", "task__name", "started_at", "runner")[:LIMIT]
    )
    conditions = []
    for row in rows:
        running_for = int((now - row["started_at"]).total_seconds() // 60)
        conditions.append(
            Condition(
                kind=Kind.LONG_RUN,
                key=long_run_key(row["id"]),
                message=f"Task “{row['task__name']}” has been running for {running_for} "
                f"minutes (run {row['id']}, threshold {minutes} minutes).",
                since=row["started_at"],
                task_id=row["task_id"],
                execution_id=row["id"],
                details={
                    "started_at": _iso(row["started_at"]),
                    "threshold_minutes": minutes,
                    "runner": row["runner"],
                },
            )
        )
    return conditions


def long_run_cleared(execution_id: int | None) -> bool:
    """Whether the run is no longer running (or is gone)."""
    if execution_id is None:
        return True
    return not Execution.objects.filter(pk=execution_id, status=Status.RUNNING).exists()


# -- missed slots ---------------------------------------------------------------------------


def _overdue(task: dict[str, Any], now: datetime) -> bool:
    grace, due = task["grace_seconds"], task["next_run_at"]
    return (
        task["is_active"]
        and grace is not None
        and due is not None
        and (now - due).total_seconds() > grace
    )


def missed_for_task(task_id: int, now: datetime) -> Condition | None:
    """The condition when the task's latest run is a slot skipped past its grace, or its
    next slot is overdue by more than its grace."""
    task = (
        ScheduledTask.objects.filter(pk=task_id)
        .values("name", "is_active", "next_run_at", "grace_seconds")
        .first()
    )
    if task is None:
        return None
    if _overdue(task, now):
        overdue = int((now - task["next_run_at"]).total_seconds())
        return Condition(
            kind=Kind.MISSED,
            key=missed_key(task_id),
            message=f"Task “{task['name']}” has not run its slot of "
            f"{task['next_run_at']:%Y-%m-%d %H:%M} UTC: {overdue} s late, beyond its grace "
            f"of {task['grace_seconds']} s.",
            since=task["next_run_at"],
            task_id=task_id,
            details={
                "slot": _iso(task["next_run_at"]),
                "overdue_seconds": overdue,
                "grace_seconds": task["grace_seconds"],
            },
        )
    latest = _runs(task_id).values("id", "status", "slots_skipped", "scheduled_for").first()
    if latest is None or latest["status"] != Status.SKIPPED or latest["slots_skipped"] < 1:
        return None
    return Condition(
        kind=Kind.MISSED,
        key=missed_key(task_id),
        message=f"Task “{task['name']}” skipped {latest['slots_skipped']} slot(s) that were "
        f"later than its grace of {task['grace_seconds']} s.",
        since=latest["scheduled_for"],
        task_id=task_id,
        execution_id=latest["id"],
        details={
            "slot": _iso(latest["scheduled_for"]),
            "slots_skipped": latest["slots_skipped"],
            "grace_seconds": task["grace_seconds"],
        },
    )


def missed_candidates(now: datetime) -> list[int]:
    """Tasks that recorded a skipped slot lately, and active tasks overdue past their grace."""
    skipped = (
        Execution.objects.filter(
            status=Status.SKIPPED, finished_at__range=(now - LOOKBACK, now), slots_skipped__gt=0
        )
        .order_by()
        .values_list("task_id", flat=True)
        .distinct()[:LIMIT]
    )
    # The most overdue first, through the runner's due index; the grace is compared here.
    overdue = (
        ScheduledTask.objects.filter(is_active=True, next_run_at__range=(EARLIEST_SLOT, now))
        .filter(grace_seconds__isnull=False)
        .order_by("next_run_at")
        .values("id", "is_active", "next_run_at", "grace_seconds")[:LIMIT]
    )
    ids = dict.fromkeys(skipped)
    ids.update(dict.fromkeys(row["id"] for row in overdue if _overdue(row, now)))
    return list(ids)[:LIMIT]


def missed(now: datetime) -> list[Condition]:
    found = (missed_for_task(task_id, now) for task_id in missed_candidates(now))
    return [condition for condition in found if condition is not None]


def missed_cleared(task_id: int | None, now: datetime) -> bool:
    """Whether the task has run since (its latest run is no skipped slot) and is on time."""
    return task_id is None or missed_for_task(task_id, now) is None


# -- scheduler down -------------------------------------------------------------------------


def active_tasks_exist() -> bool:
    """Whether any task is active and scheduled (through ``sched_task_active_due``)."""
    return ScheduledTask.objects.filter(
        is_active=True, next_run_at__range=(EARLIEST_SLOT, _FAR_FUTURE)
    ).exists()


def scheduler_down(now: datetime) -> Condition | None:
    """The condition when no scheduler beat for ``ALERT_SCHEDULER_DOWN_MINUTES`` while an
    active task waits (also when no runner ever beat)."""
    minutes = conf.get("ALERT_SCHEDULER_DOWN_MINUTES")
    if not minutes:
        return None
    if heartbeats.alive_since(now - timedelta(minutes=minutes)) or not active_tasks_exist():
        return None
    last = heartbeats.latest()
    if last is None:
        message = "No scheduler has ever sent a heartbeat, and active tasks are waiting."
    else:
        silent = int((now - last.last_seen_at).total_seconds() // 60)
        message = (
            f"No scheduler heartbeat for {silent} minutes (the last from {last.kind} runner "
            f"{last.runner}); scheduled tasks are not running."
        )
    return Condition(
        kind=Kind.SCHEDULER_DOWN,
        key=SCHEDULER_DOWN_KEY,
        message=message,
        since=None if last is None else last.last_seen_at,
        details={
            "threshold_minutes": minutes,
            "last_heartbeat_at": None if last is None else _iso(last.last_seen_at),
            "last_runner": None if last is None else last.runner,
            "last_runner_kind": None if last is None else last.kind,
        },
    )


def scheduler_down_cleared(now: datetime) -> bool:
    """Whether a scheduler beat since the threshold (or there is nothing to schedule)."""
    return scheduler_down(now) is None
