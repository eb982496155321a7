"""``manage.py run_scheduled_tasks``: run every due task once (crontab calls this each minute),
or with ``--daemon`` keep running them as they come due."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils import timezone

from scheduled_tasks import alerts, claims, conf, runner
from scheduled_tasks.alerts.monitor import RunnerMonitor
from scheduled_tasks.daemon import DEFAULT_SHUTDOWN_TIMEOUT_SECONDS, Scheduler
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.sandbox import isolation
from scheduled_tasks.sandbox.platform import unsupported_reason


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} must be 0 or more")
    return number


class Command(BaseCommand):
    help = (
        "Run every active scheduled task whose next run time has come, once. Safe to start "
        "from cron every minute: overlapping invocations never run the same slot twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would run and since when it is due; change nothing.",
        )
        parser.add_argument(
            "--verbose",
            action="store_true",
            help="Print each run's start, status, duration and output.",
        )
        parser.add_argument(
            "--task-id",
            type=_positive_int,
            metavar="N",
            help="Run this one task now, whatever its schedule (recorded as manual).",
        )
        parser.add_argument(
            "--daemon",
            action="store_true",
            help="Keep running: wake at the next due time (or every --interval seconds) until "
            "SIGTERM/SIGINT. Rides out database outages with a backoff.",
        )
        parser.add_argument(
            "--interval",
            type=_positive_int,
            metavar="N",
            help="With --daemon: the longest sleep between two looks at the schedule, in "
            f"seconds (default: SCHEDULED_TASKS['DAEMON_INTERVAL_SECONDS'], "
            f"{conf.DEFAULTS['DAEMON_INTERVAL_SECONDS']}).",
        )
        parser.add_argument(
            "--concurrency",
            type=_positive_int,
            metavar="N",
            help="How many runs go on at once, each in its own sandbox process (default: "
            "SCHEDULED_TASKS['CONCURRENCY'], else the number of CPUs and at least 2).",
        )
        parser.add_argument(
            "--shutdown-timeout",
            type=_seconds,
            metavar="S",
            help="With --daemon: after SIGTERM/SIGINT, how long a run in progress may go on "
            "before it is killed and recorded as abandoned (default: "
            f"{DEFAULT_SHUTDOWN_TIMEOUT_SECONDS:g}). A second signal kills it at once.",
        )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        self._parser = super().create_parser(prog_name, subcommand, **kwargs)
        return self._parser

    def handle(self, *args: Any, **options: Any) -> None:
        reason = unsupported_reason()
        if reason is not None:
            raise CommandError(reason, returncode=2)
        # This process only runs the scheduler: descendants a sandbox child leaves behind
        # come to it (not to init) and are swept after each run.
        isolation.adopt_orphans()
        if options["daemon"]:
            if options["task_id"] is not None or options["dry_run"]:
                self._parser.error("--daemon cannot be combined with --task-id or --dry-run")
            self._daemon(options)
            return
        if options["interval"] is not None or options["shutdown_timeout"] is not None:
            self._parser.error("--interval and --shutdown-timeout only apply with --daemon")
        if options["concurrency"] is not None and options["task_id"] is not None:
            self._parser.error("--concurrency does not apply to --task-id (one run)")
        now = timezone.now()
        try:
            if options["task_id"] is not None:
                self._run_one(options["task_id"], now, options)
            elif options["dry_run"]:
                self._dry_run(now)
            else:
                self._tick(now, verbose=options["verbose"], concurrency=options["concurrency"])
        except DatabaseError as exc:
            raise CommandError(f"the database is not available: {exc}", returncode=1) from exc

    def _daemon(self, options: dict[str, Any]) -> None:
        verbose = options["verbose"]
        timeout = options["shutdown_timeout"]
        scheduler = Scheduler(
            interval=options["interval"],
            shutdown_timeout=DEFAULT_SHUTDOWN_TIMEOUT_SECONDS if timeout is None else timeout,
            on_start=self._print_start if verbose else None,
            on_finish=self._print_execution if verbose else None,
            concurrency=options["concurrency"],
            kind="daemon",
            monitored=True,
        )
        self.stdout.write(
            f"Scheduler daemon started (pid {os.getpid()}, {scheduler.concurrency} slot(s), "
            f"interval {scheduler.interval:g} s, shutdown timeout "
            f"{scheduler.shutdown_timeout:g} s); stop it with SIGTERM or Ctrl-C."
        )
        self.stdout.flush()
        with scheduler.signals_handled():
            scheduler.run()
        self.stdout.write("Scheduler daemon stopped.")

    def _dry_run(self, now: Any) -> None:
        plans = runner.plan(now)
        if not plans:
            self.stdout.write("Nothing is due.")
            return
        for item in plans:
            since = timezone.localtime(item.due_since).isoformat(timespec="seconds")
            extra = f", {item.slots} missed slots collapse into one run" if item.slots > 1 else ""
            state = " — still running, would wait" if item.running else ""
            self.stdout.write(
                f"would run task {item.task.pk} “{item.task.name}”: due since {since}{extra}{state}"
            )

    def _tick(self, now: Any, *, verbose: bool, concurrency: int | None) -> None:
        # A cron pass is a runner too: its heartbeat and the alert checks while it runs.
        monitor = RunnerMonitor(
            claims.runner_identity(), "cron", concurrency=conf.concurrency(concurrency)
        )
        monitor.start(now)
        try:
            report = runner.tick(
                now,
                on_start=self._print_start if verbose else None,
                on_finish=self._after_run(verbose),
                concurrency=concurrency,
            )
        finally:
            monitor.stop()
        if not verbose:
            return
        for task in report.busy:
            self.stdout.write(f"task {task.pk} “{task.name}” is still running; skipped")
        if report.dispatched or report.undelivered:
            self.stdout.write(
                f"{len(report.dispatched)} run(s) sent to the workers"
                + (
                    f", {len(report.undelivered)} not sent (the broker did not answer; sent "
                    "again once their claim expires)"
                    if report.undelivered
                    else ""
                )
                + "."
            )
        if report.executions or report.busy or report.abandoned:
            self.stdout.write(
                f"{len(report.executions)} run(s), {len(report.failed)} not completed, "
                f"{len(report.busy)} busy, {report.abandoned} abandoned run(s) reaped."
            )

    def _after_run(self, verbose: bool) -> Callable[[Execution], None]:
        def finished(execution: Execution) -> None:
            if verbose:
                self._print_execution(execution)
            alerts.after_run(execution, timezone.now())  # logs its own failures

        return finished

    def _run_one(self, task_id: int, now: Any, options: dict[str, Any]) -> None:
        task = ScheduledTask.objects.filter(pk=task_id).first()
        if task is None:
            raise CommandError(f"there is no scheduled task with id {task_id}", returncode=2)
        if options["dry_run"]:
            self.stdout.write(f"would run task {task.pk} “{task.name}” now (manual)")
            return
        on_start = self._print_start if options["verbose"] else None
        try:
            execution = runner.run_task_now(task, now=now, on_start=on_start)
        except runner.TaskBusy as exc:
            raise CommandError(str(exc), returncode=1) from exc
        if execution.status == Execution.Status.PENDING:  # handed to the workers (Celery)
            self.stdout.write(
                f"task {task.pk} “{task.name}”: run #{execution.pk} sent to the workers"
            )
            return
        self._print_execution(execution)
        if execution.status != Execution.Status.COMPLETED:
            raise CommandError(
                f"task {task.pk} “{task.name}” ended {execution.status}", returncode=1
            )

    def _print_start(self, task: ScheduledTask) -> None:
        self.stdout.write(f"starting task {task.pk} “{task.name}”")

    def _print_execution(self, execution: Execution) -> None:
        task = execution.task
        style = (
            self.style.SUCCESS
            if execution.status == Execution.Status.COMPLETED
            else self.style.ERROR
        )
        duration = f"{execution.duration_seconds or 0:.3f}s"
        self.stdout.write(style(f"task {task.pk} “{task.name}”: {execution.status} in {duration}"))
        if execution.output:
            self.stdout.write(execution.output.rstrip("\n"))
        if execution.output_truncated:
            self.stdout.write("[output truncated]")
        if execution.error:
            self.stderr.write(execution.error)
