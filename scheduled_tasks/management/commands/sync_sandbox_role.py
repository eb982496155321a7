"""Create or update the PostgreSQL role snippets connect as (SANDBOX_DATABASE_URL)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from scheduled_tasks.sandbox import dbrole, dbwall

DEFAULT_ROLE = "ticketproo_sandbox"


class Command(BaseCommand):
    help = (
        "Create or update a PostgreSQL LOGIN role whose privileges are exactly the snippet "
        "allowlist of SCHEDULED_TASKS['NAMESPACE'] (column-level SELECT; INSERT, UPDATE and "
        "DELETE on writable models), and print the SANDBOX_DATABASE_URL to use. Idempotent: "
        "run it again after migrations or NAMESPACE changes. A password given with --password "
        "is not printed; without --password a new role gets a random one, printed once, and an "
        "existing role keeps its own."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", default=DEFAULT_ROLE, help=f"Default: {DEFAULT_ROLE}.")
        parser.add_argument("--password", help="Set this password (it is not printed).")
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="Database alias. Default: default."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        alias: str = options["database"]
        role: str = options["role"]
        password: str | None = options["password"]
        if alias not in connections:
            raise CommandError(f"unknown database alias {alias!r}", returncode=2)
        connection = connections[alias]
        if connection.vendor != "postgresql":
            raise CommandError(
                f"database {alias!r} is {connection.vendor}: sandbox roles exist on PostgreSQL "
                "only (on SQLite the sandbox confines its connection with an authorizer)",
                returncode=2,
            )
        problem = dbrole.role_name_problem(role, connection.settings_dict.get("USER") or "")
        if problem:
            raise CommandError(problem, returncode=2)
        if password is not None and not password:
            raise CommandError("--password must not be empty", returncode=2)
        try:
            registry = dbwall.namespace_registry()
        except (LookupError, ValueError) as exc:
            raise CommandError(f"NAMESPACE: {exc}", returncode=2) from None
        generated = None
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            exists = cursor.fetchone() is not None
        if password is None and not exists:
            generated = password = secrets.token_urlsafe(24)
        try:
            report = dbrole.sync_role(connection, role, password, dbwall.grants_for(registry))
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from None
        except Exception as exc:  # a missing privilege of the user running the command
            raise CommandError(f"could not sync role {role!r}: {exc}", returncode=2) from None
        verb = "created" if report.created else "updated"
        self.stdout.write(
            f"Role {role} {verb}: SELECT on {report.columns} columns of {report.tables} tables, "
            f"{report.sequences} sequences."
        )
        for note in report.notes:
            self.stdout.write(f"Note: {note}")
        if generated is not None:
            shown = quote(generated, safe="")
        elif password is not None:
            shown = "<the password you gave>"
        else:
            shown = "<its password>"
        self.stdout.write(f"SANDBOX_DATABASE_URL={self._url(connection, role, shown)}")

    @staticmethod
    def _url(connection: Any, role: str, password: str) -> str:
        cfg = connection.settings_dict
        host = cfg.get("HOST") or "localhost"
        port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
        return f"postgres://{role}:{password}@{host}{port}/{cfg['NAME']}"
