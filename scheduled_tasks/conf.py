"""The scheduler's settings: one ``SCHEDULED_TASKS`` dict, merged over these defaults.

Read lazily through :func:`get` so tests can override ``settings.SCHEDULED_TASKS``.
"""

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
    # Run the scheduler loop in each web process; a database leader lock lets one process
    # schedule at a time.
    "EMBEDDED": False,
    # Longest sleep of the daemon / embedded loop; it wakes sooner when work becomes due.
    "DAEMON_INTERVAL_SECONDS": 10,
    # How many runs one runner (daemon, embedded scheduler, cron pass) executes at once, each
    # in its own sandbox process; None: the number of CPUs, at least 2.
    "CONCURRENCY": None,
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
