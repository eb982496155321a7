"""Demo data for a first look: a company, contacts, tickets, two scheduled tasks, an admin."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction

from scheduled_tasks import services
from scheduled_tasks.jobs import install_builtin_tasks
from scheduled_tasks.models import ScheduledTask
from ticketproo.crm.models import Company, Contact, Ticket

DAILY_REPORT = """\
# A daily summary of the ticket queue, by status.
counts = {}
for ticket in Ticket.objects.all():
    counts[ticket.status] = counts.get(ticket.status, 0) + 1
total = sum(counts.values())
print(f"Ticket report for {timezone.localdate()}: {total} tickets")
for status, count in sorted(counts.items()):
    print(f"  {status:<12} {count}")
logger.info("daily report: %s tickets", total)
"""

AUTO_CLOSE = """\
# Close tickets that have been resolved for more than 24 hours.
cutoff = timezone.now() - timedelta(hours=24)
stale = Ticket.objects.filter(status=Ticket.Status.RESOLVED, resolved_at__lt=cutoff)
closed = stale.update(status=Ticket.Status.CLOSED)
logger.info("auto-closed %s ticket(s) resolved before %s", closed, cutoff)
"""


@dataclass(frozen=True)
class DemoLogin:
    """The admin login: ``password`` is the one just set, None when the existing one was kept."""

    username: str
    password: str | None
    created: bool


def seed(now: datetime, *, admin_password: str | None = None) -> DemoLogin:
    """Create the demo rows if missing (idempotent). A new admin gets ``admin_password`` or a
    random one; an existing admin keeps its password unless ``admin_password`` is given."""
    with transaction.atomic():
        admin, created = User.objects.get_or_create(
            username="admin",
            defaults={"email": "admin@example.com", "is_staff": True, "is_superuser": True},
        )
        admin.is_staff = admin.is_superuser = True
        password = admin_password or (secrets.token_urlsafe(9) if created else None)
        if password is not None:
            admin.set_password(password)
        admin.save()

        acme, _ = Company.objects.get_or_create(
            name="Acme Corporation", defaults={"website": "https://acme.example"}
        )
        globex, _ = Company.objects.get_or_create(
            name="Globex", defaults={"website": "https://globex.example"}
        )
        ada, _ = Contact.objects.get_or_create(
            company=acme, name="Ada Lovelace", defaults={"email": "ada@acme.example"}
        )
        hank, _ = Contact.objects.get_or_create(
            company=globex, name="Hank Scorpio", defaults={"email": "hank@globex.example"}
        )
        if not Ticket.objects.exists():
            rows = [
                ("Printer on fire", Ticket.Status.OPEN, acme, ada, None),
                ("VPN drops every hour", Ticket.Status.IN_PROGRESS, acme, ada, None),
                ("Invoice PDF is blank", Ticket.Status.RESOLVED, globex, hank, 30),
                ("Password reset mail missing", Ticket.Status.RESOLVED, globex, hank, 2),
                ("New laptop for Hank", Ticket.Status.CLOSED, globex, hank, 100),
            ]
            for title, status, company, contact, resolved_hours_ago in rows:
                resolved_at = (
                    now - timedelta(hours=resolved_hours_ago) if resolved_hours_ago else None
                )
                Ticket.objects.create(
                    title=title,
                    status=status,
                    company=company,
                    contact=contact,
                    assignee=admin,
                    resolved_at=resolved_at,
                )

        minute = now.replace(second=0, microsecond=0)
        _task(
            "Daily ticket report",
            "Prints how many tickets are in each status, every morning.",
            DAILY_REPORT,
            every=1,
            unit="days",
            anchor=minute.replace(hour=8, minute=0),
            user=admin,
            now=now,
        )
        _task(
            "Auto-close resolved tickets after 24 h",
            "Closes tickets resolved more than 24 hours ago.",
            AUTO_CLOSE,
            every=10,
            unit="minutes",
            anchor=minute + timedelta(minutes=1),  # first run within a minute of starting
            user=admin,
            now=now,
        )
        install_builtin_tasks(now)
    return DemoLogin("admin", password, created)


def _task(name: str, description: str, code: str, *, user: User, now: datetime, **sched) -> None:
    if ScheduledTask.objects.filter(name=name).exists():
        return
    task = ScheduledTask(name=name, description=description, code=code, **sched)
    services.save_task(task, now=now, user=user)
