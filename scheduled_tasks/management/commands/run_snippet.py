"""``manage.py run_snippet FILE|-``: run code through the sandbox, changing no task."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

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
        if name == "-":
            return sys.stdin.read()
        path = Path(name)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CommandError(f"no such file: {name}", returncode=2) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {name}: {exc}", returncode=2) from None
