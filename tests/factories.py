"""Small builders for test data. Each takes only what a test cares about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import Permission, User

from scheduled_tasks import claims
from scheduled_tasks.models import Execution, ScheduledTask
from ticketproo.crm.models import Company, Contact, Ticket

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MONDAY_0900_UTC = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)


def make_task(**overrides: Any) -> ScheduledTask:
    values: dict[str, Any] = {
        "name": f"task-{ScheduledTask.objects.count() + 1}",
        "code": "print('hello')",
        "every": 1,
        "unit": "hours",
        "anchor": T0,
        "is_active": True,
    }
    values.update(overrides)
    task = ScheduledTask(**values)
    if "next_run_at" not in overrides:
        task.next_run_at = task.first_run_after(values["anchor"])
    task.save()
    return task


def make_execution(task: ScheduledTask, **overrides: Any) -> Execution:
    values: dict[str, Any] = {
        "task": task,
        "status": Execution.Status.COMPLETED,
        "trigger": Execution.Trigger.MANUAL,
    }
    values.update(overrides)
    return Execution.objects.create(**values)


def claim_slot(
    task_id: int, seen_next_run_at: datetime, now: datetime, *, runner: str | None = None
) -> claims.Claim | None:
    """Claim and start one slot as a runner does (see ``claims.claim_slots``), or None if it
    is not ours."""
    slot = claims.Slot(task_id, seen_next_run_at)
    result = claims.claim_slots([slot], lambda: now, runner=runner, start=True)
    return result.claims[0] if result.claims else None


def make_user(username: str = "viewer", *, perms: tuple[str, ...] = (), **extra: Any) -> User:
    user = User.objects.create_user(username=username, password="pw-12345-secret", **extra)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


# A "viewer" of the pages: reads tasks, their code and runs, changes nothing.
VIEWER_PERMS = ("view_scheduledtask",)


def make_viewer(username: str = "viewer") -> User:
    return make_user(username, perms=VIEWER_PERMS)


def make_editor(username: str = "editor") -> User:
    return make_user(
        username,
        perms=(
            "add_scheduledtask",
            "change_scheduledtask",
            "view_scheduledtask",
            "run_scheduledtask",
        ),
    )


def make_ticket(**overrides: Any) -> Ticket:
    values: dict[str, Any] = {"title": "Printer on fire", "status": Ticket.Status.OPEN}
    values.update(overrides)
    return Ticket.objects.create(**values)


def make_company(name: str = "Acme") -> Company:
    return Company.objects.create(name=name)


def make_contact(company: Company, name: str = "Ada") -> Contact:
    return Contact.objects.create(company=company, name=name, email="ada@example.com")


def task_form_data(**overrides: Any) -> dict[str, Any]:
    """POST data of a valid task form (web pages and admin): an hourly code task."""
    values: dict[str, Any] = {
        "name": "digest",
        "description": "",
        "runs": "code",
        "code": "print('hi')",
        "function_name": "",
        "function_params": "",
        "schedule_kind": "interval",
        "time_zone": "UTC",
        "every": "1",
        "unit": "hours",
        "anchor": "2026-01-05T09:00",
        "cron_expression": "",
        "run_at": "",
        "is_active": "on",
        "timeout_seconds": "",
        "catch_up": "run_once",
        "grace_seconds": "",
        "max_instances": "1",
        "max_retries": "0",
        "retry_backoff_seconds": "60",
        "priority": "0",
    }
    values.update(overrides)
    return values


def form_data(**overrides: Any) -> dict[str, Any]:
    """``task_form_data`` as the web page tests post it: a daily "Nightly report"."""
    return task_form_data(
        **{
            "name": "Nightly report",
            "description": "Counts open tickets.",
            "code": 'print("hi")',
            "unit": "days",
            **overrides,
        }
    )
