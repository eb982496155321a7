"""Django's SQLite backend, each call into SQLite under the fork gate
(``scheduled_tasks.db.forkgate``). ``ticketproo/settings.py`` uses it for a SQLite
``DATABASE_URL``; set ``ENGINE = "scheduled_tasks.db.sqlite3"`` in your own project."""

from __future__ import annotations

from typing import Any

from django.db.backends.sqlite3 import base

from scheduled_tasks.db import forkgate


class GatedCursor(base.SQLiteCursorWrapper):
    def execute(self, query: str, params: Any = None) -> Any:
        with forkgate.GATE.call():
            return super().execute(query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        with forkgate.GATE.call():
            return super().executemany(query, param_list)

    def fetchone(self) -> Any:
        with forkgate.GATE.call():
            return super().fetchone()

    def fetchmany(self, size: int = 1) -> Any:
        with forkgate.GATE.call():
            return super().fetchmany(size)

    def fetchall(self) -> Any:
        with forkgate.GATE.call():
            return super().fetchall()

    def close(self) -> None:
        with forkgate.GATE.call():
            super().close()


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        with forkgate.GATE.call():
            return super().get_new_connection(conn_params)

    def create_cursor(self, name: str | None = None) -> GatedCursor:
        return self.connection.cursor(factory=GatedCursor)

    def _commit(self) -> None:
        with forkgate.GATE.call():
            super()._commit()

    def _rollback(self) -> None:
        with forkgate.GATE.call():
            super()._rollback()

    def _close(self) -> None:
        with forkgate.GATE.call():
            super()._close()

    def _set_autocommit(self, autocommit: bool) -> None:
        with forkgate.GATE.call():
            super()._set_autocommit(autocommit)

    def _start_transaction_under_autocommit(self) -> None:
        with forkgate.GATE.call():
            super()._start_transaction_under_autocommit()
