"""``manage.py run_snippet FILE|-``: run code through the sandbox, changing no task."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scheduled_tasks.management.sources import read_source
from scheduled_tasks.sandbox import run_snippet


class Command(BaseCommand):
    help = "Run a Python snippet file (or - for standard input) in the scheduler's sandbox."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The snippet file, or - to read standard input.")
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the result as JSON with status, output, error and duration.",
        )
        parser.add_argument(
            "--timeout", type=float, help="Wall-clock limit in seconds (default from settings)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        code = self._read(options["file"])
        timeout = options["timeout"]
        if timeout is not None and not 0 < timeout <= 86400:
            raise CommandError("--timeout must be between 0 and 86400 seconds", returncode=2)
        result = run_snippet(code, timeout=timeout)
        if options["json"]:
            payload = {
                "status": result.status,
                "output": result.output,
                "error": result.error,
                "duration": round(result.duration, 6),
            }
            self.stdout.write(json.dumps(payload))
        else:
            if result.output:
                self.stdout.write(result.output, ending="")
            if result.output_truncated:
                self.stdout.write("[output truncated]")
            if result.error:
                self.stderr.write(result.error)
            self.stderr.write(f"[{result.status} in {result.duration:.3f}s]")
        if not result.ok:
            sys.exit(1)

    def _read(self, name: str) -> str:
        return read_source(name, returncode=2)
