"""Every query of the scheduler's hot paths is served by an index on a database as users have
it: created by the migrations, filled with rows, never analysed (no planner statistics).

The statements are not written out here. Each test calls the real functions (a tick, the
daemon's sleep calculation, the reaper, retries, hand-back, the leader lease) while
``connection.execute_wrapper`` records the SQL and parameters they send, then asks the
database how it would run each one: SQLite ``EXPLAIN QUERY PLAN`` (a ``SEARCH`` with a
constraint, never a ``SCAN`` of a scheduler table), PostgreSQL ``EXPLAIN`` (an index, bitmap
index or index-only scan with a condition, never a ``Seq Scan`` of a scheduler table); an
index read end to end counts as a full scan, except the one seek of a MIN. The hot queries
must use their named index.

Without statistics SQLite assumes every table is large, so its plans do not depend on the
rows. PostgreSQL plans from the tables' real sizes and default selectivities, and may rightly
prefer a sequential scan of a table of a few pages; so the rows here are a realistic amount
(``TASKS`` tasks, one in ten inactive, none due, and ``HISTORY`` finished runs), inserted in
the test's transaction where no autovacuum can analyse them, and no plan is forced with
``enable_seqscan = off``. The one exception is the leader lease's table, which holds a row per
lease name: there PostgreSQL's choice between a sequential and an index scan of one page does
not matter, so its statements are checked with sequential scans disabled, which proves that
an index can serve each of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection
from django.test import TestCase

from scheduled_tasks import claims, leader, leases, records, retries, runner
from scheduled_tasks.models import Execution, ScheduledTask, SchedulerLease
from scheduled_tasks.sandbox import SnippetResult
from tests.factories import T0

TASKS = 10_000
HISTORY = 20_000
NOW = T0 + timedelta(days=30)

TASK_TABLE = ScheduledTask._meta.db_table
EXECUTION_TABLE = Execution._meta.db_table
LEASE_TABLE = SchedulerLease._meta.db_table
TABLES = (TASK_TABLE, EXECUTION_TABLE, LEASE_TABLE)
# The execution indexes that lead with the status: (status, lease_expires_at) and
# (status, not_before). Either serves a query on pending or running runs; the planner picks.
STATUS_INDEXES = {"sched_exec_status", "sched_exec_pending"}


@dataclass
class Access:
    table: str
    index: str | None  # None: the table itself is read from end to end


@dataclass
class Statement:
    sql: str
    params: Any
    accesses: list[Access] = field(default_factory=list)

    def indexes(self, table: str) -> set[str | None]:
        return {a.index for a in self.accesses if a.table == table}

    def __str__(self) -> str:
        plan = ", ".join(f"{a.table}: {a.index or 'FULL SCAN'}" for a in self.accesses)
        return f"{self.sql}\n    params {self.params!r}\n    plan   {plan}"


@contextmanager
def recording() -> Iterator[list[Statement]]:
    """The SELECT, UPDATE and DELETE statements sent to the scheduler's tables, as sent."""
    statements: list[Statement] = []

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if many:
            params = [list(p) for p in params]
        if re.match(r"\s*(SELECT|UPDATE|DELETE)\b", sql, re.IGNORECASE) and any(
            table in sql for table in TABLES
        ):
            statements.append(Statement(sql, params[0] if many else params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield statements


# --- reading plans -------------------------------------------------------------------------

_SQLITE_ACCESS = re.compile(r"^(SEARCH|SCAN) (\w+)(?: AS \w+)?(?: USING (.*))?$")


def _sqlite_accesses(statement: Statement) -> list[Access]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + statement.sql, statement.params)
        details = [row[3] for row in cursor.fetchall()]
    accesses = []
    for detail in details:
        match = _SQLITE_ACCESS.match(detail)
        if match is None or match[2] not in TABLES:
            continue  # temp b-trees for ORDER BY, subquery headers, constant rows
        how, table, using = match[1], match[2], match[3] or ""
        if how == "SCAN":
            accesses.append(Access(table, None))  # the table, or a whole index, end to end
        elif "PRIMARY KEY" in using:
            accesses.append(Access(table, "pk"))
        else:
            index = re.search(r"INDEX (\w+)", using)[1]
            if "(" not in using and not _sqlite_min_max_seek(statement.sql, table, index):
                # A SEARCH with no constraint walks the whole index (what the MIN of the
                # daemon's sleep did through the old two-column index: 7 ms at 100 000 tasks).
                index = None
            accesses.append(Access(table, index))
    return accesses


def _sqlite_min_max_seek(sql: str, table: str, index: str) -> bool:
    """Whether an unconstrained index SEARCH is SQLite's min/max optimisation: one seek to
    the end of an index that leads with the aggregated column."""
    match = re.match(rf'SELECT (?:MIN|MAX)\("{table}"\."(\w+)"\)', sql)
    if match is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute(f'PRAGMA index_info("{index}")')
        first = next(row for row in cursor.fetchall() if row[0] == 0)
    return first[2] == match[1]


def _postgres_accesses(statement: Statement) -> list[Access]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement.sql, statement.params)
        plan = cursor.fetchone()[0][0]["Plan"]
    accesses: list[Access] = []

    def walk(node: dict[str, Any], relation: str | None, limited: bool) -> None:
        kind = node["Node Type"]
        table = node.get("Relation Name", relation)
        if kind == "Seq Scan" and table in TABLES:
            accesses.append(Access(table, None))
        elif kind in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
            index = node["Index Name"]
            if "Index Cond" not in node and not limited:
                index = None  # the whole index, end to end
            accesses.append(Access(table, "pk" if index and index.endswith("_pkey") else index))
        for child in node.get("Plans", []):
            # A bitmap index scan names no table: it feeds the bitmap heap scan above it.
            bitmap = kind in ("Bitmap Heap Scan", "BitmapAnd", "BitmapOr")
            walk(child, table if bitmap else None, limited or kind == "Limit")

    walk(plan, None, False)
    return accesses


def explain(statements: list[Statement]) -> list[Statement]:
    read = _sqlite_accesses if connection.vendor == "sqlite" else _postgres_accesses
    for statement in statements:
        statement.accesses = read(statement)
    return statements


def assert_all_indexed(statements: list[Statement]) -> None:
    assert statements, "nothing was recorded"
    for statement in statements:
        assert statement.accesses, f"no table access found in the plan of\n{statement}"
        assert all(a.index for a in statement.accesses), f"a full scan:\n{statement}"


def the(statements: list[Statement], table: str, *fragments: str) -> Statement:
    """The one recorded statement on ``table`` whose SQL holds every fragment (the tick's
    combined "anything to do?" statement aside)."""
    found = [
        s
        for s in statements
        if not s.sql.startswith("SELECT EXISTS")
        and re.match(rf'\s*(SELECT .*? FROM|UPDATE|DELETE FROM) "{table}"', s.sql, re.DOTALL)
        and all(f in s.sql for f in fragments)
    ]
    assert len(found) == 1, (table, fragments, [s.sql for s in statements])
    return found[0]


def instant(*args: object, **kwargs: object) -> SnippetResult:
    return SnippetResult("completed", "", "", 0.0)


def failing(*args: object, **kwargs: object) -> SnippetResult:
    return SnippetResult("failed", "", "boom", 0.0)


def clock() -> Callable[[], Any]:
    return lambda: NOW


# --- the data: a database as users have it -------------------------------------------------


class QueryPlanTests(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        future = NOW + timedelta(hours=1)
        ScheduledTask.objects.bulk_create(
            [
                ScheduledTask(
                    name=f"plan-{i:05d}",
                    code="print('hello')",
                    every=1,
                    unit="hours",
                    anchor=T0,
                    is_active=i % 10 != 0,
                    next_run_at=future + timedelta(seconds=i) if i % 10 else None,
                    max_retries=2,
                )
                for i in range(TASKS)
            ],
            batch_size=1000,
        )
        ids = list(ScheduledTask.objects.values_list("pk", flat=True))
        Execution.objects.bulk_create(
            [
                Execution(
                    task_id=ids[i % len(ids)],
                    status=Execution.Status.COMPLETED,
                    trigger=Execution.Trigger.SCHEDULE,
                    scheduled_for=NOW - timedelta(hours=1 + i // len(ids)),
                    started_at=NOW - timedelta(hours=1 + i // len(ids)),
                    finished_at=NOW - timedelta(hours=1 + i // len(ids)),
                    duration_seconds=0.01,
                    runner="host:1",
                    created_at=NOW - timedelta(hours=1 + i // len(ids)),
                )
                for i in range(HISTORY)
            ],
            batch_size=1000,
        )
        cls.task_ids = ids

    def test_the_database_has_no_planner_statistics(self) -> None:
        # What users have after ``migrate`` and their inserts, and what every test here plans
        # with: nothing has run ANALYZE.
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'")
                if cursor.fetchone()[0]:
                    cursor.execute(
                        "SELECT count(*) FROM sqlite_stat1 WHERE tbl IN (%s, %s, %s)", TABLES
                    )
                    assert cursor.fetchone()[0] == 0
            else:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_user_tables "
                    "WHERE relname IN (%s, %s, %s) AND last_autoanalyze IS NOT NULL",
                    TABLES,
                )
                if cursor.fetchone()[0]:
                    self.skipTest("autovacuum analysed rows other tests committed")
                cursor.execute(
                    "SELECT count(*) FROM pg_stats WHERE tablename IN (%s, %s, %s)", TABLES
                )
                assert cursor.fetchone()[0] == 0

    def test_an_idle_tick_is_one_statement_read_from_the_indexes(self) -> None:
        with recording() as statements:
            report = runner.tick(NOW, clock=clock(), snippet_executor=instant)
        assert report.executions == []
        explain(statements)
        assert_all_indexed(statements)
        (check,) = statements  # stale leases, due slots and due retries, asked at once
        assert check.sql.startswith("SELECT EXISTS")
        for fragment in ('"next_run_at" BETWEEN', '"lease_expires_at" <=', '"not_before" <='):
            assert fragment in check.sql
        assert check.indexes(TASK_TABLE) == {"sched_task_active_due"}, str(check)
        # Two reads of the execution table (stale leases, due retries), by a status index.
        executions = [a for a in check.accesses if a.table == EXECUTION_TABLE]
        assert len(executions) == 2, str(check)
        assert {a.index for a in executions} <= STATUS_INDEXES, str(check)

    def test_the_daemons_next_due_moment_is_read_from_the_indexes(self) -> None:
        with recording() as statements:
            assert runner.next_due_at(NOW) == NOW + timedelta(hours=1, seconds=1)
        explain(statements)
        assert_all_indexed(statements)
        slot = the(statements, TASK_TABLE, "MIN(")
        assert slot.indexes(TASK_TABLE) == {"sched_task_active_due"}, str(slot)
        retry = the(statements, EXECUTION_TABLE, "MIN(")
        assert retry.indexes(EXECUTION_TABLE) <= STATUS_INDEXES, str(retry)

    def test_a_busy_tick_reaps_retries_claims_and_records_through_indexes(self) -> None:
        due, crashed, unstarted, retried = self.task_ids[1:4], *self.task_ids[5:8]
        ScheduledTask.objects.filter(pk__in=due).update(next_run_at=NOW - timedelta(minutes=5))
        expired = NOW - timedelta(minutes=1)
        Execution.objects.create(
            task_id=crashed, status="running", started_at=expired, lease_expires_at=expired
        )
        Execution.objects.create(task_id=unstarted, status="pending", lease_expires_at=expired)
        Execution.objects.create(
            task_id=retried,
            status="pending",
            trigger=Execution.Trigger.RETRY,
            attempt=2,
            not_before=NOW - timedelta(seconds=30),
        )
        with recording() as statements:
            report = runner.tick(NOW, clock=clock(), snippet_executor=failing)
        assert report.abandoned == 1
        assert len(report.executions) == 5  # 3 slots, the retry, the claim handed back
        explain(statements)
        assert_all_indexed(statements)
        stale = the(statements, EXECUTION_TABLE, "SELECT", '"lease_expires_at" <=')
        assert stale.indexes(EXECUTION_TABLE) <= STATUS_INDEXES, str(stale)
        slots = the(statements, TASK_TABLE, '"next_run_at" BETWEEN')
        assert slots.indexes(TASK_TABLE) == {"sched_task_active_due"}, str(slots)

    def test_runs_leases_retries_and_hand_back_go_through_indexes(self) -> None:
        task = ScheduledTask.objects.get(pk=self.task_ids[1])
        with recording() as statements:
            claim = claims.claim_manual(task, NOW, runner="me:1")  # "Run now"
            assert leases.renew_lease(claim.execution.pk, NOW)  # a run's heartbeat
            assert leases.renew_leases("me:1", NOW) == 1
            records.finish(claim.execution, failing(), NOW)
            retry = retries.schedule_retry(claim.execution, task, NOW)
            assert retry is not None
            assert retries.cancel_retries_of(claim.execution, NOW) == 1  # completed after all
            ScheduledTask.objects.filter(pk=task.pk).update(next_run_at=NOW)
            queued = claims.claim_slots([claims.Slot(task.pk, NOW)], clock(), runner="me:1")
            assert leases.release(queued.claims, NOW) == 1  # shutdown: hand the claim back
        explain(statements)
        assert_all_indexed(statements)
        renew = the(statements, EXECUTION_TABLE, '"runner" =', '"lease_expires_at" IS NOT NULL')
        assert renew.indexes(EXECUTION_TABLE) <= STATUS_INDEXES, str(renew)

    def test_the_leader_lease_is_taken_renewed_and_handed_over_through_its_index(self) -> None:
        with recording() as statements:
            assert leader.acquire("embedded", "a", NOW, 30)
            assert leader.renew("embedded", "a", NOW, 30)
            assert not leader.acquire("embedded", "b", NOW, 30)
            assert leader.holder_of("embedded", NOW) == "a"
            later = NOW + timedelta(seconds=31)
            assert leader.acquire("embedded", "b", later, 30)  # a stopped renewing: takeover
            assert not leader.renew("embedded", "a", later, 30)
            assert leader.release("embedded", "b")
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # One row per lease name: whether PostgreSQL reads its one page or the index
                # is its business; prove that the index can serve every statement.
                cursor.execute("SET enable_seqscan = off")
            try:
                explain(statements)
            finally:
                if connection.vendor == "postgresql":
                    cursor.execute("RESET enable_seqscan")
        assert_all_indexed(statements)
