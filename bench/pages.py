"""The web pages at scale: the dashboard, the task list (plain and filtered), a task's page,
the list of all runs (plain and filtered) and a run's page, rendered through Django's test
client (URL routing, middleware, login, templates: what a browser's request costs the server,
network aside), first with a handful of rows, then with 10 000 tasks and 1 000 000 runs over
the last 30 days (the default history kept, ``CLEANUP_DAYS``), one task holding 100 000 of them.

Usage: python bench/pages.py [--backends sqlite,postgres] [--tasks 10000]
                             [--executions 1000000] [--reps N] [--no-write] [--keep]
Uses its own databases: a SQLite file under /tmp and a PostgreSQL database ``ticketproo_pages``
(created and dropped here; server from $BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432). ``--keep`` keeps them and reuses a filled one on the next
run (for working on a page; the figures written are from fresh databases). Writes the "Pages at
scale" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import machine, setup_django, write_section

SQLITE_FILE = Path(tempfile.gettempdir()) / "ticketproo_pages.sqlite3"
LOG_FILE = Path(tempfile.gettempdir()) / "ticketproo_pages.log"
PG_SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
PG_DB = "ticketproo_pages"
TARGET_MS = 300.0
GROWTH = 3.0
BIG_TASK_RUNS = 100_000
# A handful of rows: enough to fill each page once (a page of tasks, of runs, of a task's
# history), so that both databases render the same rows and the ratio is what size costs.
SMALL_TASKS, SMALL_RUNS = 50, 100
HISTORY = timedelta(days=30)
LOG_LINES = 50
OUTPUT = "".join(f"Processed batch {n}: 40 tickets updated, 2 contacts merged\n" for n in range(40))
STATUSES = [  # (status, weight) of the finished runs
    ("completed", 930),
    ("failed", 40),
    ("timeout", 8),
    ("cancelled", 5),
    ("abandoned", 2),
    ("skipped", 15),
]
TRIGGERS = [("schedule", 970), ("manual", 20), ("test", 10)]
PAGES = [
    ("dashboard", "/tasks/dashboard/"),
    ("task list", "/tasks/"),
    ("task list, failing, by last run", "/tasks/?status=problem&sort=-last_run"),
    ("task page (100 000 runs)", "/tasks/{big}/"),
    ("task page, failed runs", "/tasks/{big}/?status=failed"),
    ("all runs", "/tasks/executions/"),
    ("all runs, failed", "/tasks/executions/?status=failed"),
    ("run page", "/tasks/executions/{run}/"),
]
REQUIRED = {"dashboard", "task list", "task page (100 000 runs)", "run page"}


# --- the parent: one worker process per backend, then the report ---------------------------


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _drop(backend: str) -> None:
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SQLITE_FILE}{suffix}").unlink(missing_ok=True)
    else:
        _pg_admin(f"DROP DATABASE IF EXISTS {PG_DB}")


def _run_worker(backend: str, args: argparse.Namespace) -> dict:
    if not args.keep:
        _drop(backend)
    if backend == "sqlite":
        url = f"sqlite:///{SQLITE_FILE}"
    else:
        try:
            _pg_admin(f"CREATE DATABASE {PG_DB}")
        except Exception:
            if not args.keep:
                raise
        url = f"{PG_SERVER}/{PG_DB}"
    command = [sys.executable, __file__, "--worker", backend, "--tasks", str(args.tasks)]
    command += ["--executions", str(args.executions), "--reps", str(args.reps)]
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        try:
            subprocess.run(
                [*command, "--json-out", out.name],
                env={
                    **os.environ,
                    "DATABASE_URL": url,
                    "DEBUG": "false",
                    "ALLOWED_HOSTS": "testserver",
                },
                check=True,
            )
        finally:
            if not args.keep:
                _drop(backend)
        return json.load(out)


def _count(n: int | str) -> str:
    return f"{int(n):,}".replace(",", " ")


def _report(results: dict[str, dict], args: argparse.Namespace) -> str:
    refresh = next(iter(results.values()))["refresh_seconds"]
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    rows, verdicts = [], []
    for backend, data in results.items():
        misses = []
        for page, _ in PAGES:
            small, large = data["small"][page], data["large"][page]
            ratio = large["ms"] / small["ms"]
            rows.append(
                f"| {names[backend]} | {page} | {small['ms']:.1f} ms ({small['queries']} q) "
                f"| {large['ms']:.1f} ms ({large['queries']} q) | {ratio:.2f} x |"
            )
            if page in REQUIRED and (large["ms"] > TARGET_MS or ratio > GROWTH):
                misses.append(page)
        slowest = max(REQUIRED, key=lambda p: data["large"][p]["ms"])
        verdicts.append(
            f"{names[backend]}: the slowest of the four pages the target names is the "
            f"{slowest} at {data['large'][slowest]['ms']:.0f} ms — "
            + (
                "every one meets the targets."
                if not misses
                else f"MISSES the targets: {', '.join(misses)}."
            )
            + f" Filling the database took {data['fill_seconds']:.0f} s; recomputing the"
            f" dashboard's charts (a runner's monitor, every {refresh // 60} minutes) takes"
            f" {data['charts_ms']:.0f} ms."
        )
    versions = ", ".join(f"{names[b]} {d['version']}" for b, d in results.items())
    loads = [x for d in results.values() for x in d["load"]]
    scale = f"{_count(args.tasks)} tasks, {_count(args.executions)} runs"
    return f"""Each page rendered by Django's test client logged in as an administrator
(routing, middleware, session, templates; `DEBUG` off): first in a database with a handful of
rows, {SMALL_TASKS} tasks and {SMALL_RUNS} runs (enough to fill each page once, so both
databases render the same number of rows), then after filling the same database with
{_count(args.tasks)} tasks and {_count(args.executions)} runs recorded over the last 30 days
(`CLEANUP_DAYS` keeps 30), {_count(BIG_TASK_RUNS)} of them one task's (the task page's). Runs:
93 % completed, the rest failed, timed out, cancelled, abandoned or skipped; 3 % manual or test
runs; the run page's run has {LOG_LINES} log lines and 2 KB of output. Median of {args.reps}
requests after two warm-up requests; "q" is the page's number of SQL queries (pinned by
`tests/test_page_queries.py` and the pages' own tests). The dashboard reads its two charts as
the scheduler's monitor stores them (`scheduled_tasks/chart_snapshot.py`: recomputed every
{refresh // 60} minutes by a runner, or by the page when no runner did for
{2 * refresh // 60} minutes); its counts and lists are live. The databases are as users have them:
`migrate`, then ordinary inserts, never analysed (no `ANALYZE`; PostgreSQL's autovacuum off for
the scheduler's tables, and one plain `VACUUM` after the inserts, as autovacuum would have
run, which sets the visibility map and gathers no statistics).
{machine()}, {versions}, {date.today().isoformat()}, 1-minute load average
{min(loads):.1f} to {max(loads):.1f} during the run. Command: `python bench/pages.py`.

| database | page | handful of rows | {scale} | ratio |
| --- | --- | --- | --- | --- |
{chr(10).join(rows)}

Targets (dashboard, task list, task page, run page): under {TARGET_MS:.0f} ms at scale and at
most {GROWTH:.0f} x the time with a handful of rows.

{chr(10).join(f"- {v}" for v in verdicts)}
"""


# --- the worker: one backend, Django configured for it -------------------------------------


def _quiet_log_file() -> None:
    for handler in logging.getLogger("scheduled_tasks").handlers:
        if isinstance(handler, logging.FileHandler):
            handler.close()
            handler.baseFilename = str(LOG_FILE)


def _pick(rng: random.Random, weighted: list[tuple[str, int]], n: int) -> list[str]:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights=weights, k=n)


def _fill(n_tasks: int, n_runs: int, big_runs: int, seed: int) -> dict[str, int]:
    """Tasks and runs as a busy installation has them; returns the ids the pages need."""
    from django.db import transaction
    from django.utils import timezone

    from scheduled_tasks.models import Execution, ExecutionLogLine, ScheduledTask

    rng = random.Random(seed)
    now = timezone.now()
    have = ScheduledTask.objects.count()
    before = ScheduledTask.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    kinds = rng.choices(["interval", "cron", "once"], weights=[80, 18, 2], k=n_tasks - have)
    tasks = []
    for offset, kind in enumerate(kinds):
        i = have + offset
        task = ScheduledTask(
            name=f"{rng.choice(['Sync', 'Report', 'Cleanup', 'Notify', 'Import'])} "
            f"{rng.choice(['tickets', 'contacts', 'companies', 'invoices'])} {i:05d}",
            description="Keeps the CRM tidy." if i % 3 else "",
            code=f"n = Ticket.objects.count()\nprint('tickets', n, {i})",
            schedule_kind=kind,
            every=rng.choice([5, 10, 15, 30, 1, 2, 6, 12]),
            unit=rng.choice(["minutes", "hours"]) if kind == "interval" else "hours",
            cron_expression="*/15 * * * *" if kind == "cron" else "",
            anchor=now - HISTORY,
            run_at=now + timedelta(days=1) if kind == "once" else None,
            time_zone=rng.choice(["UTC", "Europe/Madrid", "America/New_York"]),
            is_active=rng.random() > 0.1,
            next_run_at=now + timedelta(seconds=rng.randint(1, 86_400)),
            priority=rng.choice([0, 0, 0, 5, -5]),
        )
        tasks.append(task)
    ScheduledTask.objects.bulk_create(tasks, batch_size=2000)
    ids = list(
        ScheduledTask.objects.filter(pk__gt=before).order_by("pk").values_list("pk", flat=True)
    )
    big = ids[0]
    others = ids[1:] if len(ids) > 1 else ids
    start = now - HISTORY
    step = HISTORY / (n_runs + 1)  # distinct instants: one slot per (task, time)
    latest: dict[int, tuple] = {}
    batch: list[Execution] = []
    big_share = big_runs / n_runs

    def flush() -> None:
        Execution.objects.bulk_create(batch, batch_size=5000)
        batch.clear()

    for n in range(n_runs):
        task_id = big if rng.random() < big_share else rng.choice(others)
        created = start + step * (n + 1)
        status = _pick(rng, STATUSES, 1)[0]
        trigger = _pick(rng, TRIGGERS, 1)[0]
        duration = None
        started = finished = None
        if status != "skipped":
            duration = round(rng.lognormvariate(0, 1) * (8 if task_id % 97 == 0 else 1), 3)
            started = created + timedelta(milliseconds=20)
            finished = min(started + timedelta(seconds=duration), now)
        else:
            finished = created
        batch.append(
            Execution(
                task_id=task_id,
                status=status,
                trigger=trigger,
                scheduled_for=created if trigger == "schedule" else None,
                started_at=started,
                finished_at=finished,
                duration_seconds=duration,
                runner="bench-host:4242" if status != "skipped" else "",
                output="tickets 120\n" if status == "completed" else "",
                error=(
                    "Traceback (most recent call last):\n  line 2, in <snippet>\n"
                    "ValueError: no such ticket"
                    if status == "failed"
                    else ""
                ),
                created_at=created,
            )
        )
        latest[task_id] = (created, status)
        if len(batch) >= 20_000:
            flush()
    flush()
    # Each task's latest run, as the claims leave it (one UPDATE per task, ordinary writes).
    with transaction.atomic():
        for task_id, (created, _) in latest.items():
            last = Execution.objects.filter(task_id=task_id, created_at=created).values("pk")[:1]
            ScheduledTask.objects.filter(pk=task_id).update(
                last_execution_id=last, last_run_at=created
            )
    run = _page_run(big, now)
    ExecutionLogLine.objects.bulk_create(
        ExecutionLogLine(execution=run, seq=s, at=now, level=20, message=f"step {s} done")
        for s in range(1, LOG_LINES + 1)
    )
    return {"big": big, "run": run.pk}


def _page_run(task_id: int, now) -> object:
    from scheduled_tasks.models import Execution

    return Execution.objects.create(
        task_id=task_id,
        status="completed",
        trigger="manual",
        started_at=now - timedelta(seconds=3),
        finished_at=now - timedelta(seconds=1),
        duration_seconds=2.0,
        runner="bench-host:4242",
        output=OUTPUT,
        created_at=now - timedelta(seconds=3),
    )


def _live_runs() -> None:
    """A few runs in progress and waiting, and a runner's heartbeat: what the dashboard lists."""
    from django.utils import timezone

    from scheduled_tasks.models import Execution, RunnerHeartbeat, ScheduledTask

    now = timezone.now()
    ids = list(ScheduledTask.objects.order_by("-pk").values_list("pk", flat=True)[:8])
    for n, task_id in enumerate(ids):
        Execution.objects.create(
            task_id=task_id,
            status="running" if n < 5 else "pending",
            trigger="manual",
            started_at=now if n < 5 else None,
            lease_expires_at=now + timedelta(hours=1) if n < 5 else None,
            runner="bench-host:4242" if n < 5 else "",
        )
    RunnerHeartbeat.objects.update_or_create(
        runner="bench-host:4242",
        defaults={"kind": "daemon", "last_seen_at": now, "started_at": now, "concurrency": 2},
    )


def _vacuum() -> None:
    """What autovacuum would have done by now, less its ANALYZE: a plain VACUUM sets the
    visibility map (so index-only scans need not visit the table) and gathers no statistics."""
    from django.db import connection

    from scheduled_tasks.models import Execution, ScheduledTask

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {ScheduledTask._meta.db_table}, {Execution._meta.db_table}")


def _charts_ms() -> float:
    """What a runner's monitor spends recomputing the dashboard's charts (median of 3)."""
    from django.utils import timezone

    from scheduled_tasks import chart_snapshot

    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        chart_snapshot.refresh(timezone.now())
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _measure(client, ids: dict[str, int], reps: int) -> dict[str, dict]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    results = {}
    for page, pattern in PAGES:
        url = pattern.format(**ids)
        for _ in range(2):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        results[page] = {"ms": statistics.median(times), "queries": len(queries.captured_queries)}
        print(f"  {page:<34} {results[page]['ms']:8.1f} ms {len(queries)} q", flush=True)
    return results


def _worker(backend: str, n_tasks: int, n_runs: int, reps: int) -> dict:
    setup_django()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from scheduled_tasks.models import Execution, ScheduledTask

    _quiet_log_file()
    loads = [os.getloadavg()[0]]
    call_command("migrate", verbosity=0)
    if backend == "postgres":
        with connection.cursor() as cursor:  # never analysed while the bench runs
            for model in (ScheduledTask, Execution):
                cursor.execute(
                    f"ALTER TABLE {model._meta.db_table} SET (autovacuum_enabled = false)"
                )
    with connection.cursor() as cursor:
        cursor.execute("select sqlite_version()" if backend == "sqlite" else "show server_version")
        version = cursor.fetchone()[0].split(" ")[0]
    admin, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(admin)
    result: dict = {"version": version}
    reused = Execution.objects.count() >= n_runs
    if not reused:
        ids = _fill(SMALL_TASKS, SMALL_RUNS, SMALL_RUNS // 2, seed=1)
        _live_runs()
        print(f"{backend}, {SMALL_TASKS} tasks and {SMALL_RUNS} runs:", flush=True)
        result["small"] = _measure(client, ids, reps)
        loads.append(os.getloadavg()[0])
        t0 = time.perf_counter()
        ids = _fill(n_tasks, n_runs, BIG_TASK_RUNS, seed=2)
        result["fill_seconds"] = time.perf_counter() - t0
        if backend == "postgres":
            _vacuum()
    else:
        big = ScheduledTask.objects.order_by("pk").values_list("pk", flat=True)[SMALL_TASKS]
        run = Execution.objects.filter(task_id=big, output=OUTPUT).latest("pk").pk
        ids = {"big": big, "run": run}
        result["fill_seconds"] = 0.0
    print(f"{backend}, {n_tasks} tasks and {n_runs} runs:", flush=True)
    from scheduled_tasks.chart_snapshot import REFRESH_SECONDS

    result["refresh_seconds"] = REFRESH_SECONDS
    result["charts_ms"] = _charts_ms()
    result["large"] = _measure(client, ids, reps)
    loads.append(os.getloadavg()[0])
    result["load"] = [min(loads), max(loads)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        data = _worker(args.worker, args.tasks, args.executions, args.reps)
        Path(args.json_out).write_text(json.dumps(data))
        return
    results = {backend: _run_worker(backend, args) for backend in args.backends.split(",")}
    if any("small" not in data for data in results.values()):
        print("(reused databases: nothing written)")
        return
    body = _report(results, args)
    print(body)
    if not args.no_write:
        write_section("Pages at scale", body)


if __name__ == "__main__":
    main()
