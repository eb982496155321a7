"""End-to-end cost of one trivial snippet through run_snippet(): in a spare child, in a fresh
child, against a bare interpreter spawn and a plain in-process exec.

Usage: python bench/sandbox_overhead.py [--runs N] [--no-write]
Writes the "Sandbox overhead" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import machine, setup_django, summary, write_section

CODE = "total = 0\nfor i in range(10):\n    total += i\nprint(total)\n"


def timed_runs(
    run_snippet, runs: int, gap: float = 0.0, after=None
) -> tuple[list[float], float, float]:
    """Latencies (ms) of ``runs`` trivial runs, ``gap`` s apart, each followed by ``after()``
    (the daemon's idle moment: the next spare is made), and the CPU seconds (this process and
    its children) and wall seconds they took in all. With a gap, ``after`` is not counted in
    the latency, as the runner does it while no run waits; without, it is (back to back)."""
    latencies = []
    cpu0, wall = os.times(), 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        result = run_snippet(CODE)
        elapsed = time.perf_counter() - t0
        if after is not None:
            after()
            if not gap:
                elapsed = time.perf_counter() - t0
        if gap:
            time.sleep(gap)
        wall += elapsed
        latencies.append(elapsed * 1000)
        assert result.status == "completed" and result.output == "45\n", result
    time.sleep(0.2)  # let the background reaper collect the last children's CPU times
    cpu1 = os.times()
    cpu = sum(b - a for a, b in zip(cpu0[:4], cpu1[:4], strict=True))
    return latencies, cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    setup_django()
    from scheduled_tasks.sandbox import run_snippet, spares

    for _ in range(20):  # warm-up: imports, caches
        run_snippet(CODE)

    # A fresh child per run, made when the run starts (a cron pass, a web process).
    cold_ms, cold_cpu, _ = timed_runs(run_snippet, args.runs)
    with spares.kept_warm():  # the daemon and the embedded scheduler
        # A run that comes to an idle runner: its spare was made during the gap.
        warm_ms, warm_cpu, _ = timed_runs(run_snippet, args.runs, gap=0.02, after=spares.replenish)
        # Back to back: the runner makes each spare right after the previous run, counted.
        _, busy_cpu, busy_wall = timed_runs(run_snippet, args.runs, after=spares.replenish)

    # The baseline #11 sets the target against: a bare interpreter spawn, measured here too.
    spawn_ms = []
    for _ in range(max(args.runs // 5, 20)):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
        spawn_ms.append((time.perf_counter() - t0) * 1000)

    compiled = compile(CODE, "<plain>", "exec")
    plain_ms = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        exec(compiled, {"print": lambda *a: None})  # noqa: S102 - the baseline being measured
        plain_ms.append((time.perf_counter() - t0) * 1000)

    c, w, p, b = summary(cold_ms), summary(warm_ms), summary(plain_ms), summary(spawn_ms)
    ratio_warm = w["median"] / b["median"]
    ratio_cold = c["median"] / b["median"]
    per_second = args.runs / busy_wall
    cpu_ms = {
        name: cpu * 1000 / args.runs
        for name, cpu in (("cold", cold_cpu), ("warm", warm_cpu), ("busy", busy_cpu))
    }
    verdict_latency = "meets" if w["median"] <= 15 else "MISSES"
    verdict_rate = "meets" if per_second >= 100 else "MISSES"
    verdict_ratio = "meets" if ratio_warm <= 0.5 else "MISSES"

    def row(name: str, stats: dict[str, float], digits: int) -> str:
        cells = " | ".join(f"{stats[k]:.{digits}f} ms" for k in ("median", "p95", "p99", "min"))
        return f"| {name} | {cells} |"

    body = "\n".join(
        [
            f"Trivial snippet (a 10-step loop and a print) on SQLite, {args.runs} runs each, "
            f"{machine()}, {date.today().isoformat()}. "
            "Command: `python bench/sandbox_overhead.py`. Latency is from the call of "
            "`run_snippet()` to its result.",
            "",
            "| path | median | p95 | p99 | min |",
            "| --- | --- | --- | --- | --- |",
            row(
                "spare child, the run comes to an idle runner (daemon, embedded scheduler): "
                "send the job, the child checks its session, runs, reports; tree kill",
                w,
                2,
            ),
            row(
                "fresh child (cron pass, web process): fork, set-up, confinement (database "
                "wall, secrets, OS layers), exec, result, tree kill",
                c,
                2,
            ),
            row("bare interpreter spawn, `python -I -S -c pass`", b, 2),
            row("plain in-process `exec` of precompiled code", p, 4),
            "",
            f"CPU per run (runner and its children): fresh child {cpu_ms['cold']:.1f} ms, "
            f"spare {cpu_ms['warm']:.1f} ms, spares back to back {cpu_ms['busy']:.1f} ms. "
            "A spare moves the fork, the set-up and the confinement off the run's path; it does "
            "not make them cheaper, and the process still costs its CPU, on the other core "
            "while the runner records the previous run.",
            "",
            f"Back to back with spares: **{per_second:.0f} executions/s**. A run through a "
            f"spare costs **{ratio_warm:.2f}x** a bare interpreter spawn; a fresh child "
            f"**{ratio_cold:.2f}x**.",
            f"Targets: at most 15 ms per execution ({verdict_latency}), at least 100 per second "
            f"({verdict_rate}), at most 0.5x a bare spawn ({verdict_ratio}).",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("Sandbox overhead", body)


if __name__ == "__main__":
    main()
