"""The whole confinement of a snippet's process, in the order run_snippet applies it.

The target is plain Python, as if a snippet had escaped every Python layer: what it can still
do is what the database wall, the scrubbed secrets and the OS layers leave it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection

from scheduled_tasks.sandbox import confine, oslayer, run_snippet
from scheduled_tasks.sandbox.isolation import Limits, OutputChannel, run_in_child
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

LIMITS = Limits(timeout=10, max_output_bytes=100_000, max_memory_mb=256)


def attempt(action: Any) -> str:
    try:
        value = action()
    except Exception as exc:
        return f"refused: {type(exc).__name__}"
    return f"done: {str(value)[:80]}"


def escaped(channel: OutputChannel) -> tuple[str, str]:
    from django.db import connection as child_connection

    def sql(query: str) -> Any:
        with child_connection.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchall()

    def read(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    report = {
        "ticket_titles": attempt(lambda: sql("SELECT title FROM crm_ticket")),
        "password_hashes": attempt(lambda: sql("SELECT password FROM auth_user")),
        "sessions": attempt(lambda: sql("SELECT * FROM django_session")),
        "exec": attempt(lambda: os.execv("/bin/true", ["true"])),  # noqa: S606 - the probe
        "fork": attempt(os.fork),
        "socket": attempt(lambda: socket.create_connection(("127.0.0.1", 5432), timeout=1)),
        "read_database_file": attempt(lambda: read(str(child_connection.settings_dict["NAME"]))),
        "read_parent_environ": attempt(lambda: read(f"/proc/{os.getppid()}/environ")),
        "write_project_file": attempt(lambda: open(ROOT / "escaped.txt", "w")),  # noqa: SIM115
        "secret_key": settings.SECRET_KEY,
    }
    channel.write(json.dumps(report))
    return "completed", ""


def test_an_escaped_snippet_finds_every_layer_closed(django_user_model):
    django_user_model.objects.create_user("alice", password="alice-pw")
    outcome = run_in_child(escaped, LIMITS, prepare=confine.confine_snippet_process)
    assert outcome.status == "completed", outcome.error
    report = json.loads(outcome.output)
    assert report.pop("ticket_titles").startswith("done")  # allowlisted: still works
    assert report.pop("secret_key") == "<not available in the sandbox>"
    if connection.vendor == "sqlite":
        # The database file is read through the connection only, never as a file.
        assert report["read_database_file"].startswith("refused")
    report.pop("read_database_file")
    assert all(value.startswith("refused") for value in report.values()), report
    assert not (ROOT / "escaped.txt").exists()


def test_the_runner_logs_the_layers_once(caplog, monkeypatch):
    monkeypatch.setattr(confine, "_announced", False)
    with caplog.at_level(logging.INFO, logger="scheduled_tasks.sandbox"):
        run_snippet("print(1)")
        run_snippet("print(2)")
    lines = [r.getMessage() for r in caplog.records if "sandbox OS layers" in r.getMessage()]
    assert len(lines) == 1
    assert oslayer.describe_layers() in lines[0]
    assert "database:" in lines[0]


def test_users_stay_readable_through_the_proxies_behind_the_wall():
    User.objects.create_user("bob", password="bob-pw")
    result = run_snippet("print([u.username for u in User.objects.all()])")
    assert (result.status, result.output) == ("completed", "['bob']\n"), result.error


def busy_in_the_database(channel: OutputChannel) -> tuple[str, str]:
    from django.db import connection as child_connection

    with child_connection.cursor() as cursor:
        # An escaped snippet lifts its own statement timeout and keeps the server busy.
        cursor.execute("SET statement_timeout = 0")
        cursor.execute("SELECT pg_sleep(60)")
    return "completed", ""


def test_the_session_of_a_killed_child_is_ended():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server session")
    from scheduled_tasks.sandbox import end_orphaned_session

    outcome = run_in_child(
        busy_in_the_database,
        Limits(timeout=1, max_output_bytes=1000, max_memory_mb=256),
        prepare=confine.confine_snippet_process,
    )
    assert outcome.status == "timeout" and not outcome.clean
    assert outcome.backend_pid is not None

    def sleeping() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [outcome.backend_pid]
            )
            return cursor.fetchone()[0] == 1

    assert sleeping(), "the killed child's statement goes on at the server"
    end_orphaned_session(outcome)
    deadline = time.monotonic() + 5
    while sleeping() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sleeping()


def test_a_clean_run_reports_its_session_and_leaves_nothing_to_end():
    outcome = run_in_child(escaped_nothing, LIMITS, prepare=confine.confine_snippet_process)
    assert outcome.clean
    assert (outcome.backend_pid is not None) == (connection.vendor == "postgresql")


def escaped_nothing(channel: OutputChannel) -> tuple[str, str]:
    return "completed", ""
