"""Runner heartbeats: each runner renews its own ``RunnerHeartbeat`` row while it runs.

"The scheduler is down" (the ``scheduler_down`` alert, ``/health/``) means that no scheduling
runner (daemon, cron pass, embedded leader) renewed its row lately. Workers beat too but do
not schedule, so they do not count. The caller throttles: ``alerts.monitor.RunnerMonitor``
beats every ``HEARTBEAT_SECONDS``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q

from scheduled_tasks.models import RunnerHeartbeat

Mode = RunnerHeartbeat.Mode

# The kinds of runner that schedule work: one of them must be alive.
SCHEDULER_KINDS = (Mode.DAEMON, Mode.CRON, Mode.EMBEDDED)
# Rows of runners not seen for this long are deleted (a cron pass leaves one row a minute).
KEEP_STOPPED = timedelta(hours=1)
KEEP_SILENT = timedelta(days=1)


def beat(
    runner: str,
    kind: str,
    now: datetime,
    *,
    concurrency: int = 1,
    running: int = 0,
    started: bool = False,
) -> None:
    """Say ``runner`` is alive at ``now`` (insert or update its row). ``started``: the runner
    has just started (its start time is reset, a clean stop forgotten)."""
    values: dict[str, object] = {
        "kind": kind,
        "last_seen_at": now,
        "concurrency": concurrency,
        "running": running,
        "stopped_at": None,
    }
    if started:
        values["started_at"] = now
    if RunnerHeartbeat.objects.filter(runner=runner).update(**values):
        return
    try:
        with transaction.atomic():
            RunnerHeartbeat.objects.create(runner=runner, **{"started_at": now, **values})
    except IntegrityError:  # created meanwhile under the same name: update it
        RunnerHeartbeat.objects.filter(runner=runner).update(**values)


def stopped(runner: str, now: datetime) -> bool:
    """Record that ``runner`` stopped cleanly at ``now``; False if it has no row."""
    return bool(
        RunnerHeartbeat.objects.filter(runner=runner).update(
            stopped_at=now, last_seen_at=now, running=0
        )
    )


def latest(kinds: tuple[str, ...] = SCHEDULER_KINDS) -> RunnerHeartbeat | None:
    """The runner of one of ``kinds`` seen most recently (an index on ``last_seen_at``)."""
    return RunnerHeartbeat.objects.filter(kind__in=kinds).order_by("-last_seen_at").first()


def age_seconds(now: datetime, kinds: tuple[str, ...] = SCHEDULER_KINDS) -> float | None:
    """Seconds since the newest heartbeat of ``kinds``; None when there is none."""
    row = latest(kinds)
    return None if row is None else max((now - row.last_seen_at).total_seconds(), 0.0)


def alive_since(since: datetime, kinds: tuple[str, ...] = SCHEDULER_KINDS) -> bool:
    """Whether a runner of ``kinds`` beat at ``since`` or later."""
    return RunnerHeartbeat.objects.filter(last_seen_at__gte=since, kind__in=kinds).exists()


def prune(now: datetime) -> int:
    """Delete the rows of runners long gone (stopped an hour ago, silent for a day), but never
    the newest scheduler's: it says when the scheduler was last seen."""
    newest = latest()
    deleted, _ = (
        RunnerHeartbeat.objects.filter(
            Q(last_seen_at__lt=now - KEEP_STOPPED, stopped_at__isnull=False)
            | Q(last_seen_at__lt=now - KEEP_SILENT)
        )
        .exclude(pk=newest.pk if newest is not None else None)
        .delete()
    )
    return deleted
