"""The database as a wall, not a door: what a snippet's connection may touch, enforced below Python.

The proxies (orm.py) keep snippets inside the field allowlist at the Python level. Should a
snippet escape them, its connection must still refuse everything outside the allowlist:

- PostgreSQL: the child connects as a role (``SCHEDULED_TASKS["SANDBOX_DATABASE_URL"]``) that
  ``manage.py sync_sandbox_role`` gave exactly the allowlist: column-level SELECT, INSERT and
  UPDATE, DELETE on writable tables, nothing else. The server enforces it; nothing the child
  process does changes it. It holds as long as the child cannot act as a stronger role: the
  parent's sockets are closed in the child (isolation), the application's password is
  overwritten wherever the child still holds it (settings here and in secrets.py, libpq's
  memory here), and the OS layers forbid new connections once this one is open.
- SQLite: an authorizer (``sqlite3.Connection.set_authorizer``) on the child's connection refuses
  reads and writes outside the allowlist, schema changes, ATTACH, PRAGMA and unknown SQL
  functions. It lives in the child's own memory: it stops SQL that slips past the proxies
  (a raw-SQL expression, an injected lookup), not Python code that already runs unconfined,
  which could remove it or open the database file itself. Against that only the OS layers
  (another user, no file access) help.

The same :class:`Grants`, computed from the model registry, drive both.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connections

from scheduled_tasks.sandbox.orm import ModelRegistry, build_registry

log = logging.getLogger("scheduled_tasks.sandbox")


@dataclass(frozen=True)
class Grants:
    """Per table: the columns a snippet's connection may read, insert and update."""

    select: Mapping[str, frozenset[str]]
    insert: Mapping[str, frozenset[str]]
    update: Mapping[str, frozenset[str]]
    delete: frozenset[str]


def _add(target: dict[str, set[str]], table: str, column: str) -> None:
    target.setdefault(table, set()).add(column)


_GRANTS: dict[int, tuple[ModelRegistry, Grants]] = {}


def cached_grants(registry: ModelRegistry) -> Grants:
    """:func:`grants_for`, computed once per registry (in the runner, before the fork)."""
    entry = _GRANTS.get(id(registry))
    if entry is None or entry[0] is not registry:
        entry = (registry, grants_for(registry))
        _GRANTS[id(registry)] = entry
    return entry[1]


def grants_for(registry: ModelRegistry) -> Grants:
    """The tables and columns the registry's models allow (the pk column always)."""
    select: dict[str, set[str]] = {}
    insert: dict[str, set[str]] = {}
    update: dict[str, set[str]] = {}
    delete: set[str] = set()
    for spec in registry:
        meta = spec.model._meta
        for field in meta.concrete_fields:
            # Inherited fields live in their parent's table (multi-table inheritance).
            table = field.model._meta.db_table
            allowed = field.name in spec.fields or field.primary_key
            if field.remote_field is not None and field.remote_field.parent_link:
                allowed = True  # the pointer to the parent row is this model's pk
            if not allowed or field.column is None:
                continue
            _add(select, table, field.column)
            if not spec.read_only:
                _add(insert, table, field.column)  # a pk without a default is inserted too
                if not field.primary_key:
                    _add(update, table, field.column)
        for field in meta.local_many_to_many:
            if field.name in spec.fields and registry.spec_for(field.related_model):
                through = field.remote_field.through._meta
                for column_field in through.concrete_fields:
                    _add(select, through.db_table, column_field.column)
        if not spec.read_only:
            delete.add(meta.db_table)
            for parent in meta.get_parent_list():
                delete.add(parent._meta.db_table)

    def frozen(grants: dict[str, set[str]]) -> dict[str, frozenset[str]]:
        return {table: frozenset(columns) for table, columns in grants.items()}

    return Grants(frozen(select), frozen(insert), frozen(update), frozenset(delete))


def namespace_registry(namespace: Mapping[str, Any] | None = None) -> ModelRegistry:
    """The model registry of the NAMESPACE setting (its ``{"model": ...}`` entries)."""
    if namespace is None:
        from scheduled_tasks import conf

        namespace = conf.get("NAMESPACE")
    return build_registry({k: v for k, v in namespace.items() if isinstance(v, dict)})


# --- SQLite ----------------------------------------------------------------------------------

# Functions the ORM emits: Django's own (registered on every connection) and harmless
# built-ins. Anything else (load_extension, readfile, writefile, fts3_tokenizer, ...) is refused.
SQLITE_FUNCTIONS = frozenset(
    {
        # aggregates
        "count", "sum", "total", "avg", "min", "max", "group_concat", "string_agg",
        "stddev_pop", "stddev_samp", "var_pop", "var_samp",
        # null handling, comparison, conditionals
        "coalesce", "ifnull", "nullif", "iif", "like", "glob", "regexp", "likely", "unlikely",
        "likelihood",
        # text
        "lower", "upper", "length", "octet_length", "substr", "substring", "trim", "ltrim",
        "rtrim", "replace", "instr", "concat", "concat_ws", "char", "unicode", "printf",
        "format", "hex", "quote", "lpad", "rpad", "repeat", "reverse",
        "md5", "sha1", "sha224", "sha256", "sha384", "sha512",
        # numbers
        "abs", "round", "sign", "random", "rand", "mod", "power", "pow", "sqrt", "exp", "ln",
        "log", "log2", "log10", "ceil", "ceiling", "floor", "trunc", "pi", "sin", "cos", "tan",
        "cot", "asin", "acos", "atan", "atan2", "degrees", "radians", "bitxor",
        # dates
        "date", "time", "datetime", "julianday", "strftime", "unixepoch", "timediff",
        # JSON (JSONField lookups)
        "json", "json_extract", "json_type", "json_array", "json_object", "json_valid",
        "json_quote", "json_array_length",
        # introspection of values
        "typeof", "changes", "last_insert_rowid",
    }
)  # fmt: skip

_SQLITE_ALWAYS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT}
    | {getattr(sqlite3, "SQLITE_RECURSIVE", 33)}
)


def sqlite_authorizer(
    grants: Grants, *, refused: list[str] | None = None
) -> Callable[[int, str | None, str | None, str | None, str | None], int]:
    """An authorizer for ``sqlite3.Connection.set_authorizer`` enforcing ``grants``.

    ``refused``, when given, collects a line per refused action (for tests and diagnostics).
    """
    select = {table.lower(): {c.lower() for c in cols} for table, cols in grants.select.items()}
    insert = {table.lower() for table in grants.insert}
    update = {table.lower(): {c.lower() for c in cols} for table, cols in grants.update.items()}
    delete = {table.lower() for table in grants.delete}
    ok, deny = sqlite3.SQLITE_OK, sqlite3.SQLITE_DENY

    def allow_read(table: str, column: str) -> bool:
        columns = select.get(table)
        if columns is None:
            return False
        # "" is a table read without a column (SELECT COUNT(*) FROM t); rowid is the pk.
        return column in columns or column in ("", "rowid", "_rowid_", "oid")

    def authorize(
        action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None
    ) -> int:
        table = (arg1 or "").lower()
        if action in _SQLITE_ALWAYS:
            return ok
        if action == sqlite3.SQLITE_READ:
            if db in ("main", None) and allow_read(table, (arg2 or "").lower()):
                return ok
        elif action == sqlite3.SQLITE_INSERT:
            if db in ("main", None) and table in insert:
                return ok
        elif action == sqlite3.SQLITE_UPDATE:
            if db in ("main", None) and (arg2 or "").lower() in update.get(table, ()):
                return ok
        elif action == sqlite3.SQLITE_DELETE:
            if db in ("main", None) and table in delete:
                return ok
        elif action == sqlite3.SQLITE_FUNCTION:
            name = (arg2 or "").lower()
            if name in SQLITE_FUNCTIONS or name.startswith("django_"):
                return ok
        if refused is not None:
            refused.append(f"{action} {arg1} {arg2} {db}")
        return deny

    return authorize


def confine_sqlite(connection: Any, grants: Grants) -> None:
    """Open ``connection`` (a Django SQLite wrapper) and install the authorizer on it.

    The parent's connections inherited over fork (kept alive, never used) get it too, so the
    handiest unguarded connection is not lying around.
    """
    connection.ensure_connection()  # PRAGMAs of the connection setup run before the wall
    with connection.cursor() as cursor:
        # Sorts and temporary indexes stay in memory: the confined process may not create
        # files (Landlock), and a temp file in /tmp is a file.
        cursor.execute("PRAGMA temp_store = MEMORY")
    authorizer = sqlite_authorizer(grants)
    for raw in [connection.connection, *_inherited()]:
        if isinstance(raw, sqlite3.Connection):
            with contextlib.suppress(sqlite3.Error):
                raw.set_authorizer(authorizer)


# --- PostgreSQL ------------------------------------------------------------------------------


def sandbox_connection_settings(url: str) -> dict[str, Any]:
    """NAME/USER/PASSWORD/HOST/PORT (and OPTIONS, e.g. ``?sslmode=``) of SANDBOX_DATABASE_URL."""
    import dj_database_url

    parsed = dj_database_url.parse(url)
    if "postgres" not in parsed.get("ENGINE", ""):
        raise ValueError("SANDBOX_DATABASE_URL must be a postgres:// URL")
    creds = {key: parsed.get(key) or "" for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")}
    creds["OPTIONS"] = dict(parsed.get("OPTIONS") or {})
    return creds


def _merged_options(current: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    # The URL's options first, the child's own after them: on a repeated ``-c`` setting the
    # last one wins, so ``?options=-c statement_timeout=0`` cannot lift the run's limit.
    options = {**extra, **current}
    if extra.get("options") and current.get("options"):
        options["options"] = f"{extra['options']} {current['options']}"
    return options


def _libpq() -> Any:
    """The libpq this process has loaded (psycopg's own copy, for psycopg-binary)."""
    import ctypes

    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1] if line.strip() else ""
            if "/libpq" in path:
                lib = ctypes.CDLL(path)
                lib.PQpass.restype = ctypes.c_void_p
                lib.PQpass.argtypes = [ctypes.c_void_p]
                return lib
    return None


def forget_passwords(raw_connections: list[Any]) -> int:
    """Overwrite the password libpq keeps for each psycopg connection; how many.

    The parent's connections, inherited over fork, stay alive in the child (see
    isolation._forget_inherited_connections; their descriptors are already closed), and
    ``connection.info.password`` would still tell an escaped snippet the application's
    password. Nothing is sent and no descriptor is touched: the bytes are zeroed in place.
    """
    import ctypes

    pointers = []
    for raw in raw_connections:
        pointer = getattr(getattr(raw, "pgconn", None), "pgconn_ptr", None)
        if pointer:
            pointers.append(pointer)
    if not pointers:
        return 0
    lib = _libpq()
    if lib is None:
        return 0
    forgotten = 0
    for pointer in pointers:
        secret = lib.PQpass(pointer)
        if secret:
            length = len(ctypes.string_at(secret))
            if length:
                ctypes.memset(secret, 0, length)
                forgotten += 1
    return forgotten


def _inherited() -> list[Any]:
    from scheduled_tasks.sandbox import isolation

    return list(isolation._KEEP_ALIVE)


def confine_postgresql(connection: Any, url: str | None) -> str:
    """Reconnect ``connection`` as the sandbox role (when ``url`` is set) and open it."""
    forget_passwords(_inherited())
    if url:
        creds = sandbox_connection_settings(url)
        extra = creds.pop("OPTIONS")
        # In place: settings.DATABASES holds the same dict, so the application's password
        # leaves the child's settings too. OPTIONS (the statement timeout) stay.
        connection.settings_dict.update(creds)
        current = connection.settings_dict.get("OPTIONS") or {}
        connection.settings_dict["OPTIONS"] = _merged_options(current, extra)
        for other in connections.all():
            if other is not connection and other.vendor == "postgresql":
                other.settings_dict["PASSWORD"] = ""
    connection.ensure_connection()
    role = connection.connection.info.user
    forget_passwords([connection.connection])  # connected: not needed any more
    if url:
        return f"postgresql: connected as sandbox role {role!r}"
    return f"postgresql: SANDBOX_DATABASE_URL unset, connected as the application's role {role!r}"


# --- entry point -----------------------------------------------------------------------------


def confine_database(registry: ModelRegistry, *, using: str = "default") -> str:
    """Leave the child's ``using`` connection open and confined to ``registry``; describe it.

    Call in the sandbox child (snippets only) after the inherited connections were dropped and
    before the OS layers forbid new sockets.
    """
    from scheduled_tasks import conf

    started = time.perf_counter()
    connection = connections[using]
    if connection.vendor == "sqlite":
        confine_sqlite(connection, cached_grants(registry))
        what = "sqlite: authorizer installed"
    elif connection.vendor == "postgresql":
        what = confine_postgresql(connection, conf.get("SANDBOX_DATABASE_URL"))
    else:
        connection.ensure_connection()
        what = f"{connection.vendor}: no database wall for this backend"
    return f"{what} in {(time.perf_counter() - started) * 1000:.1f} ms"


# --- ending a killed child's session -----------------------------------------------------------


def backend_pid(using: str = "default") -> int | None:
    """The PostgreSQL backend pid of this process's open connection (None elsewhere)."""
    connection = connections[using]
    if connection.vendor != "postgresql" or connection.connection is None:
        return None
    return int(connection.connection.info.backend_pid)


def end_backend(pid: int, using: str = "default") -> bool:
    """End the database session of a child that was killed mid-run (called in the runner).

    Killing the child does not stop a statement it started, and a session may lift its own
    ``statement_timeout``. Only a session of the sandbox's role (or, without one, the
    application's) with that pid is ended. Needs the right to signal that role's backends
    (superuser, membership in the role, or ``pg_signal_backend``); without it a warning is
    logged and the statement runs until it ends.
    """
    from scheduled_tasks import conf

    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    url = conf.get("SANDBOX_DATABASE_URL")
    role = sandbox_connection_settings(url)["USER"] if url else connection.settings_dict["USER"]
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid = %s AND usename = %s",
                [pid, role],
            )
            row = cursor.fetchone()
    except Exception as exc:  # the runner goes on either way
        log.warning("could not end database session %s of a killed sandbox child: %s", pid, exc)
        return False
    return bool(row and row[0])
