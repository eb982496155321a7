"""The scheduler's Prometheus metrics, read from the database at scrape time.

A custom collector on a registry of its own (never the process-global one, which would mix in
whatever else the process registers, and count per process instead of per database): every
scrape runs the same five queries whatever the number of rows, and every figure is the
database's, so any web process answers the same.

What the figures cover:

- ``scheduled_tasks_executions{task,status}``: the execution records kept (the cleanup job
  deletes those older than ``CLEANUP_DAYS``), by task and status. A gauge, not a counter: it
  goes down when old records are deleted. Test runs (the editor's "Test run") are left out:
  they try a draft, not the task's work.
- ``scheduled_tasks_execution_duration_seconds``: a histogram of the kept runs that have a
  duration (test runs left out); ``scheduled_tasks_lateness_seconds``: of the kept scheduled
  runs that started, how long after their slot. Both are computed over the records kept, so
  their counts also drop when the cleanup job runs: read them as they are
  (``histogram_quantile(0.95, scheduled_tasks_execution_duration_seconds_bucket)`` is the
  95th percentile over the history kept) rather than through ``rate()``.
- ``scheduled_tasks_queued``: pending runs whose time has come (retries past their backoff
  included); ``scheduled_tasks_running``: runs in progress. Test runs included: they load
  the runners like any other.
- ``scheduled_tasks_runner_heartbeat_age_seconds{runner,kind}``: seconds since each runner
  that has not stopped cleanly last said it was alive.
- ``scheduled_tasks_alerts_open{kind}`` and ``scheduled_tasks_tasks{active}``: every kind and
  both states appear, with 0 where there are none, so alerting rules need no ``absent()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from scheduled_tasks.models import Alert, Execution, RunnerHeartbeat, ScheduledTask

# Upper bounds (seconds) of the histograms' buckets; +Inf is added. Runs last from a fraction
# of a second to the 24-hour timeout ceiling; lateness from the daemon's fraction of a second
# to a slot caught up after hours of downtime.
DURATION_BUCKETS: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
)  # fmt: skip
LATENESS_BUCKETS: tuple[float, ...] = (
    0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600,
)  # fmt: skip

Clock = Callable[[], datetime]


def _not_test() -> Q:
    return ~Q(trigger=Execution.Trigger.TEST)


def _timed() -> Q:
    return _not_test() & Q(duration_seconds__isnull=False)


def _late() -> Q:
    return Q(
        trigger=Execution.Trigger.SCHEDULE,
        scheduled_for__isnull=False,
        started_at__isnull=False,
    )


def _histogram_aggregates(
    prefix: str, base: Q, bounds: tuple[float, ...], at_most: Callable[[float], Q], total: Any
) -> dict[str, Any]:
    """Conditional aggregates of one histogram: a count per upper bound (``le`` is cumulative
    by its definition, so no running sum is needed), the count and the sum."""
    aggregates: dict[str, Any] = {
        f"{prefix}_le_{i}": Count("pk", filter=base & at_most(bound))
        for i, bound in enumerate(bounds)
    }
    aggregates[f"{prefix}_count"] = Count("pk", filter=base)
    aggregates[f"{prefix}_sum"] = Sum(total, filter=base)
    return aggregates


def _histogram(
    name: str, documentation: str, row: dict[str, Any], prefix: str, bounds: tuple[float, ...]
) -> HistogramMetricFamily:
    count = row[f"{prefix}_count"] or 0
    buckets = [(floatToGoString(b), row[f"{prefix}_le_{i}"] or 0) for i, b in enumerate(bounds)]
    buckets.append(("+Inf", count))
    total = row[f"{prefix}_sum"]
    if isinstance(total, timedelta):
        total = total.total_seconds()
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=total or 0.0)


def _execution_aggregates(now: datetime) -> dict[str, Any]:
    """One query over the executions: both histograms, the queued and the running counts."""
    lateness = ExpressionWrapper(F("started_at") - F("scheduled_for"), output_field=DurationField())
    return Execution.objects.order_by().aggregate(
        **_histogram_aggregates(
            "duration",
            _timed(),
            DURATION_BUCKETS,
            lambda bound: Q(duration_seconds__lte=bound),
            "duration_seconds",
        ),
        **_histogram_aggregates(
            "lateness",
            _late(),
            LATENESS_BUCKETS,
            # started_at - scheduled_for <= bound, written so that no backend has to compare
            # an interval: the slot plus the bound is a timestamp.
            lambda bound: Q(started_at__lte=F("scheduled_for") + timedelta(seconds=bound)),
            lateness,
        ),
        queued=Count(
            "pk",
            filter=Q(status=Execution.Status.PENDING)
            & (Q(not_before__isnull=True) | Q(not_before__lte=now)),
        ),
        running=Count("pk", filter=Q(status=Execution.Status.RUNNING)),
    )


def families(now: datetime) -> Iterator[Metric]:
    """The metrics as of ``now``: five queries."""
    executions = GaugeMetricFamily(
        "scheduled_tasks_executions",
        "Execution records kept (CLEANUP_DAYS of history), by task and status; test runs left out.",
        labels=["task", "status"],
    )
    by_task_status = (
        Execution.objects.filter(_not_test())
        .values_list("task__name", "status")
        .annotate(n=Count("pk"))
        .order_by("task__name", "status")
    )
    for task_name, status, n in by_task_status:
        executions.add_metric([task_name, status], n)
    yield executions

    row = _execution_aggregates(now)
    yield _histogram(
        "scheduled_tasks_execution_duration_seconds",
        "Duration of the runs kept that have one (test runs left out).",
        row,
        "duration",
        DURATION_BUCKETS,
    )
    yield _histogram(
        "scheduled_tasks_lateness_seconds",
        "Start of the scheduled runs kept minus their slot's due time.",
        row,
        "lateness",
        LATENESS_BUCKETS,
    )
    yield GaugeMetricFamily(
        "scheduled_tasks_queued",
        "Pending runs whose time has come, waiting for a runner.",
        value=row["queued"],
    )
    yield GaugeMetricFamily("scheduled_tasks_running", "Runs in progress.", value=row["running"])

    heartbeats = GaugeMetricFamily(
        "scheduled_tasks_runner_heartbeat_age_seconds",
        "Seconds since each runner that has not stopped cleanly last sent a heartbeat.",
        labels=["runner", "kind"],
    )
    alive = (
        RunnerHeartbeat.objects.filter(stopped_at__isnull=True)
        .order_by("runner")
        .values_list("runner", "kind", "last_seen_at")
    )
    for runner, kind, last_seen_at in alive:
        heartbeats.add_metric([runner, kind], max((now - last_seen_at).total_seconds(), 0.0))
    yield heartbeats

    open_alerts = dict(
        Alert.objects.filter(status=Alert.Status.OPEN)
        .values_list("kind")
        .annotate(n=Count("pk"))
        .order_by()
    )
    alerts = GaugeMetricFamily(
        "scheduled_tasks_alerts_open", "Open alerts, by kind.", labels=["kind"]
    )
    for kind in sorted(set(Alert.Kind.values) | set(open_alerts)):
        alerts.add_metric([kind], open_alerts.get(kind, 0))
    yield alerts

    by_state = dict(
        ScheduledTask.objects.values_list("is_active").annotate(n=Count("pk")).order_by()
    )
    tasks = GaugeMetricFamily(
        "scheduled_tasks_tasks", "Scheduled tasks, active or not.", labels=["active"]
    )
    for active in (True, False):
        tasks.add_metric([str(active).lower()], by_state.get(active, 0))
    yield tasks


class SchedulerCollector:
    """A prometheus_client collector that asks the database at each scrape; the clock is
    injected (the view passes ``timezone.now``)."""

    def __init__(self, clock: Clock = timezone.now) -> None:
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        return families(self.clock())


def registry(clock: Clock = timezone.now) -> CollectorRegistry:
    """A registry of its own holding only the scheduler's collector."""
    result = CollectorRegistry(auto_describe=False)
    result.register(SchedulerCollector(clock))
    return result


REGISTRY = registry()


def render(now: datetime) -> bytes:
    """The text exposition of the metrics as of ``now`` (tests; the view scrapes REGISTRY)."""
    return generate_latest(registry(lambda: now))
