"""The scheduling engine through tick(): schedule kinds, catch-up and grace, max_instances,
retries, priority, leases, registered functions. Time is injected; the sandbox is faked except
where the real ``run_function`` child is the point."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest

from scheduled_tasks import claims, conf, leases, records, registry, runner, schedules
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.sandbox import SnippetResult, run_function
from tests.factories import T0, claim_slot, make_execution, make_task

pytestmark = pytest.mark.django_db

S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)


class Clock:
    """An injected clock a test (or a fake sandbox) moves by hand."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


class FakeSandbox:
    """Stands in for run_snippet (call it) and run_function (``.function``).

    Answers with the statuses queued in ``outcomes`` (then "completed"); ``during`` is called
    with the options while the "run" is in progress, to act as the world would meanwhile.
    """

    def __init__(self, *outcomes: str, during=None) -> None:
        self.outcomes = list(outcomes)
        self.during = during
        self.calls: list[tuple[str, object, dict]] = []

    def _answer(self, what: str, options: dict) -> SnippetResult:
        if self.during is not None:
            self.during(options)
        status = self.outcomes.pop(0) if self.outcomes else "completed"
        error = "" if status == "completed" else f"it {status}"
        return SnippetResult(status, f"ran {what}\n", error, 0.01)

    def __call__(self, code: str, **options: object) -> SnippetResult:
        self.calls.append(("snippet", code, options))
        return self._answer(code, options)

    def function(self, name: str, params: dict, **options: object) -> SnippetResult:
        self.calls.append(("function", (name, params), options))
        return self._answer(name, options)

    @property
    def ran(self) -> list[object]:
        return [what for _, what, _ in self.calls]


def tick(now: datetime, sandbox: FakeSandbox | None = None, clock=None) -> runner.TickReport:
    sandbox = sandbox or FakeSandbox()
    return runner.tick(
        now,
        clock=clock or Clock(now),
        snippet_executor=sandbox,
        function_executor=sandbox.function,
    )


def reload(task: ScheduledTask) -> ScheduledTask:
    task.refresh_from_db()
    return task


# --- schedule kinds through tick ----------------------------------------------------------


def test_cron_task_runs_at_its_slot_and_next_run_is_computed_in_its_zone():
    task = make_task(schedule_kind="cron", cron_expression="30 8 * * *", time_zone="Europe/Madrid")
    # T0 is 10:00 in Madrid (CET, UTC+1): the first 08:30 is tomorrow, 07:30 UTC.
    first = datetime(2026, 1, 6, 7, 30, tzinfo=UTC)
    assert task.next_run_at == first
    assert tick(first - S).executions == []
    sandbox = FakeSandbox()
    report = tick(first, sandbox)
    assert [(e.scheduled_for, e.status) for e in report.executions] == [(first, "completed")]
    assert reload(task).next_run_at == first + timedelta(days=1)
    assert len(sandbox.calls) == 1


def test_cron_task_keeps_its_wall_clock_time_across_a_dst_change():
    # New York springs forward on Sunday 2026-03-08: 09:00 is 14:00 UTC before, 13:00 after.
    before = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
    task = make_task(
        schedule_kind="cron",
        cron_expression="0 9 * * *",
        time_zone="America/New_York",
        next_run_at=before,
    )
    tick(before)
    assert reload(task).next_run_at == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    tick(task.next_run_at)
    assert reload(task).next_run_at == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


def test_one_off_task_runs_once_then_deactivates_itself_and_never_runs_again():
    at = T0 + H
    task = make_task(schedule_kind="once", run_at=at)
    assert task.next_run_at == at
    assert tick(T0).executions == []
    sandbox = FakeSandbox()
    report = tick(at + 5 * S, sandbox)
    assert [(e.scheduled_for, e.status) for e in report.executions] == [(at, "completed")]
    task = reload(task)
    assert (task.is_active, task.next_run_at, task.last_status) == (False, None, "completed")
    for later in (at + 10 * S, at + H, at + timedelta(days=400)):
        assert tick(later, sandbox).executions == []
        assert runner.plan(later) == []
    assert Execution.objects.filter(task=task).count() == 1
    assert len(sandbox.calls) == 1


def test_failed_one_off_is_still_retried_after_it_deactivated_itself():
    at = T0 + H
    task = make_task(schedule_kind="once", run_at=at, max_retries=1, retry_backoff_seconds=30)
    tick(at, FakeSandbox("failed"))
    assert reload(task).is_active is False
    report = tick(at + 30 * S)
    assert [(e.trigger, e.attempt, e.status) for e in report.executions] == [
        ("retry", 2, "completed")
    ]


# --- catch-up and grace -------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "covered", "skipped"), [("run_once", 13, 0), ("skip", 1, 12)])
def test_catch_up_policy_after_downtime(policy, covered, skipped):
    task = make_task(every=10, unit="minutes", catch_up=policy)
    back = T0 + 2 * H + 3 * MIN  # slots T0, T0+10min, ..., T0+2h were missed: 13 of them
    sandbox = FakeSandbox()
    report = tick(back, sandbox)
    [execution] = report.executions
    assert (execution.slots_covered, execution.slots_skipped) == (covered, skipped)
    # run_once stands for the first missed slot; skip runs (and records) only the latest.
    slot = T0 if policy == "run_once" else T0 + 2 * H
    assert (execution.status, execution.scheduled_for) == ("completed", slot)
    assert len(sandbox.calls) == 1
    # The schedule resumes on its grid, not at back + 10 minutes.
    assert reload(task).next_run_at == T0 + 2 * H + 10 * MIN


@pytest.mark.parametrize("policy", ["run_once", "skip"])
def test_a_slot_taken_on_time_covers_itself_only(policy):
    make_task(every=10, unit="minutes", catch_up=policy)
    [execution] = tick(T0 + 2 * S).executions
    assert (execution.slots_covered, execution.slots_skipped) == (1, 0)


def test_slot_later_than_the_grace_period_is_recorded_as_skipped_not_run():
    task = make_task(every=1, unit="hours", grace_seconds=300)
    sandbox = FakeSandbox()
    now = T0 + 10 * MIN
    report = tick(now, sandbox)
    assert report.executions == []
    [skipped] = report.skipped
    assert sandbox.calls == []
    skipped.refresh_from_db()
    assert skipped.status == "skipped"
    assert (skipped.slots_covered, skipped.slots_skipped) == (0, 1)
    assert (skipped.scheduled_for, skipped.started_at, skipped.finished_at) == (T0, None, now)
    assert skipped.lease_expires_at is None
    task = reload(task)
    assert (task.next_run_at, task.last_status, task.last_run_at) == (T0 + H, "skipped", None)
    # The next slot, taken within the grace period, runs.
    [execution] = tick(T0 + H + 4 * MIN, sandbox).executions
    assert (execution.status, execution.scheduled_for) == ("completed", T0 + H)


def test_slot_within_the_grace_period_runs():
    make_task(every=1, unit="hours", grace_seconds=300)
    [execution] = tick(T0 + 5 * MIN).executions
    assert execution.status == "completed"


@pytest.mark.parametrize(
    ("back", "ran", "skipped"),
    [(2 * H + 119 * S, 13, 0), (2 * H + 120 * S, 13, 0), (2 * H + 121 * S, 0, 13)],
)
def test_grace_period_judges_the_latest_missed_slot(back, ran, skipped):
    make_task(every=10, unit="minutes", grace_seconds=120)
    # Back after two hours: 13 slots were missed, the latest (T0+2h) is `back - 2h` old.
    report = tick(T0 + back)
    assert [e.slots_covered for e in report.executions] == ([ran] if ran else [])
    assert [e.slots_skipped for e in report.skipped] == ([skipped] if skipped else [])


# --- max_instances ------------------------------------------------------------------------


def test_max_instances_two_allows_two_runs_and_refuses_a_third():
    task = make_task(every=1, unit="minutes", max_instances=2)
    first = claim_slot(task.pk, T0, T0 + 50 * S)  # both leases outlast the next slot
    second = claims.claim_manual(task, T0 + 55 * S)
    assert first is not None and first.runs and second.execution.status == "running"
    # The next slot comes while both still run: refused, and the slot stays due.
    sandbox = FakeSandbox()
    report = tick(T0 + MIN, sandbox)
    assert report.executions == [] and sandbox.calls == []
    assert [t.pk for t in report.busy] == [task.pk]
    assert reload(task).next_run_at == T0 + MIN
    assert claim_slot(task.pk, T0 + MIN, T0 + MIN) is None
    with pytest.raises(claims.TaskBusy, match="already running"):
        claims.claim_manual(task, T0 + MIN)
    with pytest.raises(runner.TaskBusy, match="already running"):
        runner.run_task_now(task, now=T0 + MIN, snippet_executor=sandbox)
    assert Execution.objects.filter(task=task).count() == 2
    # One ends: the waiting slot runs, collapsed with the one that came meanwhile.
    records.finish(first.execution, SnippetResult("completed", "", "", 1.0), T0 + MIN + S)
    [execution] = tick(T0 + 2 * MIN + S, sandbox).executions
    assert (execution.scheduled_for, execution.slots_covered) == (T0 + MIN, 2)


def test_default_max_instances_is_one():
    task = make_task(every=1, unit="minutes")
    assert task.max_instances == 1
    claims.claim_manual(task, T0)
    with pytest.raises(claims.TaskBusy):
        claims.claim_manual(task, T0)


def test_a_run_whose_lease_expired_no_longer_counts_against_max_instances():
    task = make_task(every=1, unit="days")
    claims.claim_manual(task, T0)
    lease = conf.get("LEASE_SECONDS")
    with pytest.raises(claims.TaskBusy):
        claims.claim_manual(task, T0 + (lease - 1) * S)
    assert claims.claim_manual(task, T0 + lease * S).execution.status == "running"


# --- retries ------------------------------------------------------------------------------


def test_failed_run_is_retried_with_exponential_backoff_until_retries_are_used_up():
    task = make_task(every=1, unit="days", max_retries=2, retry_backoff_seconds=60)
    sandbox = FakeSandbox("failed", "failed", "failed", "failed")
    [first] = tick(T0, sandbox, clock=Clock(T0 + 5 * S)).executions  # finished 5 s in
    assert (first.status, first.attempt, first.trigger) == ("failed", 1, "schedule")
    retry = Execution.objects.get(status="pending")
    assert (retry.trigger, retry.attempt, retry.retry_of_id) == ("retry", 2, first.pk)
    assert retry.not_before == T0 + 5 * S + 60 * S  # finish + backoff
    assert retry.scheduled_for is None

    assert tick(T0 + 64 * S, sandbox).executions == []  # not yet
    [second] = tick(T0 + 65 * S, sandbox).executions
    assert (second.pk, second.attempt, second.status) == (retry.pk, 2, "failed")
    third_pending = Execution.objects.get(status="pending")
    assert third_pending.attempt == 3
    assert third_pending.retry_of_id == first.pk  # linked to the first run, not the second
    assert third_pending.not_before == T0 + 65 * S + 120 * S  # twice as long

    [third] = tick(T0 + 185 * S, sandbox).executions
    assert (third.attempt, third.status) == (3, "failed")
    # max_retries=2: three attempts in all, then no more.
    assert not Execution.objects.filter(status="pending").exists()
    assert tick(T0 + timedelta(hours=5), sandbox).executions == []
    assert len(sandbox.calls) == 3
    assert list(first.retries.order_by("attempt").values_list("attempt", flat=True)) == [2, 3]
    assert reload(task).last_status == "failed"


def test_successful_retry_ends_the_chain():
    make_task(every=1, unit="days", max_retries=5, retry_backoff_seconds=10)
    tick(T0, FakeSandbox("failed"))
    [retry] = tick(T0 + 10 * S).executions
    assert (retry.attempt, retry.status) == (2, "completed")
    assert not Execution.objects.filter(status="pending").exists()


@pytest.mark.parametrize("status", ["completed", "failed", "timeout"])
def test_without_max_retries_nothing_is_retried(status):
    make_task(every=1, unit="days")
    tick(T0, FakeSandbox(status))
    assert not Execution.objects.filter(status="pending").exists()


def test_timed_out_run_is_retried():
    make_task(every=1, unit="days", max_retries=1, retry_backoff_seconds=30)
    [execution] = tick(T0, FakeSandbox("timeout")).executions
    assert execution.status == "timeout"
    retry = Execution.objects.get(status="pending")
    assert (retry.attempt, retry.retry_of_id, retry.not_before) == (2, execution.pk, T0 + 30 * S)


def test_abandoned_run_is_retried():
    task = make_task(every=1, unit="days", max_retries=1, retry_backoff_seconds=30)
    claim = claim_slot(task.pk, T0, T0)
    assert claim is not None
    reaped_at = T0 + (conf.get("LEASE_SECONDS") + 1) * S
    assert leases.reap_abandoned(reaped_at) == 1
    retry = Execution.objects.get(status="pending")
    assert (retry.attempt, retry.retry_of_id) == (2, claim.execution.pk)
    assert retry.not_before == reaped_at + 30 * S
    [ran] = tick(reaped_at + 30 * S).executions
    assert (ran.pk, ran.status) == (retry.pk, "completed")


def test_pending_retry_waits_while_the_task_is_at_max_instances():
    task = make_task(every=1, unit="days", max_retries=1, retry_backoff_seconds=60)
    tick(T0, FakeSandbox("failed"))
    manual = claims.claim_manual(task, T0 + 30 * S)  # someone pressed "Run now"
    sandbox = FakeSandbox()
    assert tick(T0 + 61 * S, sandbox).executions == []
    assert sandbox.calls == []
    assert Execution.objects.filter(status="pending").count() == 1
    records.finish(manual.execution, SnippetResult("completed", "", "", 1.0), T0 + 70 * S)
    [retry] = tick(T0 + 71 * S, sandbox).executions
    assert (retry.trigger, retry.status) == ("retry", "completed")


def test_claimed_retry_cannot_be_claimed_again():
    task = make_task(every=1, unit="days")
    pending = make_execution(task, status="pending", trigger="retry", attempt=2, not_before=T0)
    assert claims.claim_pending(pending.pk, T0) is not None
    assert claims.claim_pending(pending.pk, T0) is None


# --- priority -----------------------------------------------------------------------------


def test_higher_priority_runs_first_then_the_longest_waiting():
    make_task(name="low", code="low", priority=-5, next_run_at=T0 - H)
    make_task(name="normal-newer", code="normal-newer", next_run_at=T0 - MIN)
    make_task(name="normal-older", code="normal-older", next_run_at=T0 - 2 * MIN)
    make_task(name="high", code="high", priority=10, next_run_at=T0)
    urgent = make_task(name="urgent", code="urgent-retry", priority=50, next_run_at=T0 + H)
    make_execution(urgent, status="pending", trigger="retry", attempt=2, not_before=T0 - S)
    sandbox = FakeSandbox()
    tick(T0, sandbox)
    assert sandbox.ran == ["urgent-retry", "high", "normal-older", "normal-newer", "low"]


# --- leases -------------------------------------------------------------------------------


def test_heartbeat_extends_the_lease_so_a_long_run_is_not_reaped():
    task = make_task(every=1, unit="days")
    lease = conf.get("LEASE_SECONDS") * S
    clock = Clock(T0)
    seen: dict[str, object] = {}

    def long_run(options):
        execution = Execution.objects.get(task=task)
        assert execution.lease_expires_at == T0 + lease
        clock.moment = T0 + lease - S
        options["heartbeat"]()  # the sandbox calls it every LEASE_SECONDS / 3 while it runs
        execution.refresh_from_db()
        seen["lease"] = execution.lease_expires_at
        clock.moment = T0 + lease + S  # past the first lease: not stale any more
        seen["reaped"] = leases.reap_abandoned(clock.moment)

    [execution] = tick(T0, FakeSandbox(during=long_run), clock=clock).executions
    assert seen == {"lease": T0 + 2 * lease - S, "reaped": 0}
    assert execution.status == "completed"
    assert execution.lease_expires_at is None


def test_renewing_a_reaped_run_fails_and_does_not_revive_it():
    task = make_task(every=1, unit="days")
    claim = claim_slot(task.pk, T0, T0)
    lease = conf.get("LEASE_SECONDS") * S
    assert leases.renew_lease(claim.execution.pk, T0 + 30 * S) is True
    assert leases.reap_abandoned(T0 + lease + 30 * S) == 1
    assert leases.renew_lease(claim.execution.pk, T0 + lease + 31 * S) is False
    claim.execution.refresh_from_db()
    assert (claim.execution.status, claim.execution.lease_expires_at) == ("abandoned", None)


def test_a_runner_that_lost_its_lease_says_so_in_the_log(caplog):
    make_task(every=1, unit="days")
    clock = Clock(T0)

    def frozen_past_the_lease(options):
        clock.moment = T0 + (conf.get("LEASE_SECONDS") + 1) * S
        leases.reap_abandoned(clock.moment)  # another runner's tick
        options["heartbeat"]()

    with caplog.at_level(logging.WARNING, logger="scheduled_tasks.runner"):
        tick(T0, FakeSandbox(during=frozen_past_the_lease), clock=clock)
    assert "lost its lease (reaped as abandoned)" in caplog.text


def frozen_past_the_lease_then(status: str, clock: Clock) -> FakeSandbox:
    """A runner frozen (SIGSTOP, a paused VM) past its lease: another runner reaps its run,
    then it wakes up and its run ends with ``status``."""

    def during(options):
        clock.moment = T0 + 2 * conf.get("LEASE_SECONDS") * S
        assert leases.reap_abandoned(clock.moment) == 1

    return FakeSandbox(status, during=during)


def test_run_that_completes_after_being_reaped_leaves_no_retry_to_run_it_again():
    make_task(every=1, unit="days", max_retries=1, retry_backoff_seconds=10)
    clock = Clock(T0)
    [execution] = tick(T0, frozen_past_the_lease_then("completed", clock), clock=clock).executions
    assert execution.status == "completed"
    assert not Execution.objects.filter(status="pending").exists()


def test_run_that_fails_after_being_reaped_is_retried_once_not_twice():
    make_task(every=1, unit="days", max_retries=3, retry_backoff_seconds=10)
    clock = Clock(T0)
    tick(T0, frozen_past_the_lease_then("failed", clock), clock=clock)
    assert Execution.objects.filter(status="pending").count() == 1


# --- abandoned runs -----------------------------------------------------------------------


def test_abandoned_run_is_reaped_and_the_task_is_scheduled_again():
    task = make_task(every=1, unit="minutes")
    claimed = T0 + 30 * S
    claim = claim_slot(task.pk, T0, claimed)  # ... and then the runner died
    expiry = claimed + conf.get("LEASE_SECONDS") * S
    # Before the lease runs out the run still counts: the next slot (T0+1min) waits.
    early = tick(expiry - S)
    assert (early.abandoned, early.executions, [t.pk for t in early.busy]) == (0, [], [task.pk])
    report = tick(expiry)
    assert report.abandoned == 1
    claim.execution.refresh_from_db()
    assert claim.execution.status == "abandoned"
    assert claim.execution.finished_at == expiry
    assert "lease expired" in claim.execution.error
    [execution] = report.executions
    assert (execution.scheduled_for, execution.status) == (T0 + MIN, "completed")
    task = reload(task)
    assert task.next_run_at > expiry
    assert task.last_status == "completed"


# --- registered functions -----------------------------------------------------------------


@registry.register("tests.engine.greet", description="Say hello.")
def greet(ctx: registry.JobContext, *, name: str = "world") -> dict[str, str]:
    ctx.print(f"hello {name} at {ctx.now.isoformat()}")
    ctx.log("greeted %s person(s)", 1)
    return {"greeted": name}


@registry.register("tests.engine.quiet")
def quiet(ctx: registry.JobContext) -> None:
    ctx.print("nothing to return")


@registry.register("tests.engine.explode")
def explode(ctx: registry.JobContext, *, customer_id: int) -> None:
    ctx.print("about to fail")
    raise ValueError(f"no such customer: {customer_id}")


@registry.register("tests.engine.sleepy")
def sleepy(ctx: registry.JobContext, *, seconds: float = 30) -> None:
    ctx.print("going to sleep")
    time.sleep(seconds)


def test_function_task_goes_to_the_function_executor_with_its_params_and_the_run_time():
    task = make_task(
        code="",
        function_name="tests.engine.greet",
        function_params={"name": "Ada"},
        timeout_seconds=7,
    )
    sandbox = FakeSandbox()
    [execution] = tick(T0, sandbox, clock=Clock(T0 + 2 * S)).executions
    [(kind, (name, params), options)] = sandbox.calls
    assert (kind, name, params) == ("function", "tests.engine.greet", {"name": "Ada"})
    assert options["now"] == T0 + 2 * S
    assert (options["timeout"], options["label"]) == (7, f"task-{task.pk}")
    assert callable(options["heartbeat"])
    assert (execution.status, execution.output) == ("completed", "ran tests.engine.greet\n")


def test_function_task_without_a_timeout_gets_the_default():
    make_task(code="", function_name="tests.engine.quiet")
    sandbox = FakeSandbox()
    tick(T0, sandbox)
    assert sandbox.calls[0][2]["timeout"] == conf.get("DEFAULT_TIMEOUT_SECONDS")


def test_failed_function_task_is_retried_like_a_snippet():
    make_task(code="", function_name="tests.engine.greet", max_retries=1)
    tick(T0, FakeSandbox("failed"))
    assert Execution.objects.get(status="pending").attempt == 2


def test_real_function_task_through_tick_records_output_and_return_value():
    make_task(code="", function_name="tests.engine.greet", function_params={"name": "Ada"})
    [execution] = runner.tick(T0, clock=Clock(T0), snippet_executor=FakeSandbox()).executions
    assert execution.status == "completed", execution.error
    assert execution.output == (
        "hello Ada at 2026-01-05T09:00:00+00:00\n[INFO] greeted 1 person(s)\n{'greeted': 'Ada'}\n"
    )


def test_run_function_in_a_child_prints_output_and_the_return_value():
    result = run_function("tests.engine.greet", {}, now=T0, timeout=10)
    assert (result.status, result.error) == ("completed", "")
    assert result.output == (
        "hello world at 2026-01-05T09:00:00+00:00\n"
        "[INFO] greeted 1 person(s)\n"
        "{'greeted': 'world'}\n"
    )


def test_run_function_prints_nothing_for_a_none_return():
    result = run_function("tests.engine.quiet", {}, now=T0, timeout=10)
    assert (result.status, result.output) == ("completed", "nothing to return\n")


def test_run_function_exception_gives_the_functions_traceback_not_the_sandboxs():
    result = run_function("tests.engine.explode", {"customer_id": 42}, now=T0, timeout=10)
    assert result.status == "failed"
    assert result.output == "about to fail\n"
    assert result.error.startswith("Traceback (most recent call last):")
    assert "in explode" in result.error
    assert 'raise ValueError(f"no such customer: {customer_id}")' in result.error
    assert result.error.endswith("ValueError: no such customer: 42")
    assert "execute_function" not in result.error
    assert "isolation.py" not in result.error


def test_run_function_is_killed_at_its_timeout_keeping_what_it_printed():
    result = run_function("tests.engine.sleepy", {"seconds": 30}, now=T0, timeout=1)
    assert result.status == "timeout"
    assert result.error == "timed out after 1 s"
    assert result.output == "going to sleep\n"
    assert result.duration < 10


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("tests.engine.nope", {}, "no registered function is called 'tests.engine.nope'"),
        ("tests.engine.greet", {"nmae": "x"}, "tests.engine.greet has no parameter 'nmae'"),
        ("tests.engine.explode", {}, "tests.engine.explode needs the parameter 'customer_id'"),
    ],
)
def test_run_function_refuses_bad_calls_in_the_child(name, params, message):
    result = run_function(name, params, now=T0, timeout=10)
    assert result.status == "failed"
    assert message in result.error


@registry.register("tests.engine.no_params")
def no_params(ctx: registry.JobContext) -> None:
    pass


@pytest.mark.parametrize(
    ("name", "params", "problems"),
    [
        ("tests.engine.greet", {}, []),
        ("tests.engine.greet", {"name": "Ada"}, []),
        ("tests.engine.explode", {"customer_id": 7}, []),
        ("tests.engine.nope", {}, ["no registered function is called 'tests.engine.nope'"]),
        ("tests.engine.greet", [], ["parameters must be a JSON object"]),
        ("tests.engine.greet", "name=Ada", ["parameters must be a JSON object"]),
        ("tests.engine.greet", None, ["parameters must be a JSON object"]),
        (
            "tests.engine.greet",
            {"nmae": "Ada"},
            ["tests.engine.greet has no parameter 'nmae' (parameters: name)"],
        ),
        (
            "tests.engine.no_params",
            {"x": 1},
            ["tests.engine.no_params has no parameter 'x' (parameters: none)"],
        ),
        ("tests.engine.explode", {}, ["tests.engine.explode needs the parameter 'customer_id'"]),
        (
            "tests.engine.explode",
            {"customer_id": 1, "extra": 2},
            ["tests.engine.explode has no parameter 'extra' (parameters: customer_id)"],
        ),
        ("tests.engine.greet", {"name": {1, 2}}, ["parameters must be plain JSON values"]),
        ("tests.engine.greet", {"name": T0}, ["parameters must be plain JSON values"]),
    ],
)
def test_param_problems(name, params, problems):
    assert registry.param_problems(name, params) == problems


def test_registering_another_function_under_a_taken_name_is_refused():
    with pytest.raises(ValueError, match=r"already registered as 'tests\.engine\.greet'"):
        registry.register("tests.engine.greet")(lambda ctx: None)
    assert registry.register("tests.engine.greet", description="Say hello.")(greet) is greet


def test_registered_function_defaults_to_its_dotted_path_and_docstring():
    def tidy(ctx: registry.JobContext, *, keep: int = 3) -> None:
        """Tidy things up.

        More words."""

    registry.register()(tidy)
    registered = registry.get(f"{__name__}.{tidy.__qualname__}")
    assert registered.description == "Tidy things up."
    assert registered.defaults() == {"keep": 3}


# --- robustness of the claim --------------------------------------------------------------


def test_claim_after_a_month_of_downtime_does_bounded_schedule_work(monkeypatch):
    task = make_task(every=1, unit="minutes")
    calls = 0
    real = schedules.next_fire_time

    def counting(*args, **kwargs):
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(schedules, "next_fire_time", counting)
    claim = claim_slot(task.pk, T0, T0 + timedelta(days=30))
    assert claim is not None
    assert claim.execution.slots_covered == 30 * 24 * 60 + 1
    assert calls < 100


def test_a_task_with_a_broken_stored_schedule_does_not_stop_the_others():
    broken = make_task(name="a-broken", next_run_at=T0)
    ScheduledTask.objects.filter(pk=broken.pk).update(time_zone="Mars/Olympus_Mons")
    make_task(name="b-fine", code="fine", next_run_at=T0)
    sandbox = FakeSandbox()
    tick(T0, sandbox)
    assert sandbox.ran == ["fine"]


def test_a_claim_records_the_moment_it_was_made():
    task = make_task(every=1, unit="days", anchor=T0 + H)
    first = claims.claim_manual(task, T0)  # runner A runs the task
    make_execution(task, status="pending", trigger="retry", attempt=2, not_before=T0)
    read_at = T0 + 10 * S
    moment = {"now": read_at}

    def clock() -> datetime:
        # Runner B has read the clock; before its claim gets the task, A's run ends.
        if first.execution.status == "running":
            records.finish(first.execution, SnippetResult("completed", "", "", 1.0), read_at + S)
            moment["now"] = read_at + 2 * S
            return read_at
        return moment["now"]

    [second] = runner.tick(read_at, clock=clock, snippet_executor=FakeSandbox()).executions
    assert second.trigger == "retry"
    # Claimed only once A had finished, so it cannot have started before A finished.
    assert second.started_at >= first.execution.finished_at


# --- parameter types of registered functions -------------------------------------------------


@registry.register("tests.engine.typed")
def typed(ctx: registry.JobContext, *, hours: int | float = 24, label: str = "", on: bool = False):
    return None


@registry.register("tests.engine.open_ended")
def open_ended(ctx: registry.JobContext, **options: object):
    return options


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"hours": 3}, None),
        ({"hours": 2.5}, None),
        ({"hours": "24"}, "'hours' must be a whole number or a number, not '24'"),
        ({"hours": True}, "'hours' must be a whole number or a number, not True"),
        ({"label": 5}, "'label' must be a string, not 5"),
        ({"on": 1}, "'on' must be true or false, not 1"),
        ({"nope": 1}, "has no parameter 'nope'"),
    ],
)
def test_function_parameters_are_checked_against_their_annotations(params, problem):
    problems = registry.param_problems("tests.engine.typed", params)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]


def test_a_function_taking_keyword_arguments_accepts_any_parameter():
    assert registry.param_problems("tests.engine.open_ended", {"anything": [1, 2]}) == []
