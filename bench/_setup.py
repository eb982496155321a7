"""Shared set-up for benchmarks: Django configured from the project's settings."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks.md"


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketproo.settings")
    import django

    django.setup()


def machine() -> str:
    return f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores"


def summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "median": statistics.median(ordered),
        "p95": ordered[int(len(ordered) * 0.95) - 1],
        "p99": ordered[int(len(ordered) * 0.99) - 1],
        "min": ordered[0],
    }


def write_section(name: str, body: str) -> None:
    """Replace (or append) the ``## name`` section of docs/benchmarks.md."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n\nWritten by `bench/`.\n"
    header = f"## {name}\n"
    start = text.find(header)
    section = header + body.rstrip() + "\n\n"
    if start == -1:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(header))
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    RESULTS.write_text(text.rstrip() + "\n")
