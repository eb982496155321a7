"""/metrics: the Prometheus exposition of the scheduler's figures (scheduled_tasks/metrics.py)
and who may read it (scheduled_tasks/views/metrics.py)."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from scheduled_tasks import checks, conf, metrics
from scheduled_tasks.models import Alert, Execution, RunnerHeartbeat, ScheduledTask
from tests.factories import T0, make_execution, make_task, make_user

pytestmark = pytest.mark.django_db

S = timedelta(seconds=1)
H = timedelta(hours=1)
TOKEN = "scrape-token-0123456789abcdef"
Sched = Execution.Trigger.SCHEDULE
Manual = Execution.Trigger.MANUAL
Status = Execution.Status


def scheduled(task: ScheduledTask, slot: datetime, late: float, **values: Any) -> Execution:
    return make_execution(
        task, trigger=Sched, scheduled_for=slot, started_at=slot + late * S, **values
    )


def known_world() -> None:
    """Executions, runners and alerts whose figures the tests know by heart."""
    alpha = make_task(name="alpha")
    beta = make_task(name="beta", is_active=False)
    scheduled(alpha, T0 - 3 * H, 0.05, duration_seconds=0.05)
    scheduled(alpha, T0 - 2 * H, 2, duration_seconds=3)
    scheduled(alpha, T0 - 1 * H, 40, status=Status.FAILED, duration_seconds=45)
    make_execution(alpha, duration_seconds=0.2)
    # A test run tries a draft: not counted, not timed (but it does wait in the queue).
    make_execution(alpha, trigger=Execution.Trigger.TEST, duration_seconds=500)
    make_execution(beta, trigger=Execution.Trigger.TEST, status=Status.PENDING)
    # Pending: a retry still backing off is not queued; one whose time came, and a claim, are.
    retry = Execution.Trigger.RETRY
    make_execution(alpha, trigger=retry, status=Status.PENDING, not_before=T0 + 60 * S)
    make_execution(alpha, trigger=retry, status=Status.PENDING, not_before=T0)
    make_execution(alpha, status=Status.PENDING)
    make_execution(alpha, status=Status.RUNNING, started_at=T0 - 10 * S)
    # Bucket bounds are inclusive: lateness 0.5 lands in le=0.5, duration 10 in le=10.
    scheduled(beta, T0 - 24 * H, 0.5, status=Status.TIMEOUT, duration_seconds=10)

    RunnerHeartbeat.objects.create(
        runner="web-1:101", kind="daemon", started_at=T0 - H, last_seen_at=T0 - 12.5 * S
    )
    RunnerHeartbeat.objects.create(
        runner="web-1:102",
        kind="worker",
        started_at=T0 - H,
        last_seen_at=T0 - H,
        stopped_at=T0 - H,
    )
    for key, kind, status in [
        ("f:1", "failures", "open"),
        ("f:2", "failures", "open"),
        ("m:1", "missed", "resolved"),
        ("down", "scheduler_down", "open"),
    ]:
        Alert.objects.create(key=key, kind=kind, status=status, message=key, opened_at=T0)


def scrape(now: datetime = T0) -> dict[str, dict[tuple, float]]:
    """metric family name -> {(sample name, sorted labels): value}."""
    text = metrics.render(now).decode()
    result: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        result[family.name] = {
            (s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples
        }
    return result


def buckets(samples: dict[tuple, float], name: str) -> dict[str, float]:
    return {
        dict(labels)["le"]: value
        for (sample, labels), value in samples.items()
        if sample == f"{name}_bucket"
    }


def test_the_exposition_parses_and_holds_every_family() -> None:
    known_world()
    families = {f.name: f.type for f in text_string_to_metric_families(metrics.render(T0).decode())}
    assert families == {
        "scheduled_tasks_executions": "gauge",
        "scheduled_tasks_execution_duration_seconds": "histogram",
        "scheduled_tasks_lateness_seconds": "histogram",
        "scheduled_tasks_queued": "gauge",
        "scheduled_tasks_running": "gauge",
        "scheduled_tasks_runner_heartbeat_age_seconds": "gauge",
        "scheduled_tasks_alerts_open": "gauge",
        "scheduled_tasks_tasks": "gauge",
    }


def test_executions_are_counted_by_task_and_status_without_test_runs() -> None:
    known_world()
    samples = scrape()["scheduled_tasks_executions"]
    counts = {tuple(v for _, v in labels): value for (_, labels), value in samples.items()}
    assert counts == {
        ("completed", "alpha"): 3,
        ("failed", "alpha"): 1,
        ("pending", "alpha"): 3,
        ("running", "alpha"): 1,
        ("timeout", "beta"): 1,
    }


def test_duration_histogram_is_cumulative_with_the_known_durations() -> None:
    known_world()
    name = "scheduled_tasks_execution_duration_seconds"
    samples = scrape()[name]
    assert buckets(samples, name) == {
        "0.1": 1,
        "0.25": 2,
        "0.5": 2,
        "1.0": 2,
        "2.5": 2,
        "5.0": 3,
        "10.0": 4,
        "30.0": 4,
        "60.0": 5,
        "120.0": 5,
        "300.0": 5,
        "600.0": 5,
        "1800.0": 5,
        "3600.0": 5,
        "+Inf": 5,
    }
    assert samples[(f"{name}_count", ())] == 5
    assert samples[(f"{name}_sum", ())] == pytest.approx(0.05 + 3 + 45 + 0.2 + 10)


def test_lateness_histogram_counts_scheduled_runs_by_start_minus_slot() -> None:
    known_world()
    name = "scheduled_tasks_lateness_seconds"
    samples = scrape()[name]
    counts = buckets(samples, name)
    assert counts == {
        "0.1": 1,
        "0.5": 2,
        "1.0": 2,
        "5.0": 3,
        "10.0": 3,
        "30.0": 3,
        "60.0": 4,
        "300.0": 4,
        "600.0": 4,
        "1800.0": 4,
        "3600.0": 4,
        "+Inf": 4,
    }
    values = list(counts.values())
    assert values == sorted(values)
    assert samples[(f"{name}_count", ())] == 4
    assert samples[(f"{name}_sum", ())] == pytest.approx(0.05 + 2 + 40 + 0.5)


def test_queue_runners_alerts_and_tasks() -> None:
    known_world()
    found = scrape()
    assert found["scheduled_tasks_queued"] == {("scheduled_tasks_queued", ()): 3}
    assert found["scheduled_tasks_running"] == {("scheduled_tasks_running", ()): 1}
    assert found["scheduled_tasks_runner_heartbeat_age_seconds"] == {
        (
            "scheduled_tasks_runner_heartbeat_age_seconds",
            (("kind", "daemon"), ("runner", "web-1:101")),
        ): 12.5
    }
    assert {
        dict(labels)["kind"]: value
        for (_, labels), value in found["scheduled_tasks_alerts_open"].items()
    } == {"failures": 2, "long_run": 0, "missed": 0, "scheduler_down": 1}
    assert {
        dict(labels)["active"]: value
        for (_, labels), value in found["scheduled_tasks_tasks"].items()
    } == {"true": 1, "false": 1}


def test_a_retry_becomes_queued_when_its_backoff_ends() -> None:
    known_world()
    assert scrape(T0 + 59 * S)["scheduled_tasks_queued"] == {("scheduled_tasks_queued", ()): 3}
    assert scrape(T0 + 60 * S)["scheduled_tasks_queued"] == {("scheduled_tasks_queued", ()): 4}


def test_an_empty_database_gives_zeros_not_gaps() -> None:
    found = scrape()
    duration = found["scheduled_tasks_execution_duration_seconds"]
    assert duration[("scheduled_tasks_execution_duration_seconds_count", ())] == 0
    assert duration[("scheduled_tasks_execution_duration_seconds_sum", ())] == 0
    assert set(buckets(duration, "scheduled_tasks_execution_duration_seconds").values()) == {0}
    assert found["scheduled_tasks_queued"] == {("scheduled_tasks_queued", ()): 0}
    assert set(found["scheduled_tasks_alerts_open"].values()) == {0}
    assert found["scheduled_tasks_executions"] == {}


def test_a_scrape_costs_five_queries_whatever_the_rows(django_assert_num_queries) -> None:
    known_world()
    with django_assert_num_queries(5):
        metrics.render(T0)
    task = make_task(name="gamma")
    for hour in range(1, 30):
        scheduled(task, T0 - hour * H, hour, duration_seconds=hour)
    for n in range(5):
        RunnerHeartbeat.objects.create(
            runner=f"web-2:{n}", kind="worker", started_at=T0, last_seen_at=T0
        )
    with django_assert_num_queries(5):
        metrics.render(T0)


def test_the_collector_has_a_registry_of_its_own() -> None:
    from prometheus_client import REGISTRY as GLOBAL

    assert metrics.REGISTRY is not GLOBAL
    assert b"scheduled_tasks_queued" not in __import__("prometheus_client").generate_latest(GLOBAL)


# --- access ---------------------------------------------------------------------------------


@pytest.fixture
def with_token(settings: Any) -> str:
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "METRICS_TOKEN": TOKEN}
    return TOKEN


def test_anonymous_visitors_are_asked_to_authenticate(client: Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"scheduled_tasks" not in response.content


def test_a_user_without_the_view_permission_is_refused(client: Client) -> None:
    client.force_login(make_user("nobody"))
    assert client.get("/metrics").status_code == 403


def test_a_user_allowed_to_view_tasks_reads_the_metrics(client: Client) -> None:
    known_world()
    client.force_login(make_user("ops", perms=("view_scheduledtask",)))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    names = {f.name for f in text_string_to_metric_families(response.content.decode())}
    assert "scheduled_tasks_queued" in names


def test_the_right_token_opens_the_metrics(client: Client, with_token: str) -> None:
    known_world()
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {with_token}")
    assert response.status_code == 200
    assert b"scheduled_tasks_running 1.0" in response.content


@pytest.mark.parametrize(
    "header", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ", "Bearer caf\u00e9"]
)
def test_a_wrong_token_is_refused(client: Client, with_token: str, header: str) -> None:
    response = client.get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response


def test_a_wrong_token_is_refused_even_from_an_allowed_user(
    client: Client, with_token: str
) -> None:
    client.force_login(make_user("ops", perms=("view_scheduledtask",)))
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token-at-all")
    assert response.status_code == 401


def test_without_a_configured_token_no_token_opens_the_metrics(client: Client) -> None:
    assert conf.get("METRICS_TOKEN") is None
    for header in (f"Bearer {TOKEN}", "Bearer None", "Bearer "):
        assert client.get("/metrics", HTTP_AUTHORIZATION=header).status_code == 401


def test_metrics_are_read_only(client: Client, with_token: str) -> None:
    response = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {with_token}")
    assert response.status_code == 405


# --- the setting ----------------------------------------------------------------------------


def test_the_token_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        monkeypatch.setenv("SCHEDULED_TASKS_METRICS_TOKEN", TOKEN)
        assert importlib.reload(conf).DEFAULTS["METRICS_TOKEN"] == TOKEN
        monkeypatch.setenv("SCHEDULED_TASKS_METRICS_TOKEN", "")
        assert importlib.reload(conf).DEFAULTS["METRICS_TOKEN"] is None
    finally:
        monkeypatch.delenv("SCHEDULED_TASKS_METRICS_TOKEN")
        importlib.reload(conf)


@pytest.mark.parametrize(
    ("token", "ok"),
    [(None, True), ("x" * 16, True), ("x" * 15, False), ("", False), (1234567890123456, False)],
)
def test_a_set_token_must_be_a_string_of_16_characters(
    settings: Any, token: object, ok: bool
) -> None:
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "METRICS_TOKEN": token}
    errors = checks.check_metrics_token()
    assert (errors == []) is ok
    if not ok:
        assert errors[0].id == "scheduled_tasks.E040"
        assert "x" * 15 not in errors[0].msg  # a short token is not echoed
