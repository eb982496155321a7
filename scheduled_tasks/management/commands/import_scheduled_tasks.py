"""Create or update scheduled tasks from a JSON file written by export_scheduled_tasks."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from scheduled_tasks import import_export
from scheduled_tasks.management.sources import read_source


def _read(source: str) -> str:
    return read_source(source, returncode=1)


def _parse(text: str, label: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{label}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            returncode=1,
        ) from None
    except RecursionError:
        raise CommandError(f"{label}: invalid JSON: nested too deeply", returncode=1) from None


def _find_user(username: str) -> AbstractBaseUser:
    model = get_user_model()
    try:
        return model._default_manager.get_by_natural_key(username)
    except model.DoesNotExist:
        raise CommandError(f"no user named {username!r}", returncode=1) from None


class Command(BaseCommand):
    help = (
        "Create or update scheduled tasks (matched by name) from a JSON file; '-' reads stdin. "
        "Every entry is checked first: with any problem nothing is imported and the exit "
        "status is 1. Format: docs/import-export.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The JSON file to import, or '-' for stdin.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check the file and report what would change, without saving anything.",
        )
        parser.add_argument(
            "--user", metavar="USERNAME", help="Record this user as creator/editor of the tasks."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source: str = options["file"]
        label = "stdin" if source == "-" else source
        entries = _parse(_read(source), label)
        user = _find_user(options["user"]) if options["user"] else None

        try:
            report = import_export.import_tasks(
                entries, now=timezone.now(), user=user, dry_run=options["dry_run"]
            )
        except import_export.ImportValidationError as exc:
            for problem in exc.problems:
                self.stderr.write(str(problem))
            raise CommandError(str(exc), returncode=1) from None

        if options["verbosity"] >= 2:
            verb = "would " if report.dry_run else ""
            for name in report.created:
                self.stdout.write(f"{verb}create {name}")
            for name in report.updated:
                self.stdout.write(f"{verb}update {name}")
        self.stdout.write(report.summary())
