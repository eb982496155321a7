"""System checks (``manage.py check``) for the SCHEDULED_TASKS settings."""

from typing import Any

from django.core.checks import Error, register

from scheduled_tasks import conf

_POSITIVE_INTS = [
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_OUTPUT_BYTES",
    "MAX_LOG_LINES",
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
    workers = values["CONCURRENCY"]
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        errors.append(
            Error(
                "SCHEDULED_TASKS['CONCURRENCY'] must be a positive integer or None (the CPUs), "
                f"not {workers!r}.",
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


# --- the database wall (scheduled_tasks/sandbox/dbwall.py) ---------------------------------


@register()
def check_sandbox_database_url(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """SANDBOX_DATABASE_URL: a postgres URL on PostgreSQL, naming a role of its own."""
    from django.core.checks import Warning
    from django.db import connections

    from scheduled_tasks.sandbox.dbwall import sandbox_connection_settings

    url = conf.get("SANDBOX_DATABASE_URL")
    default = connections["default"]
    if url is not None:
        try:
            if not isinstance(url, str):
                raise ValueError("not a string")
            creds = sandbox_connection_settings(url)
        except Exception as exc:
            return [
                Error(
                    f"SCHEDULED_TASKS['SANDBOX_DATABASE_URL'] is not a postgres:// URL ({exc}).",
                    id="scheduled_tasks.E020",
                )
            ]
        if default.vendor != "postgresql":
            return [
                Error(
                    "SCHEDULED_TASKS['SANDBOX_DATABASE_URL'] is set but the database is "
                    f"{default.vendor}: it applies to PostgreSQL only.",
                    hint="Remove it; on SQLite snippets are confined by an authorizer.",
                    id="scheduled_tasks.E021",
                )
            ]
    if default.vendor != "postgresql":
        return []
    if url is None or creds["USER"] in ("", default.settings_dict.get("USER") or ""):
        return [
            Warning(
                "Snippets would run as the application's own database role: a snippet that "
                "escapes the Python sandbox could read and change every table.",
                hint="Run `manage.py sync_sandbox_role` and set "
                "SCHEDULED_TASKS['SANDBOX_DATABASE_URL'] to the URL it prints.",
                id="scheduled_tasks.W020",
            )
        ]
    return []


@register("database")  # Tags.database: runs with `manage.py check --database default`
def check_sandbox_role(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Any]:
    """Connect as the sandbox role: it must be no superuser and unable to read passwords."""
    from django.contrib.auth import get_user_model
    from django.core.checks import Warning
    from django.db import connections

    from scheduled_tasks.sandbox.dbwall import sandbox_connection_settings

    url = conf.get("SANDBOX_DATABASE_URL")
    default = connections["default"]
    if not databases or "default" not in databases or not url or default.vendor != "postgresql":
        return []
    try:
        import psycopg

        creds = sandbox_connection_settings(url)
        with psycopg.connect(
            dbname=creds["NAME"] or default.settings_dict["NAME"],
            user=creds["USER"],
            password=creds["PASSWORD"] or None,
            host=creds["HOST"] or default.settings_dict.get("HOST") or None,
            port=creds["PORT"] or default.settings_dict.get("PORT") or None,
            connect_timeout=5,
            **{k: v for k, v in creds["OPTIONS"].items() if isinstance(v, str)},
        ) as conn:
            user_meta = get_user_model()._meta
            row = conn.execute(
                "SELECT r.rolsuper, r.rolbypassrls, "
                "to_regclass(quote_ident(%s)) IS NOT NULL "
                "AND has_column_privilege(quote_ident(%s), %s, 'SELECT') "
                "FROM pg_roles r WHERE r.rolname = current_user",
                (user_meta.db_table, user_meta.db_table, "password"),
            ).fetchone()
    except Exception as exc:
        return [
            Warning(
                f"Cannot connect with SANDBOX_DATABASE_URL: {type(exc).__name__}: {exc}",
                id="scheduled_tasks.W021",
            )
        ]
    superuser, bypassrls, reads_passwords = row
    problems = []
    if superuser or bypassrls:
        problems.append("is a superuser" if superuser else "bypasses row-level security")
    if reads_passwords:
        problems.append(f"can read {user_meta.db_table}.password")
    if not problems:
        return []
    return [
        Warning(
            f"The sandbox database role {creds['USER']!r} {' and '.join(problems)}.",
            hint="Run `manage.py sync_sandbox_role` for that role.",
            id="scheduled_tasks.W022",
        )
    ]


@register()
def check_sandbox_os_layers(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Warn when this machine cannot give a snippet's process one of its OS layers."""
    from django.core.checks import Warning

    from scheduled_tasks.sandbox import oslayer

    user = conf.get("SANDBOX_USER")
    offer = oslayer.available_layers(user)
    warnings: list[Any] = []
    if not offer["seccomp"]:
        warnings.append(
            Warning(
                "Snippets run without a seccomp filter "
                f"({offer.get('seccomp_error') or 'unavailable'}).",
                hint="Install libseccomp2 (Debian) and the pyseccomp package.",
                id="scheduled_tasks.W101",
            )
        )
    if not offer["landlock"]:
        warnings.append(
            Warning(
                "Snippets run without Landlock: the kernel lacks it or it is disabled.",
                hint="Use Linux 5.13 or later with 'landlock' in the lsm= boot parameter.",
                id="scheduled_tasks.W102",
            )
        )
    if offer["root"] and user is None:
        warnings.append(
            Warning(
                "The runner is root and SCHEDULED_TASKS['SANDBOX_USER'] is None: snippets run "
                "as root.",
                hint="Set SANDBOX_USER to an unprivileged user such as 'nobody'.",
                id="scheduled_tasks.W103",
            )
        )
    elif offer["root"] and not offer["sandbox_user"]:
        warnings.append(
            Warning(
                f"SCHEDULED_TASKS['SANDBOX_USER'] {user!r} does not exist (or is root): every "
                "snippet run fails rather than run as root.",
                hint="Create the user or set SANDBOX_USER to an existing unprivileged user.",
                id="scheduled_tasks.W104",
            )
        )
    elif offer["root"] and (unreadable := oslayer.python_unreadable_by(user)):
        warnings.append(
            Warning(
                f"SCHEDULED_TASKS['SANDBOX_USER'] {user!r} cannot read {', '.join(unreadable)}: "
                "a standard-library module a snippet's process imports lazily (an encoding, "
                "a C extension not yet loaded) fails to import.",
                hint="Install Python and the virtualenv where that user can read them (not "
                "under /root), or make the directories world-readable.",
                id="scheduled_tasks.W105",
            )
        )
    return warnings


@register()
def check_sandbox_platform(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The sandbox needs POSIX fork() and resource limits (not Windows)."""
    from scheduled_tasks.sandbox.platform import unsupported_reason

    reason = unsupported_reason()
    return [] if reason is None else [Error(reason, id="scheduled_tasks.E030")]


# --- /metrics (scheduled_tasks/views/metrics.py) -------------------------------------------

METRICS_TOKEN_MIN_LENGTH = 16


@register()
def check_metrics_token(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """METRICS_TOKEN: None (token access off) or a string long enough not to be guessed."""
    token = conf.get("METRICS_TOKEN")
    if token is None or (isinstance(token, str) and len(token) >= METRICS_TOKEN_MIN_LENGTH):
        return []
    # Never echo a token (it may be a real one, only short): its length says enough.
    shown = f"a {len(token)}-character string" if isinstance(token, str) else type(token).__name__
    return [
        Error(
            f"SCHEDULED_TASKS['METRICS_TOKEN'] must be None or a string of at least "
            f"{METRICS_TOKEN_MIN_LENGTH} characters, not {shown}.",
            hint="Generate one with `python -c 'import secrets; print(secrets.token_urlsafe())'`.",
            id="scheduled_tasks.E040",
        )
    ]


# --- alerts and heartbeats (scheduled_tasks/alerts/, scheduled_tasks/heartbeats.py) --------

_ALERT_OPTIONAL_POSITIVE_INTS = [
    "ALERT_FAILURES_IN_A_ROW",
    "ALERT_THRESHOLD_MINUTES",
    "ALERT_SCHEDULER_DOWN_MINUTES",
]
_ALERT_POSITIVE_NUMBERS = [
    "ALERT_WEBHOOK_TIMEOUT_SECONDS",
    "ALERT_CHECK_SECONDS",
    "HEARTBEAT_SECONDS",
]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@register()
def check_alert_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """The ALERT_* and HEARTBEAT_SECONDS settings: types, ranges, addresses and the URL."""
    from django.core.checks import Warning
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator, validate_email

    values = conf.all_settings()
    problems: list[Any] = []
    for key in _ALERT_OPTIONAL_POSITIVE_INTS:
        value = values[key]
        if value is not None and (not _is_number(value) or int(value) != value or value < 1):
            problems.append(
                Error(
                    f"SCHEDULED_TASKS[{key!r}] must be a positive integer or None (the rule is "
                    f"off), not {value!r}.",
                    id="scheduled_tasks.E050",
                )
            )
    for key in _ALERT_POSITIVE_NUMBERS:
        value = values[key]
        if not _is_number(value) or value <= 0:
            problems.append(
                Error(
                    f"SCHEDULED_TASKS[{key!r}] must be a positive number of seconds, not "
                    f"{value!r}.",
                    id="scheduled_tasks.E051",
                )
            )
    retries = values["ALERT_WEBHOOK_RETRIES"]
    if not _is_number(retries) or int(retries) != retries or retries < 0:
        problems.append(
            Error(
                "SCHEDULED_TASKS['ALERT_WEBHOOK_RETRIES'] must be a whole number, 0 or more, "
                f"not {retries!r}.",
                id="scheduled_tasks.E052",
            )
        )
    emails = values["ALERT_EMAILS"]
    if not isinstance(emails, list | tuple):
        problems.append(
            Error(
                "SCHEDULED_TASKS['ALERT_EMAILS'] must be a list of e-mail addresses, not "
                f"{type(emails).__name__}.",
                id="scheduled_tasks.E053",
            )
        )
    else:
        for address in emails:
            try:
                validate_email(address)
            except ValidationError:
                problems.append(
                    Error(
                        f"SCHEDULED_TASKS['ALERT_EMAILS'] holds an invalid address {address!r}.",
                        id="scheduled_tasks.E053",
                    )
                )
    url = values["ALERT_WEBHOOK_URL"]
    if url:
        try:
            if not isinstance(url, str):
                raise ValidationError("not a string")
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            problems.append(
                Error(
                    "SCHEDULED_TASKS['ALERT_WEBHOOK_URL'] must be an http:// or https:// URL "
                    "or empty.",
                    id="scheduled_tasks.E054",
                )
            )
    minutes, beat = values["ALERT_SCHEDULER_DOWN_MINUTES"], values["HEARTBEAT_SECONDS"]
    if _is_number(minutes) and _is_number(beat) and minutes > 0 and beat >= minutes * 60 / 2:
        problems.append(
            Warning(
                f"SCHEDULED_TASKS['HEARTBEAT_SECONDS'] ({beat}) is not well under "
                f"ALERT_SCHEDULER_DOWN_MINUTES ({minutes} min): a runner that is alive can "
                "look down between two heartbeats.",
                hint="Beat at least twice per ALERT_SCHEDULER_DOWN_MINUTES.",
                id="scheduled_tasks.W050",
            )
        )
    return problems


@register()
def check_backend(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """SCHEDULED_TASKS['BACKEND'] names a backend that loads, configured as it needs."""
    from scheduled_tasks import backends

    try:
        backend = backends.current()
    except backends.BackendError as exc:
        return [Error(f"SCHEDULED_TASKS['BACKEND']: {exc}.", id="scheduled_tasks.E060")]
    return [
        Error(f"SCHEDULED_TASKS['BACKEND'] {backend.name!r}: {problem}", id="scheduled_tasks.E061")
        for problem in backend.check()
    ]
