"""Daemon-mode lateness: from a task's due time to the start of its run, over a few hundred
runs, on SQLite and PostgreSQL.

Creates 200 tasks due at random moments over ~60 s (30 of them created while the daemon
sleeps, due sooner than its planned wake-up), starts `run_scheduled_tasks --daemon` with the
default interval, waits for every run, stops it with SIGTERM and reports p50/p99/max of
``started_at - scheduled_for``.

Usage: python bench/daemon_lateness.py [--backends sqlite,postgres] [--no-write]
Uses its own databases (a SQLite file under /tmp, PostgreSQL ``ticketproo_bench_lateness``).
Writes the "Daemon lateness" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import ROOT, machine, write_section

SQLITE_FILE = Path(tempfile.gettempdir()) / "ticketproo_bench_lateness.sqlite3"
PG_SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
PG_DB = "ticketproo_bench_lateness"
TASKS, LATE_CREATED = 200, 30
TARGET_P99_MS = 1000.0


def _database_url(backend: str) -> str:
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SQLITE_FILE}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{SQLITE_FILE}"
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB}")
        conn.execute(f"CREATE DATABASE {PG_DB}")
    return f"{PG_SERVER}/{PG_DB}"


def _percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))]


def _worker() -> dict[str, float]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketproo.settings")
    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from scheduled_tasks.models import Execution, ScheduledTask

    call_command("migrate", verbosity=0)
    rng = random.Random(1)

    def add(i: int, at: object) -> None:
        task = ScheduledTask(name=f"lat{i}", code="x = 1", every=1, unit="hours", anchor=at)
        task.next_run_at = at
        task.save()

    start = timezone.now()
    for i in range(TASKS - LATE_CREATED):
        add(i, start + timedelta(seconds=3 + rng.uniform(0, 55)))
    env = {**os.environ, "SCHEDULED_TASKS_EMBEDDED": "false"}
    daemon = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_scheduled_tasks", "--daemon"],
        cwd=ROOT,
        env=env,
    )
    try:
        time.sleep(5)
        for i in range(TASKS - LATE_CREATED, TASKS):
            add(i, timezone.now() + timedelta(seconds=rng.uniform(0.5, 4)))
            time.sleep(rng.uniform(0.3, 1.2))
        deadline = time.time() + 120
        while Execution.objects.filter(status="completed").count() < TASKS:
            if time.time() > deadline:
                raise RuntimeError("not every run happened within two minutes")
            time.sleep(0.5)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    late = sorted(
        (e.started_at - e.scheduled_for).total_seconds() * 1000
        for e in Execution.objects.filter(trigger="schedule")
    )
    return {
        "runs": len(late),
        "p50": _percentile(late, 0.5),
        "p99": _percentile(late, 0.99),
        "max": late[-1],
        "exit": daemon.returncode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker()))
        return
    results = {}
    for backend in args.backends.split(","):
        env = {**os.environ, "DATABASE_URL": _database_url(backend)}
        out = subprocess.run(
            [sys.executable, __file__, "--worker"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        results[backend] = json.loads(out.stdout.strip().splitlines()[-1])
        print(backend, results[backend])
    lines = [
        f"`run_scheduled_tasks --daemon` (default interval 10 s), {TASKS} tasks due at random "
        f"moments over ~60 s, {LATE_CREATED} of them created while the daemon slept; lateness = "
        "`started_at - scheduled_for`, where `started_at` is the moment the snippet's code "
        "began (the fork and the confinement of a fresh child, or the job sent to a spare, "
        f"come before it). {machine()}, {date.today().isoformat()}. "
        "Command: `python bench/daemon_lateness.py`.",
        "",
        "| database | runs | p50 | p99 | max |",
        "| --- | --- | --- | --- | --- |",
    ]
    for backend, r in results.items():
        lines.append(
            f"| {backend} | {r['runs']} | {r['p50']:.1f} ms | {r['p99']:.1f} ms | "
            f"{r['max']:.1f} ms |"
        )
    worst = max(r["p99"] for r in results.values())
    verdict = "meets" if worst < TARGET_P99_MS else "MISSES"
    lines += ["", f"Target: p99 under 1 s ({verdict})."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("Daemon lateness", body)


if __name__ == "__main__":
    main()
