"""SQLite under concurrency: several sandbox children writing at once, the runner recording their
results and another process writing beside them never fail with "database is locked" (WAL, a
busy timeout, IMMEDIATE write transactions). Real processes against the test database."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from scheduled_tasks.models import Execution
from scheduled_tasks.sandbox import confine
from scheduled_tasks.sandbox.isolation import Limits, OutputChannel, run_in_child
from tests.conftest import start_manage
from tests.factories import make_task
from ticketproo.crm.models import Ticket

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WRITERS = 4
WRITES_PER_SNIPPET = 200  # half updates of one ticket, half new tickets
LOCKED = "database is locked"


def sqlite_only() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: its whole database has one write lock")


def writer_snippet(n: int) -> str:
    half = WRITES_PER_SNIPPET // 2
    everyone = [f"writer-{i}" for i in range(WRITERS)]
    return (
        f"t = Ticket.objects.create(title='writer-{n}', description='0')\n"
        # A barrier: no writer starts before all four children are up, so they do overlap.
        "for _ in range(1000000):\n"
        f"    if Ticket.objects.filter(title__in={everyone!r}).count() == {WRITERS}:\n"
        "        break\n"
        f"for i in range({half}):\n"
        "    Ticket.objects.filter(pk=t.pk).update(description=str(i + 1))\n"
        f"    Ticket.objects.create(title='writer-{n}-' + str(i), description='row')\n"
        "print('done', Ticket.objects.filter(pk=t.pk).values_list('description', flat=True)[0])\n"
    )


def test_four_sandboxed_writers_the_runner_and_the_web_never_meet_a_locked_database():
    sqlite_only()
    now = timezone.now()
    for n in range(WRITERS):
        make_task(
            name=f"writer-{n}",
            code=writer_snippet(n),
            every=1,
            unit="days",
            next_run_at=now - timedelta(seconds=1),
            timeout_seconds=120,
        )
    runner = start_manage("run_scheduled_tasks", "--concurrency", str(WRITERS))
    ours = 0
    deadline = time.monotonic() + 300
    # This process stands for the web server: it writes while the children and the runner do.
    while runner.poll() is None and time.monotonic() < deadline:
        Ticket.objects.create(title=f"web-{ours}", description="web")
        ours += 1
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    assert LOCKED not in out + err

    runs = list(Execution.objects.select_related("task").order_by("task__name"))
    assert [e.task.name for e in runs] == [f"writer-{n}" for n in range(WRITERS)]
    problems = [(e.task.name, e.status, e.error) for e in runs if e.status != "completed"]
    assert not problems
    assert not [e for e in runs if LOCKED in e.error or LOCKED in e.output]
    half = WRITES_PER_SNIPPET // 2
    assert all(e.output == f"done {half}\n" for e in runs), [e.output for e in runs]
    for n in range(WRITERS):
        assert Ticket.objects.get(title=f"writer-{n}").description == str(half)
        assert Ticket.objects.filter(title__startswith=f"writer-{n}-").count() == half
    assert Ticket.objects.filter(description="web").count() == ours > 0


def pragmas() -> dict[str, Any]:
    from django.db import connection as own

    with own.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal = cursor.fetchone()[0]
        cursor.execute("PRAGMA busy_timeout")
        busy = cursor.fetchone()[0]
    return {"journal_mode": journal, "busy_timeout": busy}


def test_the_runners_connection_is_wal_with_a_busy_timeout():
    sqlite_only()
    assert pragmas()["journal_mode"] == "wal"
    assert pragmas()["busy_timeout"] >= 5000
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


LIMITS = Limits(timeout=20, max_output_bytes=10_000, max_memory_mb=256)


def report_pragmas(channel: OutputChannel) -> tuple[str, str]:
    channel.write(json.dumps(pragmas()))
    return "completed", ""


def test_a_sandbox_childs_own_connection_is_wal_with_a_busy_timeout():
    sqlite_only()
    outcome = run_in_child(report_pragmas, LIMITS)
    assert outcome.status == "completed", outcome.error
    seen = json.loads(outcome.output)
    assert seen["journal_mode"] == "wal"
    assert seen["busy_timeout"] >= 5000


# Set in the child by ``pragmas_then_confine`` (its prepare step), read by its target.
_BEFORE_CONFINEMENT: dict[str, Any] = {}


def pragmas_then_confine() -> None:
    # The connection the snippet will use is opened here, read, then confined as for a snippet.
    _BEFORE_CONFINEMENT.update(pragmas())
    confine.confine_snippet_process()


def report_confined(channel: OutputChannel) -> tuple[str, str]:
    try:
        after: Any = pragmas()
    except Exception as exc:
        after = f"refused: {type(exc).__name__}: {exc}"
    channel.write(json.dumps({"before": _BEFORE_CONFINEMENT, "after": after}))
    return "completed", ""


def test_a_confined_childs_connection_is_wal_with_a_busy_timeout():
    sqlite_only()
    outcome = run_in_child(report_confined, LIMITS, prepare=pragmas_then_confine)
    assert outcome.status == "completed", outcome.error
    seen = json.loads(outcome.output)
    assert seen["before"]["journal_mode"] == "wal"
    assert seen["before"]["busy_timeout"] >= 5000
    # Once confined, the authorizer refuses PRAGMA to the snippet's connection; if it answers,
    # the answer must be the same.
    if not isinstance(seen["after"], str):
        assert (seen["after"]["journal_mode"], seen["after"]["busy_timeout"]) == (
            "wal",
            seen["before"]["busy_timeout"],
        )
