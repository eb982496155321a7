"""The PostgreSQL role snippets connect as: privileges exactly the namespace's allowlist.

``manage.py sync_sandbox_role`` calls :func:`sync_role`; ``SANDBOX_DATABASE_URL`` then names
the role, and :mod:`dbwall` connects a snippet's process as it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from scheduled_tasks.sandbox.dbwall import Grants

ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT"
_WANTED = (True, False, False, False, False, False, False)  # pg_roles columns, in that order
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass
class RoleReport:
    role: str
    created: bool
    tables: int
    columns: int
    sequences: int
    notes: list[str]


def role_name_problem(role: str, app_user: str) -> str | None:
    """Why ``role`` cannot be the sandbox role, or None."""
    if not _ROLE_NAME.fullmatch(role):
        return f"role name {role!r} must be lowercase letters, digits and _ (at most 63)"
    if role.startswith("pg_") or role in ("postgres", "public", "none"):
        return f"role name {role!r} is reserved"
    if role == app_user:
        return f"{role!r} is the application's own role"
    return None


def sync_role(connection: Any, role: str, password: str | None, grants: Grants) -> RoleReport:
    """Create or update ``role`` so that it holds exactly ``grants`` (PostgreSQL, idempotent).

    Runs in one transaction on ``connection`` (a Django PostgreSQL wrapper whose user may
    create roles). The password, when given, is hashed here (SCRAM) before it is sent.
    """
    from django.db import transaction
    from psycopg import errors, sql

    raw = connection.connection
    ident = sql.Identifier(role)

    def run(statement: Any, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        text = statement.as_string(raw) if not isinstance(statement, str) else statement
        with connection.cursor() as cursor:
            cursor.execute(text, params or None)
            return cursor.fetchall() if cursor.description else []

    with transaction.atomic(using=connection.alias):
        schema, database = run("SELECT current_schema(), current_database()")[0]
        missing = [
            t
            for t in sorted(grants.select)
            if run("SELECT to_regclass(quote_ident(%s))", (t,))[0][0] is None
        ]
        if missing:
            raise ValueError(f"tables missing (run migrate first): {', '.join(missing)}")
        created = False
        if not run("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)):
            try:
                with transaction.atomic(using=connection.alias):
                    run(sql.SQL("CREATE ROLE {} " + ROLE_ATTRIBUTES).format(ident))
                created = True
            except errors.DuplicateObject:
                pass  # another process (a parallel test worker) created it just now
        # Only what differs: a non-superuser (CREATEROLE) may not even name SUPERUSER,
        # REPLICATION or BYPASSRLS in ALTER ROLE.
        current = run(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, "
            "rolbypassrls, rolinherit FROM pg_roles WHERE rolname = %s",
            (role,),
        )[0]
        fixes = [
            keyword
            for keyword, value, wanted in zip(
                ROLE_ATTRIBUTES.split(), current, _WANTED, strict=True
            )
            if value != wanted
        ]
        if fixes:
            run(sql.SQL("ALTER ROLE {} " + " ".join(fixes)).format(ident))
        if password is not None:
            hashed = raw.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
            run(sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(hashed.decode())))
        owned = run(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = %s",
            (role,),
        )[0][0]
        if owned:
            raise ValueError(
                f"role {role!r} owns {owned} tables or sequences: owners bypass grants"
            )
        for (group,) in run(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = %s",
            (role,),
        ):
            run(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), ident))
        schema_id, db_id = sql.Identifier(schema), sql.Identifier(database)
        run(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(schema_id, ident))
        run(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(schema_id, ident))
        run(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(schema_id, ident))
        run(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(db_id, ident))
        # Usually PUBLIC has both already; granting needs ownership, so only when missing.
        if not run("SELECT has_database_privilege(%s, %s, 'CONNECT')", (role, database))[0][0]:
            run(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db_id, ident))
        if not run("SELECT has_schema_privilege(%s, %s, 'USAGE')", (role, schema))[0][0]:
            run(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema_id, ident))
        sequences = 0
        for privilege, by_table in (
            ("SELECT", grants.select),
            ("INSERT", grants.insert),
            ("UPDATE", grants.update),
        ):
            for table, cols in sorted(by_table.items()):
                col_ids = sql.SQL(", ").join(sql.Identifier(c) for c in sorted(cols))
                statement = sql.SQL("GRANT " + privilege + " ({}) ON {} TO {}")
                run(statement.format(col_ids, sql.Identifier(table), ident))
        columns = sum(len(cols) for cols in grants.select.values())
        for table in sorted(grants.delete):
            run(sql.SQL("GRANT DELETE ON {} TO {}").format(sql.Identifier(table), ident))
        writable = set(grants.insert) | set(grants.update)
        for table in sorted(writable):
            for (sequence,) in run(
                "SELECT DISTINCT pg_get_serial_sequence(quote_ident(%s), a.attname) "
                "FROM pg_attribute a WHERE a.attrelid = to_regclass(quote_ident(%s)) "
                "AND a.attnum > 0 AND NOT a.attisdropped",
                (table, table),
            ):
                if sequence:
                    run(
                        sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(
                            sql.SQL(sequence), ident
                        )
                    )
                    sequences += 1
        notes = []
        (create_schema, create_db, temp) = run(
            "SELECT has_schema_privilege(%s, %s, 'CREATE'), "
            "has_database_privilege(%s, %s, 'CREATE'), has_database_privilege(%s, %s, 'TEMP')",
            (role, schema, role, database, role, database),
        )[0]
        if create_schema:
            notes.append(
                f"{role} can still CREATE in schema {schema} through PUBLIC (PostgreSQL < 15 "
                f"grants it). To close it: GRANT CREATE ON SCHEMA {schema} TO <app role>; "
                f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC;"
            )
        if create_db:
            notes.append(f"{role} can CREATE schemas in {database} through PUBLIC: revoke it.")
        if temp:
            notes.append(
                f"{role} may create TEMPORARY tables (PostgreSQL grants TEMP on {database} to "
                f"PUBLIC by default; session-local, harmless to the data). To close it: REVOKE "
                f"TEMP ON DATABASE {database} FROM PUBLIC; GRANT TEMP ... TO <app role>."
            )
    return RoleReport(role, created, len(grants.select), columns, sequences, notes)
