"""``manage.py scheduler_status``: is the scheduler healthy? For monitors and people.

Exit status 0 when healthy, 1 when not (``scheduled_tasks.health``: the database, a
scheduler's heartbeat, with Celery the broker and a live worker). ``--json`` prints the same
report as ``/health/`` (with the runners' names).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from scheduled_tasks import health


def _ok(value: object) -> str:
    return "ok" if value else "NOT OK"


class Command(BaseCommand):
    help = "Report the scheduler's health; exit status 0 when healthy, 1 when not."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        healthy, body = health.report(timezone.now(), names=True)
        if options["json"]:
            self.stdout.write(json.dumps(body, indent=2))
        else:
            self._print(body)
        if not healthy:
            raise CommandError("the scheduler is not healthy", returncode=1)

    def _print(self, body: dict[str, Any]) -> None:
        write = self.stdout.write
        style = self.style.SUCCESS if body["status"] == "ok" else self.style.ERROR
        write(style(f"Status: {body['status']}"))
        write(f"Database: {_ok(body['database']['ok'])}")
        scheduler = body["scheduler"]
        if scheduler["last_heartbeat_at"] is None:
            write(f"Scheduler: {_ok(False)}, no scheduler has sent a heartbeat")
        else:
            write(
                f"Scheduler: {_ok(scheduler['ok'])}, last heartbeat "
                f"{scheduler['age_seconds']:.0f} s ago ({scheduler['kind']})"
            )
        backend = body["backend"]
        line = f"Backend: {backend['name']}, {_ok(backend['ok'])}"
        if "broker" in backend:
            broker = backend["broker"]
            line += f"; broker {_ok(broker['ok'])}"
            if broker.get("error"):
                line += f" ({broker['error']})"
            line += f"; {backend['workers_alive']} worker process(es) alive"
        write(line)
        runs = body["executions"]
        if runs is not None:
            write(
                f"Runs: {runs['queued']} queued, {runs['running']} running, "
                f"{runs['waiting']} waiting for their time (retries)"
            )
        write(f"Open alerts: {body['alerts']['open']}")
        if body["runners"]:
            write("Runners and workers seen lately:")
            for runner in body["runners"]:
                write(
                    f"  {runner['kind']:<9} {runner['state']:<8} {runner['name']}  "
                    f"last heartbeat {runner['age_seconds']:.0f} s ago, "
                    f"running {runner['running']}/{runner['concurrency']}"
                )
