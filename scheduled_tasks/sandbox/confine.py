"""The confinement of a snippet's process, in order, before the snippet runs.

1. the database as a wall: the child's own connection, opened now and confined (SQLite
   authorizer / a PostgreSQL role with the allowlisted privileges only);
2. no secrets: settings, ``os.environ`` and ``/proc/self/environ`` scrubbed (the open
   connection needs no password any more);
3. the OS layers: no_new_privs, an unprivileged user, Landlock, seccomp — last, because the
   steps above still open files and sockets.

Registered functions are trusted code and run without it (they may need the network).
"""

from __future__ import annotations

import logging

from scheduled_tasks import conf
from scheduled_tasks.sandbox import dbwall, oslayer, secrets
from scheduled_tasks.sandbox.protocol import active_channel

log = logging.getLogger("scheduled_tasks.sandbox")
_announced = False


def database_layer() -> str:
    """What the database wall will be for a snippet of this process."""
    from django.db import connection

    if connection.vendor == "sqlite":
        return "database: SQLite authorizer (allowlisted tables and columns)"
    if conf.get("SANDBOX_DATABASE_URL"):
        return "database: sandbox role from SANDBOX_DATABASE_URL"
    return "database: the application's own role (set SANDBOX_DATABASE_URL)"


def announce_layers() -> None:
    """Log once per process, in the runner, which layers confine snippets here."""
    global _announced
    if not _announced:
        _announced = True
        log.info("%s; %s; secrets scrubbed", oslayer.describe_layers(), database_layer())


def prepare_in_parent(code: str) -> None:
    """Everything a run can share, made before the fork (the child inherits it): the compiled
    snippet, the namespace and its model registry, the names of the secrets to scrub."""
    from scheduled_tasks.sandbox.namespace import base_namespace
    from scheduled_tasks.sandbox.policy import compile_snippet

    compile_snippet(code)
    dbwall.cached_grants(base_namespace(conf.get("NAMESPACE")).registry)
    secrets.secret_setting_names()


def confine_snippet_process() -> list[str]:
    """Confine this (child) process; return the layers now active, for the record."""
    from scheduled_tasks.sandbox.namespace import base_namespace

    registry = base_namespace(conf.get("NAMESPACE")).registry
    layers = [dbwall.confine_database(registry)]
    backend = dbwall.backend_pid()
    channel = active_channel()
    if backend is not None and channel is not None:
        # Still our own code: the parent learns which session to end if it kills us.
        channel.backend(backend)
    secrets.scrub_process_secrets()
    layers.append("secrets scrubbed")
    # Nothing is writable by path, not even the SQLite database: the connection opened above
    # (with its WAL files) keeps its descriptors, and the file itself stays unreadable.
    layers += oslayer.install_os_layers(writable_paths=[], user=conf.get("SANDBOX_USER"))
    return layers
