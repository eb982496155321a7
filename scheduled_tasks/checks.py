"""System checks (``manage.py check``) for the SCHEDULED_TASKS settings."""

from typing import Any

from django.core.checks import Error, register

from scheduled_tasks import conf

_POSITIVE_INTS = [
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_OUTPUT_BYTES",
    "MAX_MEMORY_MB",
    "MAX_CODE_BYTES",
    "LEASE_SECONDS",
    "CLEANUP_DAYS",
    "DAEMON_INTERVAL_SECONDS",
]


@register()
def check_scheduled_tasks_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors: list[Error] = []
    values = conf.all_settings()
    for key in sorted(set(values) - set(conf.DEFAULTS)):
        errors.append(
            Error(
                f"SCHEDULED_TASKS has an unknown key {key!r}.",
                hint=f"Known keys: {', '.join(sorted(conf.DEFAULTS))}.",
                id="scheduled_tasks.E001",
            )
        )
    for key in _POSITIVE_INTS:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            errors.append(
                Error(
                    f"SCHEDULED_TASKS[{key!r}] must be a positive integer, not {value!r}.",
                    id="scheduled_tasks.E002",
                )
            )
    if not isinstance(values["EMBEDDED"], bool):
        errors.append(
            Error("SCHEDULED_TASKS['EMBEDDED'] must be True or False.", id="scheduled_tasks.E003")
        )
    if not isinstance(values["NAMESPACE"], dict):
        errors.append(
            Error("SCHEDULED_TASKS['NAMESPACE'] must be a dict.", id="scheduled_tasks.E004")
        )
    else:
        from scheduled_tasks.sandbox.namespace import namespace_errors

        for message in namespace_errors(values["NAMESPACE"]):
            errors.append(Error(message, id="scheduled_tasks.E005"))
    return errors
