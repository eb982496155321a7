"""Write every scheduled task to a JSON file (or stdout) that import_scheduled_tasks reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scheduled_tasks import import_export
from scheduled_tasks.models import ScheduledTask


class Command(BaseCommand):
    help = (
        "Export all scheduled tasks as a JSON list sorted by name (format: "
        "docs/import-export.md). Writes to FILE, or to stdout when FILE is omitted or '-'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="Where to write the JSON. Default: stdout.")
        parser.add_argument(
            "--indent",
            type=int,
            default=2,
            help="Spaces of indentation; 0 writes everything on one line. Default: 2.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        indent: int = options["indent"]
        if indent < 0:
            raise CommandError(f"--indent must be 0 or more, not {indent}")
        entries = import_export.export_tasks(ScheduledTask.objects.all())
        text = json.dumps(entries, indent=indent or None, ensure_ascii=False) + "\n"

        target = options["file"]
        if target is None or target == "-":
            self.stdout.write(text, ending="")
            return
        try:
            Path(target).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {target}: {exc.strerror or exc}") from None
        self.stdout.write(
            f"exported {len(entries)} task{'s' if len(entries) != 1 else ''} to {target}"
        )
