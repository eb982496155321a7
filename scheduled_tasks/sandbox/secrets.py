"""Secrets out of the snippet's process: settings, ``os.environ`` and ``/proc/self/environ``.

A snippet's process is a fork of the runner, so it starts with the runner's secrets in memory.
Once its database connection is open it needs none of them, so before the snippet runs we
overwrite every secret we can name: the settings Django itself would hide in an error report
(``SECRET_KEY``, passwords, tokens, API keys — its own ``hidden_settings`` pattern), the same
names in ``os.environ`` and in the environment block the kernel shows as
``/proc/self/environ`` (a copy of the runner's start-up environment, in our own memory).
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

from django.conf import settings
from django.views.debug import SafeExceptionReporterFilter

PLACEHOLDER = "<not available in the sandbox>"
# Environment variables that hold credentials without a telling name.
_ALWAYS = frozenset({"DATABASE_URL", "SANDBOX_DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"})


def is_secret_name(name: str, *, environment: bool = False) -> bool:
    """Django's own rule for settings it hides (API, TOKEN, KEY, SECRET, PASS, SIGNATURE);
    in the environment also service URLs, which carry their passwords inline."""
    return (
        name in _ALWAYS
        or (environment and name.endswith(("_URL", "_DSN")))
        or bool(SafeExceptionReporterFilter.hidden_settings.search(name))
    )


def _cleansed(name: str, value: Any) -> Any:
    if is_secret_name(name):
        return PLACEHOLDER
    if isinstance(value, dict):
        return {k: _cleansed(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_cleansed("", v) for v in value)
    return value


def _settings_holders() -> list[Any]:
    wrapped = getattr(settings, "_wrapped", None)
    holders: list[Any] = [wrapped] if wrapped is not None else []
    module_name = os.environ.get("DJANGO_SETTINGS_MODULE") or getattr(
        wrapped, "SETTINGS_MODULE", None
    )
    for name in {module_name, "ticketproo.settings"}:
        if name and name in sys.modules:
            holders.append(sys.modules[name])
    return holders


_SECRET_SETTINGS: list[str] | None = None


def secret_setting_names() -> list[str]:
    """Names of the settings that hold a secret, somewhere inside (found once, in the runner,
    so the child only overwrites them)."""
    global _SECRET_SETTINGS
    if _SECRET_SETTINGS is None:
        found = set()
        for holder in _settings_holders():
            for name in [n for n in vars(holder) if n.isupper()]:
                if _cleansed(name, getattr(holder, name)) != getattr(holder, name):
                    found.add(name)
        _SECRET_SETTINGS = sorted(found)
    return _SECRET_SETTINGS


def scrub_settings() -> None:
    """Settings (and the settings modules they were read from) without secrets."""
    names = secret_setting_names()
    for holder in _settings_holders():
        for name in names:
            if name in vars(holder):
                setattr(holder, name, _cleansed(name, getattr(holder, name)))
    # The cached settings attributes (LazySettings caches what was read).
    cached = vars(settings)
    for name in names:
        if name in cached:
            cached[name] = _cleansed(name, cached[name])


def scrub_connection_settings() -> None:
    """Passwords of the database connections (the open one no longer needs it)."""
    from django.db import connections

    for alias in connections:
        conn = connections[alias]
        conn.settings_dict = _cleansed("", dict(conn.settings_dict))


def _environ_block() -> tuple[int, int] | None:
    # Fields 50 and 51 of /proc/self/stat: where the start-up environment lives in memory.
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[47]), int(fields[48])
    except (OSError, IndexError, ValueError):
        return None


def scrub_environ_block() -> int:
    """Overwrite secret values in the memory behind ``/proc/self/environ``; how many."""
    span = _environ_block()
    if span is None or span[1] <= span[0]:
        return 0
    start, end = span
    block = ctypes.string_at(start, end - start)
    scrubbed = 0
    offset = 0
    for entry in block.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep and value and is_secret_name(name.decode("latin-1"), environment=True):
            # Keep the length; zero bytes end the value for whoever reads it.
            ctypes.memset(start + offset + len(name) + 1, 0, len(value))
            scrubbed += 1
        offset += len(entry) + 1
    return scrubbed


def scrub_environ() -> None:
    for name in [n for n in os.environ if is_secret_name(n, environment=True)]:
        del os.environ[name]


def scrub_process_secrets() -> None:
    """Everything above; called in the snippet's process after its connection is open."""
    scrub_settings()
    scrub_connection_settings()
    scrub_environ()
    scrub_environ_block()


is_secret_name("SECRET_KEY")  # compiles Django's lazy pattern here, not in every child
