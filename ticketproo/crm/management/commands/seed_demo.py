"""``manage.py seed_demo``: demo company, tickets, two scheduled tasks and an admin login."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from ticketproo.crm.demo import seed


class Command(BaseCommand):
    help = (
        "Create demo data (idempotent). A new admin gets a random password, printed once; an "
        "existing admin keeps its password."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password", help="Set this admin password (on a new or an existing admin)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        login = seed(timezone.now(), admin_password=options["password"])
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
        if login.password is not None:
            self.stdout.write(f"Admin login: {login.username} / {login.password}")
        else:
            self.stdout.write(
                f"Admin login: {login.username} (existing password kept). To set a new one: "
                f".venv/bin/python manage.py changepassword {login.username}"
            )
