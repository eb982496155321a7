"""The scheduler's settings: one ``SCHEDULED_TASKS`` dict, merged over these defaults.

Read lazily through :func:`get` so tests can override ``settings.SCHEDULED_TASKS``.
"""

import os
from typing import Any

from django.conf import settings

# Each key, its default and what it means. The README's settings reference mirrors this.
DEFAULTS: dict[str, Any] = {
    # Where the scheduler's own log lines go (also wired into LOGGING in settings.py).
    "LOG_FILE": None,
    # Wall-clock seconds a snippet may run before it is killed and recorded as "timeout".
    "DEFAULT_TIMEOUT_SECONDS": 60,
    # Captured print/logger output kept per execution; the rest is dropped and flagged.
    "MAX_OUTPUT_BYTES": 65536,
    # Log lines kept in the database per execution (each cut at 2000 characters); past them one
    # marker line says the rest was not stored (the log file still gets every line).
    "MAX_LOG_LINES": 1000,
    # Address-space limit of the process a snippet runs in.
    "MAX_MEMORY_MB": 256,
    # Largest snippet accepted by forms, import and the API.
    "MAX_CODE_BYTES": 65536,
    # A runner holds a lease on each run it executes and renews it every third of this period;
    # a "running" execution whose lease ran out belongs to a runner that died: it is marked
    # abandoned and no longer blocks its task.
    "LEASE_SECONDS": 60,
    # What a snippet sees besides safe builtins: name -> dotted path of an object, or a
    # {"model": "app_label.Model"} entry for a model exposed through its manager.
    "NAMESPACE": {
        "timezone": "scheduled_tasks.sandbox.namespace.timezone_proxy",
        "datetime": "datetime.datetime",
        "timedelta": "datetime.timedelta",
        "User": {"model": "auth.User"},
        "Ticket": {"model": "crm.Ticket"},
        "Contact": {"model": "crm.Contact"},
        "Company": {"model": "crm.Company"},
        # Query helpers that check their field names like every other lookup.
        "Q": "scheduled_tasks.sandbox.expressions.Q",
        "Count": "scheduled_tasks.sandbox.expressions.Count",
        "Sum": "scheduled_tasks.sandbox.expressions.Sum",
        "Avg": "scheduled_tasks.sandbox.expressions.Avg",
        "Min": "scheduled_tasks.sandbox.expressions.Min",
        "Max": "scheduled_tasks.sandbox.expressions.Max",
    },
    # When the runner is root, a snippet's process drops to this user (no access to the
    # runner's files or to /proc/<runner>/environ); None keeps the runner's user.
    "SANDBOX_USER": "nobody",
    # PostgreSQL only: snippets connect as this (non-superuser) role, which holds privileges on
    # the allowlisted tables and columns only (``manage.py sync_sandbox_role`` creates it).
    # None: snippets use the application's own connection (``manage.py check`` warns).
    "SANDBOX_DATABASE_URL": None,
    # Days execution history is kept (used by the cleanup job).
    "CLEANUP_DAYS": 30,
    # Where claimed executions run (scheduled_tasks/backends/): "inline" (the runner that
    # claims a run executes it) or "celery" (the runner claims and enqueues one message per
    # execution; `celery -A ticketproo worker` processes run them), or the dotted path of a
    # Backend class. Environment: SCHEDULED_TASKS_BACKEND.
    "BACKEND": "inline",
    # The Celery backend: the app (dotted path; None: Celery's current app) and the queue an
    # execution's message goes to when its task names none.
    "CELERY_APP": None,
    "CELERY_QUEUE": "scheduled_tasks",
    # Run the scheduler loop in each web process; a database leader lock lets one process
    # schedule at a time.
    "EMBEDDED": False,
    # Longest sleep of the daemon / embedded loop; it wakes sooner when work becomes due.
    "DAEMON_INTERVAL_SECONDS": 10,
    # How many runs one runner (daemon, embedded scheduler, cron pass) executes at once, each
    # in its own sandbox process; None: the number of CPUs, at least 2.
    "CONCURRENCY": None,
    # --- Alerts and runner heartbeats (scheduled_tasks/alerts/, docs/alerts.md) -------------
    # A task whose latest N finished runs (test runs aside) all failed, timed out or were
    # abandoned opens a "failures" alert; it resolves at the task's next completed run.
    # None: the rule is off.
    "ALERT_FAILURES_IN_A_ROW": 3,
    # A run still going this many minutes after it started opens a "long_run" alert; it
    # resolves when the run ends. None: the rule is off.
    "ALERT_THRESHOLD_MINUTES": 5,
    # No heartbeat from any scheduler (daemon, cron pass, embedded leader) for this many
    # minutes while an active task exists opens a "scheduler_down" alert; checked by every
    # runner, every web process and /health/. None: the rule is off.
    "ALERT_SCHEDULER_DOWN_MINUTES": 5,
    # Addresses alerts are e-mailed to (Django's e-mail settings); empty: no e-mail.
    "ALERT_EMAILS": [],
    # A URL alerts are POSTed to as JSON; empty: no webhook.
    "ALERT_WEBHOOK_URL": "",
    # How long one webhook request may take before it counts as failed (e-mail: EMAIL_TIMEOUT).
    "ALERT_WEBHOOK_TIMEOUT_SECONDS": 5,
    # How many times a failed notification (webhook or e-mail) is tried again, with a backoff
    # doubling from 30 s, before it is given up and its last error kept.
    "ALERT_WEBHOOK_RETRIES": 5,
    # How often each runner runs every alert rule (web processes check "scheduler down" once
    # a minute whatever this says).
    "ALERT_CHECK_SECONDS": 60,
    # How often a runner renews its heartbeat row; keep it well under
    # ALERT_SCHEDULER_DOWN_MINUTES.
    "HEARTBEAT_SECONDS": 30,
    # Bearer token a Prometheus scraper sends to read ``/metrics`` (at least 16 characters);
    # None: token access is off, only logged-in users allowed to view tasks may read it.
    "METRICS_TOKEN": os.environ.get("SCHEDULED_TASKS_METRICS_TOKEN") or None,
}


def concurrency(value: int | None = None) -> int:
    """The pool size: ``value`` if given, else the setting, else the CPUs (at least 2)."""
    import os

    if value is None:
        value = get("CONCURRENCY")
    if value is None:
        value = max(
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1),
            2,
        )
    return int(value)


def get(key: str) -> Any:
    """Return the configured value of ``key``, falling back to its default."""
    if key not in DEFAULTS:
        raise KeyError(f"unknown SCHEDULED_TASKS setting {key!r}")
    configured = getattr(settings, "SCHEDULED_TASKS", None) or {}
    return configured.get(key, DEFAULTS[key])


def all_settings() -> dict[str, Any]:
    """Defaults merged with the project's overrides (unknown keys included, for checks)."""
    configured = getattr(settings, "SCHEDULED_TASKS", None) or {}
    return {**DEFAULTS, **configured}
