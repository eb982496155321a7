"""``manage.py install_builtin_tasks``: create the scheduler's built-in tasks if missing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from scheduled_tasks.jobs import install_builtin_tasks


class Command(BaseCommand):
    help = (
        "Create the built-in scheduled tasks (e.g. the weekly clean-up of old executions) "
        "that do not exist yet. Safe to run again: tasks are matched by name and an existing "
        "one is left as it is, edits included."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        for task, created in install_builtin_tasks(timezone.now()):
            state = "created" if created else "already present, left unchanged"
            self.stdout.write(f"“{task.name}” ({task.schedule_description}): {state}")
