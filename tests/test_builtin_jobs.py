"""Built-in registered jobs: execution clean-up, CRM auto-close and contract expiry; the
install_builtin_tasks command; registration at start-up."""

from __future__ import annotations

from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduled_tasks import registry, runner
from scheduled_tasks.jobs import cleanup_executions, install_builtin_tasks
from scheduled_tasks.models import Execution, ScheduledTask
from tests.conftest import run_manage
from tests.factories import T0, make_company, make_execution, make_task, make_ticket
from ticketproo.crm.jobs import auto_close_resolved_tickets, disable_expired_companies
from ticketproo.crm.models import Company, Ticket


class Ctx(registry.JobContext):
    """A JobContext whose printed output is kept for the test to read."""

    def __init__(self, now=T0) -> None:
        self.lines: list[str] = []
        super().__init__(now, self.lines.append, "test")

    @property
    def output(self) -> str:
        return "".join(self.lines)


def old_execution(task, *, days_old: float, status: str = "completed", **extra) -> Execution:
    return make_execution(task, status=status, created_at=T0 - timedelta(days=days_old), **extra)


# --- scheduled_tasks.cleanup_executions -------------------------------------------------------


@pytest.mark.django_db
def test_cleanup_deletes_finished_executions_older_than_the_cutoff_only():
    task = make_task()
    doomed = [
        old_execution(task, days_old=31, status=status).pk for status in Execution.FINISHED_STATUSES
    ]
    kept_recent = old_execution(task, days_old=29).pk
    summary = cleanup_executions(Ctx(), days=30)
    assert not Execution.objects.filter(pk__in=doomed).exists()
    assert Execution.objects.filter(pk=kept_recent).exists()
    assert summary.startswith(f"Deleted {len(doomed)} finished execution(s) created before ")
    assert "2025-12-06 09:00 UTC (30 day(s) kept)" in summary


@pytest.mark.django_db
def test_cleanup_never_deletes_running_or_pending_executions_however_old():
    task = make_task()
    running = old_execution(task, days_old=400, status="running").pk
    pending = old_execution(task, days_old=400, status="pending", trigger="retry").pk
    cleanup_executions(Ctx(), days=1)
    assert set(Execution.objects.values_list("pk", flat=True)) == {running, pending}


@pytest.mark.django_db
def test_cleanup_keeps_an_execution_created_exactly_at_the_cutoff():
    task = make_task()
    at_cutoff = old_execution(task, days_old=30).pk
    cleanup_executions(Ctx(), days=30)
    assert Execution.objects.filter(pk=at_cutoff).exists()


@pytest.mark.django_db
def test_cleanup_deletes_in_batches_of_primary_keys_without_loading_the_rows():
    task = make_task()
    for _ in range(25):
        old_execution(task, days_old=40, output="x" * 100)
    with CaptureQueriesContext(connection) as queries:
        summary = cleanup_executions(Ctx(), days=30, batch_size=10)
    assert "Deleted 25 finished execution(s)" in summary
    assert summary.endswith("in 3 batch(es).")
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    # Per batch: its executions' log lines (the cascade, by execution id), then the executions.
    assert [sql.split('"')[1] for sql in deletes] == [
        "scheduled_tasks_executionlogline",
        "scheduled_tasks_execution",
    ] * 3
    # Each batch is a transaction of its own (a savepoint inside the test's transaction).
    assert sum(q["sql"].startswith("SAVEPOINT") for q in queries) == 3
    # Output and errors (up to 64 KiB each) are never loaded just to be deleted.
    assert not any('"output"' in q["sql"] for q in queries)
    assert Execution.objects.count() == 0


@pytest.mark.django_db
def test_cleanup_does_not_rescan_rows_it_keeps_between_batches():
    task = make_task()
    running = [old_execution(task, days_old=40, status="running").pk for _ in range(5)]
    for _ in range(4):
        old_execution(task, days_old=40)
    summary = cleanup_executions(Ctx(), days=30, batch_size=2)
    assert "Deleted 4 finished execution(s)" in summary
    assert "in 2 batch(es)" in summary
    assert sorted(Execution.objects.values_list("pk", flat=True)) == running


@pytest.mark.django_db
def test_cleanup_defaults_to_the_cleanup_days_setting(settings):
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "CLEANUP_DAYS": 7}
    task = make_task()
    eight = old_execution(task, days_old=8).pk
    six = old_execution(task, days_old=6).pk
    summary = cleanup_executions(Ctx())
    assert "(7 day(s) kept)" in summary
    assert list(Execution.objects.values_list("pk", flat=True)) == [six]
    assert eight != six


@pytest.mark.django_db
def test_cleanup_keeps_a_recent_retry_whose_first_attempt_is_deleted():
    task = make_task()
    first = old_execution(task, days_old=40, status="failed")
    retry = old_execution(task, days_old=1, status="completed", trigger="retry", retry_of=first)
    cleanup_executions(Ctx(), days=30)
    retry.refresh_from_db()
    assert retry.retry_of is None
    assert not Execution.objects.filter(pk=first.pk).exists()


@pytest.mark.django_db
def test_cleanup_logs_its_summary_to_the_run_output():
    ctx = Ctx()
    cleanup_executions(ctx, days=30)
    assert ctx.output.startswith("[INFO] Deleted 0 finished execution(s)")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"days": 0}, "days must be a whole number of at least 1, not 0"),
        ({"days": "30"}, "days must be a whole number"),
        ({"days": True}, "days must be a whole number"),
        ({"batch_size": 0}, "batch_size must be a whole number of at least 1"),
    ],
)
def test_cleanup_refuses_nonsense_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        cleanup_executions(Ctx(), **params)


# --- crm.auto_close_resolved_tickets --------------------------------------------------------


@pytest.mark.django_db
def test_auto_close_closes_only_tickets_resolved_more_than_n_hours_ago():
    old = make_ticket(status="resolved", resolved_at=T0 - timedelta(hours=25))
    recent = make_ticket(status="resolved", resolved_at=T0 - timedelta(hours=23))
    exactly = make_ticket(status="resolved", resolved_at=T0 - timedelta(hours=24))
    unknown = make_ticket(status="resolved", resolved_at=None)
    reopened = make_ticket(status="open", resolved_at=T0 - timedelta(days=9))
    summary = auto_close_resolved_tickets(Ctx(), hours=24)
    assert summary == "Closed 1 ticket(s) resolved before 2026-01-04 09:00 UTC."
    statuses = {t.pk: t.status for t in Ticket.objects.all()}
    assert statuses == {
        old.pk: "closed",
        recent.pk: "resolved",
        exactly.pk: "resolved",
        unknown.pk: "resolved",
        reopened.pk: "open",
    }
    old.refresh_from_db()
    assert old.updated_at == T0
    assert old.resolved_at == T0 - timedelta(hours=25)  # history kept


@pytest.mark.django_db
def test_auto_close_hours_parameter():
    ticket = make_ticket(status="resolved", resolved_at=T0 - timedelta(hours=3))
    assert auto_close_resolved_tickets(Ctx(), hours=4).startswith("Closed 0 ")
    assert auto_close_resolved_tickets(Ctx(), hours=2.5).startswith("Closed 1 ")
    ticket.refresh_from_db()
    assert ticket.status == "closed"


@pytest.mark.parametrize("hours", ["24", -1, None, True])
def test_auto_close_refuses_nonsense_hours(hours):
    with pytest.raises(ValueError, match="hours must be a number"):
        auto_close_resolved_tickets(Ctx(), hours=hours)


# --- crm.disable_expired_companies ----------------------------------------------------------


@pytest.mark.django_db
def test_disable_expired_companies_uses_the_local_date_of_the_run(settings):
    def company(name: str, ends: date | None, active: bool = True) -> Company:
        c = make_company(name)
        Company.objects.filter(pk=c.pk).update(contract_ends_on=ends, is_active=active)
        return c

    company("long-gone", date(2025, 6, 1))
    company("ended-jan-3", date(2026, 1, 3))
    company("ended-jan-4", date(2026, 1, 4))
    company("ends-jan-5", date(2026, 1, 5))
    company("no-contract-end", None)
    company("already-off", date(2025, 1, 1), active=False)
    # 2026-01-05 03:00 UTC is still Sunday 4 January in New York.
    settings.TIME_ZONE = "America/New_York"
    ny = Ctx(T0.replace(hour=3))
    assert disable_expired_companies(ny) == (
        "Disabled 2 company(ies) whose contract ended before 2026-01-04."
    )
    assert set(Company.objects.filter(is_active=True).values_list("name", flat=True)) == {
        "ended-jan-4",
        "ends-jan-5",
        "no-contract-end",
    }
    settings.TIME_ZONE = "UTC"  # ... and already Monday 5 January in UTC.
    assert disable_expired_companies(Ctx(T0.replace(hour=3))).startswith("Disabled 1 ")
    assert set(Company.objects.filter(is_active=True).values_list("name", flat=True)) == {
        "ends-jan-5",
        "no-contract-end",
    }


# --- registration and installation ----------------------------------------------------------


def test_builtin_jobs_are_registered_with_their_parameters():
    signatures = {f.name: f.signature_text() for f in registry.all_functions()}
    assert signatures["scheduled_tasks.cleanup_executions"] == (
        "scheduled_tasks.cleanup_executions(days=None, batch_size=1000)"
    )
    assert (
        signatures["crm.auto_close_resolved_tickets"] == "crm.auto_close_resolved_tickets(hours=24)"
    )
    assert signatures["crm.disable_expired_companies"] == "crm.disable_expired_companies()"
    assert registry.get("crm.disable_expired_companies").description


def test_a_fresh_process_registers_every_apps_jobs_at_startup():
    proc = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from scheduled_tasks import registry; "
        "print(sorted(f.name for f in registry.all_functions()))",
    )
    assert proc.returncode == 0, proc.stderr
    for name in (
        "crm.auto_close_resolved_tickets",
        "crm.disable_expired_companies",
        "scheduled_tasks.cleanup_executions",
    ):
        assert repr(name) in proc.stdout


@pytest.mark.django_db
def test_install_builtin_tasks_creates_the_weekly_cleanup_once(settings):
    settings.TIME_ZONE = "Europe/Madrid"
    first = install_builtin_tasks(T0)
    assert [(t.name, created) for t, created in first] == [("Clean up old executions", True)]
    task = ScheduledTask.objects.get()
    assert task.function_name == "scheduled_tasks.cleanup_executions"
    assert task.function_params == {}
    assert task.code == ""
    assert (task.schedule_kind, task.cron_expression) == ("cron", "0 3 * * SUN")
    assert task.time_zone == "Europe/Madrid"
    assert task.timeout_seconds == 3600
    assert task.is_active
    # T0 is Monday 2026-01-05; the next Sunday 03:00 in Madrid (CET, UTC+1) is 02:00 UTC.
    assert task.next_run_at == T0.replace(day=11, hour=2)
    assert registry.param_problems(task.function_name, task.function_params) == []

    again = install_builtin_tasks(T0 + timedelta(days=3))
    assert [(t.pk, created) for t, created in again] == [(task.pk, False)]
    assert ScheduledTask.objects.count() == 1


@pytest.mark.django_db
def test_install_builtin_tasks_leaves_an_edited_task_alone():
    install_builtin_tasks(T0)
    ScheduledTask.objects.update(cron_expression="0 4 * * SAT", is_active=False)
    install_builtin_tasks(T0)
    task = ScheduledTask.objects.get()
    assert (task.cron_expression, task.is_active) == ("0 4 * * SAT", False)


@pytest.mark.django_db
def test_install_builtin_tasks_command_is_idempotent():
    out = StringIO()
    call_command("install_builtin_tasks", stdout=out)
    call_command("install_builtin_tasks", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("“Clean up old executions” (")
    assert lines[0].endswith(": created")
    assert lines[1].endswith(": already present, left unchanged")
    assert ScheduledTask.objects.filter(name="Clean up old executions").count() == 1


# --- end to end: through the runner and the real sandbox child ------------------------------


@pytest.mark.django_db(transaction=True)
def test_installed_cleanup_task_runs_in_the_sandbox_and_deletes_old_history():
    [(task, _)] = install_builtin_tasks(T0)
    now = timezone.now()
    other = make_task(name="noisy", anchor=now + timedelta(days=1))
    ancient = [make_execution(other, created_at=now - timedelta(days=40)).pk for _ in range(3)]
    fresh = make_execution(other, created_at=now - timedelta(days=1)).pk
    ScheduledTask.objects.filter(pk=task.pk).update(next_run_at=now - timedelta(seconds=1))
    report = runner.tick(now)
    [execution] = report.executions
    assert execution.task_id == task.pk
    assert execution.status == "completed", execution.error
    assert "Deleted 3 finished execution(s)" in execution.output
    assert not Execution.objects.filter(pk__in=ancient).exists()
    assert Execution.objects.filter(pk=fresh).exists()
    task.refresh_from_db()
    assert task.next_run_at > now
    assert task.is_active


@pytest.mark.django_db(transaction=True)
def test_auto_close_function_task_runs_in_the_sandbox():
    stale = make_ticket(status="resolved", resolved_at=timezone.now() - timedelta(hours=30))
    task = make_task(
        name="auto-close",
        code="",
        function_name="crm.auto_close_resolved_tickets",
        function_params={"hours": 24},
    )
    execution = runner.run_task_now(task, now=timezone.now())
    assert execution.status == "completed", execution.error
    assert execution.output.startswith("Closed 1 ticket(s)")
    stale.refresh_from_db()
    assert stale.status == "closed"
