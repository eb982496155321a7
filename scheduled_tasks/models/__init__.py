"""The scheduler's records, one module per idea; import them from here."""

from scheduled_tasks.models.alerts import Alert, AlertNotification
from scheduled_tasks.models.executions import Execution, ExecutionLogLine
from scheduled_tasks.models.runners import RunnerHeartbeat, SchedulerLease
from scheduled_tasks.models.snapshots import ChartSnapshot
from scheduled_tasks.models.tasks import (
    RUN_SETTINGS,
    ScheduledTask,
    default_time_zone,
    validate_time_zone,
)
from scheduled_tasks.models.versions import TaskVersion

__all__ = [
    "RUN_SETTINGS",
    "Alert",
    "AlertNotification",
    "ChartSnapshot",
    "Execution",
    "ExecutionLogLine",
    "RunnerHeartbeat",
    "ScheduledTask",
    "SchedulerLease",
    "TaskVersion",
    "default_time_zone",
    "validate_time_zone",
]
