"""The sandbox never forks while another thread of the runner is inside SQLite: SQLite's
library mutexes have no fork handlers, so a child forked at that moment would hang on its
first SQLite call. Django's SQLite calls go through the fork gate
(``scheduled_tasks.db.sqlite3``); ``forkgate.fork`` waits for the one in progress."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import pytest
from django.db import connection, connections

from scheduled_tasks.db import forkgate
from scheduled_tasks.db.sqlite3.base import DatabaseWrapper

pytestmark = pytest.mark.django_db(transaction=True)

FORKS = 30
CHILD_SECONDS = 20.0


def test_the_project_uses_the_gated_sqlite_backend() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the gate is SQLite's")
    assert isinstance(connections["default"], DatabaseWrapper)
    assert connection.settings_dict["ENGINE"] == "scheduled_tasks.db.sqlite3"


def test_children_forked_while_other_threads_query_sqlite_never_hang(tmp_path) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the gate is SQLite's")
    # The children use a database of their own: what hangs is SQLite's library-wide state,
    # whichever file; and a child must never close a connection to the test database.
    path = str(tmp_path / "child.sqlite3")
    sqlite3.connect(path).close()
    stop = threading.Event()

    def busy() -> None:
        # Another thread of the runner, in and out of SQLite all the time (a web request, the
        # monitor's heartbeat): its own connection, through Django.
        try:
            while not stop.is_set():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM scheduled_tasks_scheduledtask")
                    cursor.fetchall()
                connection.close()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=busy) for _ in range(2)]
    for thread in threads:
        thread.start()
    pids = []
    try:
        for _ in range(FORKS):
            pid = forkgate.fork()
            if pid == 0:  # the child: its first SQLite calls, as a sandbox child's are
                try:
                    conn = sqlite3.connect(path, timeout=5)
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
                    conn.close()
                finally:
                    os._exit(0)
            pids.append(pid)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    deadline = time.monotonic() + CHILD_SECONDS
    hung = set(pids)
    while hung and time.monotonic() < deadline:
        for pid in list(hung):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                hung.discard(pid)
        time.sleep(0.05)
    for pid in hung:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert not hung, f"{len(hung)} of {FORKS} children hung in SQLite"
