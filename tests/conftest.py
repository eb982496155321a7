"""Shared fixtures and helpers: subprocesses against the test database, the engine's fake
sandbox and clock, and the web pages' logged-in clients."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from scheduled_tasks import runner
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.sandbox import SnippetResult
from tests.factories import T0, VIEWER_PERMS, make_editor, make_user


@pytest.fixture
def now() -> datetime:
    """A fixed 'now' for domain functions, which take the time as an argument."""
    return T0


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def sandbox_database_role(request: pytest.FixtureRequest) -> Iterator[None]:
    """PostgreSQL runs: the role snippets connect as (SANDBOX_DATABASE_URL), synced after the
    migrations and dropped at the end."""
    from django.conf import settings

    role = getattr(settings, "SANDBOX_TEST_ROLE", None)
    if role is None:
        yield
        return
    request.getfixturevalue("django_db_setup")
    blocker = request.getfixturevalue("django_db_blocker")
    from django.core.management import call_command
    from django.db import connection

    with blocker.unblock():
        call_command(
            "sync_sandbox_role",
            role=role,
            password=settings.SANDBOX_TEST_PASSWORD,
            stdout=io.StringIO(),
        )
    yield
    from scheduled_tasks.sandbox import spares

    spares.discard_all()  # their sessions are the role's
    with blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(f'DROP OWNED BY "{role}"')
        cursor.execute(f'DROP ROLE "{role}"')


@pytest.fixture(autouse=True)
def charts_only_from_the_test_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runner's monitor thread recomputes the dashboard's charts on a database connection of
    its own: in a test that runs in a transaction, the row it stores (at the test's frozen
    clock) would be committed and outlive the test, and a later test would read those charts
    as fresh. Threads other than the test's own leave the charts alone here; the refresh
    itself is tested directly (tests/test_chart_snapshot.py)."""
    import threading

    from scheduled_tasks import chart_snapshot

    refresh_if_due = chart_snapshot.refresh_if_due
    main = threading.main_thread()

    def from_the_test_thread_only(now: datetime) -> bool:
        return refresh_if_due(now) if threading.current_thread() is main else False

    monkeypatch.setattr(chart_snapshot, "refresh_if_due", from_the_test_thread_only)


def database_url_for_subprocess() -> str:
    """A DATABASE_URL pointing child processes at the database the tests are using."""
    from django.db import connection

    cfg = connection.settings_dict
    if cfg["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{cfg['NAME']}"
    user = cfg.get("USER") or ""
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = cfg.get("HOST") or "127.0.0.1"
    port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{cfg['NAME']}"


def run_manage(
    *args: str, input: str | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` in a real process against the test database."""
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url_for_subprocess(),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=full_env,
        check=False,
    )


def start_manage(*args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url_for_subprocess(),
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


# --- the engine through tick(): an injected clock and a fake sandbox -----------------------


class Clock:
    """An injected clock a test (or a fake sandbox) moves by hand."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


class FakeSandbox:
    """Stands in for run_snippet (call it) and run_function (``.function``).

    Answers with the statuses queued in ``outcomes`` (then "completed"); ``during`` is called
    with the options while the "run" is in progress, to act as the world would meanwhile.
    """

    def __init__(self, *outcomes: str, during=None) -> None:
        self.outcomes = list(outcomes)
        self.during = during
        self.calls: list[tuple[str, object, dict]] = []

    def _answer(self, what: str, options: dict) -> SnippetResult:
        if self.during is not None:
            self.during(options)
        status = self.outcomes.pop(0) if self.outcomes else "completed"
        error = "" if status == "completed" else f"it {status}"
        return SnippetResult(status, f"ran {what}\n", error, 0.01)

    def __call__(self, code: str, **options: object) -> SnippetResult:
        self.calls.append(("snippet", code, options))
        return self._answer(code, options)

    def function(self, name: str, params: dict, **options: object) -> SnippetResult:
        self.calls.append(("function", (name, params), options))
        return self._answer(name, options)

    @property
    def ran(self) -> list[object]:
        return [what for _, what, _ in self.calls]


def tick(now: datetime, sandbox: FakeSandbox | None = None, clock=None) -> runner.TickReport:
    sandbox = sandbox or FakeSandbox()
    return runner.tick(
        now,
        clock=clock or Clock(now),
        snippet_executor=sandbox,
        function_executor=sandbox.function,
    )


def reload(task: ScheduledTask) -> ScheduledTask:
    task.refresh_from_db()
    return task


# --- the web pages -------------------------------------------------------------------------


@pytest.fixture
def viewer_client(client: Client) -> Client:
    client.force_login(make_user("viewer", perms=VIEWER_PERMS))
    return client


@pytest.fixture
def editor() -> Any:
    return make_editor("editor")


@pytest.fixture
def editor_client(client: Client, editor: Any) -> Client:
    client.force_login(editor)
    return client


def message_texts(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def snapshot(task: ScheduledTask) -> dict[str, Any]:
    task.refresh_from_db()
    return {
        f.name: getattr(task, f.attname)
        for f in ScheduledTask._meta.concrete_fields
        if f.name != "updated_at"
    }
