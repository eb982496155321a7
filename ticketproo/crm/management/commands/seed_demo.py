"""``manage.py seed_demo``: demo company, tickets, two scheduled tasks and an admin login."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from ticketproo.crm.demo import seed


class Command(BaseCommand):
    help = "Create demo data (idempotent) and print a fresh admin login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", help="Use this admin password instead of a random one.")

    def handle(self, *args: Any, **options: Any) -> None:
        login = seed(timezone.now(), admin_password=options["password"])
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
        self.stdout.write(f"Admin login: {login.username} / {login.password}")
