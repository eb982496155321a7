"""Scheduler overhead of one tick (select due work, claim it, record it; the snippet itself
is an instant fake) with 1 000, 10 000 and 100 000 active tasks of which 0 or 100 are due,
on SQLite and PostgreSQL, beside the naive loop over every task in Python.

Usage: python bench/tick.py [--sizes 1000,10000,100000] [--backends sqlite,postgres]
                            [--reps N] [--no-write]
Uses its own databases: a SQLite file under /tmp and a PostgreSQL database ``ticketproo_bench``
(created and dropped here; server from $BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432). Writes the "Tick overhead" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import machine, setup_django, write_section

DUE = 100
SQLITE_FILE = Path(tempfile.gettempdir()) / "ticketproo_bench.sqlite3"
LOG_FILE = Path(tempfile.gettempdir()) / "ticketproo_bench.log"
PG_SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
PG_DB = "ticketproo_bench"
TARGET_MS = 50.0
IDLE_TARGET_MS = 2.0  # an idle tick with the largest task count
IDLE_GROWTH = 1.5  # ... and at most this many times the idle tick with the smallest
# Idle ticks: the lowest of IDLE_ROUNDS medians of IDLE_REPS ticks a second apart, so that a
# moment of other work on the machine (a shared 2-core VM) does not decide a figure.
IDLE_ROUNDS, IDLE_REPS = 5, 50


# --- the parent: one worker process per backend, then the report ---------------------------


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _run_worker(backend: str, args: argparse.Namespace) -> dict:
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SQLITE_FILE}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{SQLITE_FILE}"
    else:
        _pg_admin(f"DROP DATABASE IF EXISTS {PG_DB}")
        _pg_admin(f"CREATE DATABASE {PG_DB}")
        url = f"{PG_SERVER}/{PG_DB}"
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        try:
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    backend,
                    "--sizes",
                    args.sizes,
                    "--reps",
                    str(args.reps),
                    "--json-out",
                    out.name,
                ],
                env={**os.environ, "DATABASE_URL": url},
                check=True,
            )
        finally:
            if backend == "sqlite":
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{SQLITE_FILE}{suffix}").unlink(missing_ok=True)
            else:
                _pg_admin(f"DROP DATABASE IF EXISTS {PG_DB}")
        return json.load(out)


def _count(n: int | str) -> str:
    return f"{int(n):,}".replace(",", " ")


def _report(results: dict[str, dict], reps: int) -> str:
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    rows = []
    verdicts = []
    for backend, data in results.items():
        for n, m in data["sizes"].items():
            rows.append(
                f"| {names[backend]} | {_count(n)} | {m['tick_0']:.2f} ms ({m['queries_0']} q) "
                f"| {m['claim_100']:.1f} ms "
                f"| {m['tick_100']:.1f} ms ({m['queries_100']} q) "
                f"| {m['naive']:.0f} ms |"
            )
        sizes = sorted(data["sizes"], key=int)
        small, large = data["sizes"][sizes[0]], data["sizes"][sizes[-1]]
        claim, full = large["claim_100"], large["tick_100"]
        verdicts.append(
            f"{names[backend]}, {_count(sizes[-1])} tasks and {DUE} due: finding and claiming "
            f"{claim:.1f} ms, full tick {full:.1f} ms ({full / DUE:.2f} ms per due task) — "
            f"{'meets' if claim <= TARGET_MS else 'MISSES'} the {TARGET_MS:.0f} ms target. "
            f"Between {_count(sizes[0])} and {_count(sizes[-1])} tasks the idle tick moves by "
            f"{large['tick_0'] - small['tick_0']:+.2f} ms and the 100-due tick by "
            f"{full - small['tick_100']:+.1f} ms; the naive loop grows "
            f"{large['naive'] / small['naive']:.0f}-fold."
        )
        idle, growth = large["tick_0"], large["tick_0"] / small["tick_0"]
        meets = idle <= IDLE_TARGET_MS and growth <= IDLE_GROWTH
        verdicts.append(
            f"{names[backend]}, idle tick: {idle:.2f} ms with {_count(sizes[-1])} tasks, "
            f"{growth:.2f} x the {small['tick_0']:.2f} ms with {_count(sizes[0])} — "
            f"{'meets' if meets else 'MISSES'} the idle targets "
            f"(≤ {IDLE_TARGET_MS:.0f} ms, ≤ {IDLE_GROWTH} x)."
        )
    versions = ", ".join(f"{names[b]} {d['version']}" for b, d in results.items())
    loads = [x for d in results.values() for x in d["load"]]
    header = (
        "| database | active tasks | tick, 0 due | select + claim, 100 due "
        "| full tick, 100 due | naive loop |"
    )
    return f"""One `runner.tick(now)` with an instant fake sandbox, so the figures are the
scheduler's own work: reap stale leases, select due slots and retries (one indexed query each),
claim the due slots in batches of 50 (per batch one transaction: row locks / `BEGIN IMMEDIATE`,
one multi-row task update, one bulk insert of executions), then start, record and log each run.
"Select + claim" is the first half alone (reap, the due queries, the claim batches), without
starting or recording the runs. Tasks are hourly interval tasks; the due
ones are re-armed to a new slot between repetitions. Median of {reps} ticks (100 due); 0 due:
the lowest of {IDLE_ROUNDS} medians of {IDLE_REPS} ticks a second apart, so that a moment of
other work on the machine does not decide the figure. "q" is the number of SQL queries of one
tick. The naive loop loads every active task through the ORM and checks
`last_run_at + interval <= now` in Python, as a scheduler without an indexed next-run time
must (median of 3).
The databases are as users have them: created by `migrate`, filled by inserts and never
analysed, so the planner has no statistics (no `ANALYZE`; PostgreSQL's autovacuum is off for
the two tables, and a plain `VACUUM`, which gathers none, clears the dead rows the re-arming
leaves before each size); `tests/test_query_plans.py` checks the plans in that state.
{machine()}, {versions}, {date.today().isoformat()}, 1-minute load average {min(loads):.1f} to
{max(loads):.1f} during the run. Command: `python bench/tick.py`.

{header}
| --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

Targets: the tick grows with the due count, not the task count; at most {TARGET_MS:.0f} ms with
100 000 tasks and 100 due; an idle tick at most {IDLE_TARGET_MS:.0f} ms with 100 000 tasks and
at most {IDLE_GROWTH} x its cost with 1 000. An idle tick is one statement: three indexed
`EXISTS` (stale leases, due slots, due retries) whose database work does not grow with the task
count; what it costs is the ORM building them and, on PostgreSQL, one round trip to the server.
A busy tick sends that statement first, then the three queries themselves.

{chr(10).join(f"- {v}" for v in verdicts)}
"""


# --- the worker: one backend, Django configured for it -------------------------------------


def _instant(*args: object, **kwargs: object):
    from scheduled_tasks.sandbox import SnippetResult

    return SnippetResult("completed", "", "", 0.0)


def _quiet_log_file() -> None:
    """Keep the runner's log lines (they are part of a tick's cost) out of the project's log."""
    for handler in logging.getLogger("scheduled_tasks").handlers:
        if isinstance(handler, logging.FileHandler):
            handler.close()
            handler.baseFilename = str(LOG_FILE)


def _has_statistics(backend: str) -> bool:
    """Whether the planner has statistics on the scheduler's tables (ANALYZE ran)."""
    from django.db import connection

    tables = ("scheduled_tasks_scheduledtask", "scheduled_tasks_execution")
    with connection.cursor() as cursor:
        if backend == "postgres":
            cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename IN (%s, %s)", tables)
            return bool(cursor.fetchone()[0])
        cursor.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'")
        if not cursor.fetchone()[0]:
            return False
        cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl IN (%s, %s)", tables)
        return bool(cursor.fetchone()[0])


def _worker(backend: str, sizes: list[int], reps: int) -> dict:
    setup_django()
    from dateutil.relativedelta import relativedelta
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from scheduled_tasks import claims, leases, runner
    from scheduled_tasks.models import Execution, ScheduledTask

    _quiet_log_file()
    loads = [os.getloadavg()[0]]  # other work on the machine shows in every figure
    call_command("migrate", verbosity=0)
    if backend == "postgres":
        # Autovacuum would analyse the tables at some moment of the run (after enough
        # inserts); keep the whole run in the state of a database nobody has analysed yet.
        with connection.cursor() as cursor:
            for model in (ScheduledTask, Execution):
                cursor.execute(
                    f"ALTER TABLE {model._meta.db_table} SET (autovacuum_enabled = false)"
                )
    with connection.cursor() as cursor:
        cursor.execute("select sqlite_version()" if backend == "sqlite" else "show server_version")
        version = cursor.fetchone()[0].split(" ")[0]

    start = timezone.now()
    anchor = start.replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    future = anchor + timedelta(days=2)  # next slot of the idle tasks: never due here
    slot_counter = iter(range(1, 10**9))

    def add_tasks(upto: int) -> None:
        have = ScheduledTask.objects.count()
        batch = [
            ScheduledTask(
                name=f"bench-{i:06d}",
                code="pass",
                every=1,
                unit="hours",
                anchor=anchor,
                next_run_at=future,
                last_run_at=future - timedelta(hours=1),
            )
            for i in range(have, upto)
        ]
        ScheduledTask.objects.bulk_create(batch, batch_size=2000)

    def arm(due_ids: list[int]) -> None:
        # A fresh slot each time: (task, scheduled_for) is unique.
        slot = timezone.now() - timedelta(minutes=10) - timedelta(seconds=next(slot_counter))
        Execution.objects.all().delete()
        ScheduledTask.objects.filter(pk__in=due_ids).update(
            next_run_at=slot, last_run_at=slot - timedelta(hours=1)
        )

    def disarm() -> None:
        ScheduledTask.objects.filter(next_run_at__lte=timezone.now()).update(
            next_run_at=future, last_run_at=future - timedelta(hours=1)
        )

    def one_tick(expect: int) -> float:
        t0 = time.perf_counter()
        report = runner.tick(timezone.now(), snippet_executor=_instant, function_executor=_instant)
        elapsed = (time.perf_counter() - t0) * 1000
        assert len(report.executions) == expect, (len(report.executions), expect)
        return elapsed

    def select_and_claim(expect: int) -> float:
        # The first half of tick(): reap, select due work, claim it (no run, no recording).
        t0 = time.perf_counter()
        now = timezone.now()
        leases.reap_abandoned(now)
        work = runner.due_work(now)
        slots = [claims.Slot(w.task_id, w.slot) for w in work if w.slot]
        claimed = []
        for i in range(0, len(slots), runner.CLAIM_BATCH):  # as tick() does
            batch = slots[i : i + runner.CLAIM_BATCH]
            claimed += claims.claim_slots(batch, timezone.now, start=True).claims
        elapsed = (time.perf_counter() - t0) * 1000
        assert len(claimed) == expect
        return elapsed

    def naive() -> float:
        t0 = time.perf_counter()
        now = timezone.now()
        due = [
            task
            for task in ScheduledTask.objects.filter(is_active=True)
            if task.last_run_at is None
            or task.last_run_at + relativedelta(**{task.unit: task.every}) <= now
        ]
        elapsed = (time.perf_counter() - t0) * 1000
        assert len(due) == 0
        return elapsed

    results: dict[str, dict] = {}
    for size in sizes:
        add_tasks(size)
        due_ids = list(ScheduledTask.objects.order_by("pk").values_list("pk", flat=True)[:DUE])
        disarm()
        if backend == "postgres":
            # The dead rows the previous size's re-arming left (autovacuum is off) would
            # slow every index scan; a plain VACUUM clears them, gathering no statistics.
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM {ScheduledTask._meta.db_table}, {Execution._meta.db_table}")
        # As users have it: no ANALYZE before measuring, so the planner has no statistics.
        assert not _has_statistics(backend), "the bench tables were analysed"
        for _ in range(3):  # warm-up: caches, prepared plans
            one_tick(0)
        idle_rounds = []
        for _ in range(IDLE_ROUNDS):
            idle_rounds.append(statistics.median(one_tick(0) for _ in range(IDLE_REPS)))
            time.sleep(1)
        with CaptureQueriesContext(connection) as q0:
            one_tick(0)
        busy, claim_only = [], []
        for _ in range(reps + 1):
            arm(due_ids)
            busy.append(one_tick(DUE))
            arm(due_ids)
            claim_only.append(select_and_claim(DUE))
        busy, claim_only = busy[1:], claim_only[1:]  # the first ones warm the claim path
        arm(due_ids)
        with CaptureQueriesContext(connection) as q100:
            one_tick(DUE)
        Execution.objects.all().delete()
        naive_ms = [naive() for _ in range(3)]
        results[str(size)] = {
            "tick_0": min(idle_rounds),
            "tick_100": statistics.median(busy),
            "claim_100": statistics.median(claim_only),
            "queries_0": len(q0.captured_queries),
            "queries_100": len(q100.captured_queries),
            "naive": statistics.median(naive_ms),
        }
        loads.append(os.getloadavg()[0])
        print(f"{backend} {size:>7} tasks: {results[str(size)]}", flush=True)
    return {"version": version, "sizes": results, "load": [min(loads), max(loads)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sizes = [int(s) for s in args.sizes.split(",")]
        data = _worker(args.worker, sizes, args.reps)
        Path(args.json_out).write_text(json.dumps(data))
        return
    results = {backend: _run_worker(backend, args) for backend in args.backends.split(",")}
    body = _report(results, args.reps)
    print(body)
    if not args.no_write:
        write_section("Tick overhead", body)


if __name__ == "__main__":
    main()
