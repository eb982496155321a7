"""The dashboard: its figures (``scheduled_tasks.dashboard``, time injected), the page, and the
JSON answer its script polls; query counts pinned and independent of the number of rows."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from scheduled_tasks import dashboard, last_outcome
from scheduled_tasks.models import Alert, Execution, RunnerHeartbeat, ScheduledTask
from tests.factories import T0, H, make_execution, make_task, make_user

pytestmark = pytest.mark.django_db

NOW = T0  # Monday 5 January 2026, 09:00 UTC
S = Execution.Status
Mode = RunnerHeartbeat.Mode


def ended(task: ScheduledTask, status: str, at: datetime, **extra: Any) -> Execution:
    """A run of ``task`` recorded and finished at ``at``."""
    values: dict[str, Any] = {"created_at": at, "started_at": at, "finished_at": at}
    values.update(extra)
    return make_execution(task, status=status, **values)


def with_last_run(task: ScheduledTask, status: str, at: datetime = NOW - H) -> Execution:
    execution = ended(task, status, at)
    ScheduledTask.objects.filter(pk=task.pk).update(
        last_execution=execution, last_run_at=at, last_failed=last_outcome.is_failing(status)
    )
    return execution


def heartbeat(runner: str, kind: str, seen: datetime, **extra: Any) -> RunnerHeartbeat:
    return RunnerHeartbeat.objects.create(
        runner=runner, kind=kind, started_at=seen - H, last_seen_at=seen, **extra
    )


def open_alert(key: str, status: str = Alert.Status.OPEN) -> Alert:
    return Alert.objects.create(
        kind=Alert.Kind.FAILURES, key=key, message=f"{key} failed", opened_at=NOW, status=status
    )


# --- counts --------------------------------------------------------------------------------


def test_counts_split_tasks_into_active_and_paused_and_count_the_failing() -> None:
    ok = make_task(name="ok")
    with_last_run(ok, S.COMPLETED)
    with_last_run(make_task(name="broken"), S.FAILED)
    with_last_run(make_task(name="slow", is_active=False), S.TIMEOUT)
    make_task(name="never", is_active=False)
    counts = dashboard.counts(NOW)
    assert counts["tasks"] == {"active": 2, "paused": 2}
    assert counts["failing"] == 2


def test_counts_runs_now_and_runs_ended_in_the_last_24_hours_by_status() -> None:
    task = make_task()
    make_execution(task, status=S.RUNNING, started_at=NOW - H)
    make_execution(task, status=S.RUNNING, trigger=Execution.Trigger.TEST)
    make_execution(task, status=S.PENDING)
    ended(task, S.COMPLETED, NOW - H)
    ended(task, S.COMPLETED, NOW - 23 * H)
    ended(task, S.FAILED, NOW - 2 * H)
    ended(task, S.ABANDONED, NOW - 3 * H)
    ended(task, S.SKIPPED, NOW - 3 * H)
    ended(task, S.COMPLETED, NOW - 25 * H)  # too old
    ended(task, S.COMPLETED, NOW + H)  # after "now"
    ended(task, S.FAILED, NOW - H, trigger=Execution.Trigger.TEST)  # a test run
    counts = dashboard.counts(NOW)
    assert counts["running"] == 2  # a test run in progress runs too
    assert counts["pending"] == 1
    by_status = counts["recent"]["by_status"]
    assert set(by_status) == set(S.values) - {S.PENDING, S.RUNNING}
    assert by_status[S.COMPLETED] == 2
    assert by_status[S.FAILED] == 1
    assert by_status[S.ABANDONED] == 1
    assert by_status[S.SKIPPED] == 1
    assert by_status[S.TIMEOUT] == 0
    assert counts["recent"]["total"] == 5
    assert counts["recent"]["failed"] == 2


def test_counts_open_alerts_only() -> None:
    open_alert("a")
    open_alert("b")
    open_alert("c", status=Alert.Status.RESOLVED)
    assert dashboard.counts(NOW)["alerts"] == 2


def test_scheduler_is_ok_while_a_scheduling_runner_beat_lately() -> None:
    assert dashboard.counts(NOW)["scheduler"] == {
        "ok": False,
        "last_heartbeat_at": None,
        "age_seconds": None,
        "kind": None,
    }
    heartbeat("worker-1", Mode.WORKER, NOW)  # workers do not schedule
    assert dashboard.counts(NOW)["scheduler"]["ok"] is False
    heartbeat("cron-1", Mode.CRON, NOW - timedelta(minutes=30))
    assert dashboard.counts(NOW)["scheduler"]["ok"] is False
    heartbeat("daemon-1", Mode.DAEMON, NOW - timedelta(seconds=20))
    scheduler = dashboard.counts(NOW)["scheduler"]
    assert scheduler == {
        "ok": True,
        "last_heartbeat_at": (NOW - timedelta(seconds=20)).isoformat(),
        "age_seconds": 20.0,
        "kind": "daemon",
    }


# --- lists ---------------------------------------------------------------------------------


def test_next_runs_are_the_ten_soonest_of_active_tasks() -> None:
    for n in range(12):
        make_task(name=f"t{n:02d}", next_run_at=NOW + (12 - n) * H)
    make_task(name="paused", is_active=False, next_run_at=NOW)
    make_task(name="ended", next_run_at=None)
    names = [t.name for t in dashboard.next_runs()]
    assert names == [f"t{n:02d}" for n in range(11, 1, -1)]


def test_running_now_and_failing_now_list_the_latest_first() -> None:
    task = make_task(name="busy")
    first = make_execution(task, status=S.RUNNING, started_at=NOW - 2 * H)
    second = make_execution(task, status=S.RUNNING, started_at=NOW - H)
    make_execution(task, status=S.PENDING)
    assert [e.pk for e in dashboard.running_now()] == [second.pk, first.pk]
    with_last_run(make_task(name="old failure"), S.FAILED, NOW - 5 * H)
    with_last_run(make_task(name="new failure"), S.TIMEOUT, NOW - H)
    with_last_run(make_task(name="fine"), S.COMPLETED)
    failing = dashboard.failing_now()
    assert [(t.name, t.latest_status) for t in failing] == [
        ("new failure", S.TIMEOUT),
        ("old failure", S.FAILED),
    ]
    assert dashboard.counts(NOW)["failing"] == 2


def test_failing_now_lists_the_latest_and_counts_every_failing_task() -> None:
    for n in range(dashboard.LISTED + 3):
        with_last_run(make_task(name=f"broken {n:02d}"), S.FAILED, NOW - n * H)
    failing = dashboard.failing_now()
    assert [t.name for t in failing] == [f"broken {n:02d}" for n in range(dashboard.LISTED)]
    assert dashboard.counts(NOW)["failing"] == dashboard.LISTED + 3


def test_runners_say_which_mode_and_whether_alive_silent_or_stopped() -> None:
    heartbeat("host:1", Mode.DAEMON, NOW - timedelta(seconds=5))
    heartbeat("host:2", Mode.EMBEDDED, NOW - H)
    heartbeat("host:3", Mode.CRON, NOW - timedelta(minutes=1), stopped_at=NOW)
    heartbeat("host:4", Mode.WORKER, NOW, running=2, concurrency=4)
    runners = dashboard.runners(NOW)
    assert [(r.name, r.kind, r.state) for r in runners] == [
        ("host:4", "worker", "alive"),
        ("host:1", "daemon", "alive"),
        ("host:3", "cron", "stopped"),
        ("host:2", "embedded", "silent"),
    ]
    assert runners[0].kind_label == "Worker"
    assert (runners[0].running, runners[0].concurrency) == (2, 4)


# --- chart series --------------------------------------------------------------------------


def test_daily_outcomes_count_completed_against_failed_per_day() -> None:
    task = make_task()
    ended(task, S.COMPLETED, NOW - H)
    ended(task, S.COMPLETED, NOW - 2 * H)
    ended(task, S.TIMEOUT, NOW - 3 * H)
    ended(task, S.FAILED, NOW - timedelta(days=1))
    ended(task, S.ABANDONED, NOW - timedelta(days=29))
    ended(task, S.COMPLETED, NOW - timedelta(days=31))  # before the first day
    ended(task, S.CANCELLED, NOW - H)  # neither
    ended(task, S.SKIPPED, NOW - H)  # neither
    ended(task, S.COMPLETED, NOW - H, trigger=Execution.Trigger.TEST)
    outcomes = dashboard.daily_outcomes(NOW)
    assert len(outcomes.days) == 30
    assert outcomes.days[0] == date(2025, 12, 7)
    assert outcomes.days[-1] == date(2026, 1, 5)
    assert outcomes.completed[-1] == 2 and outcomes.failed[-1] == 1
    assert outcomes.failed[-2] == 1
    assert outcomes.failed[0] == 1  # 29 days ago: the first day
    assert sum(outcomes.completed) == 2 and sum(outcomes.failed) == 3


def test_daily_outcomes_cut_days_in_the_servers_time_zone(settings: Any) -> None:
    settings.TIME_ZONE = "America/New_York"  # 09:00 UTC is 04:00 there
    task = make_task()
    ended(task, S.COMPLETED, NOW - 3 * H)  # 01:00 in New York: today
    ended(task, S.COMPLETED, NOW - 5 * H)  # 23:00 yesterday in New York
    outcomes = dashboard.daily_outcomes(NOW, days=2)
    assert outcomes.days == [date(2026, 1, 4), date(2026, 1, 5)]
    assert outcomes.completed == [1, 1]


def test_slowest_trends_pick_the_slowest_tasks_and_their_daily_means() -> None:
    tasks = {n: make_task(name=f"task-{n}") for n in range(7)}
    for n, task in tasks.items():
        ended(task, S.COMPLETED, NOW - H, duration_seconds=float(n))
    slow = tasks[6]
    ended(slow, S.COMPLETED, NOW - H, duration_seconds=8.0)  # mean today: 7
    ended(slow, S.COMPLETED, NOW - timedelta(days=3), duration_seconds=2.0)
    ended(slow, S.FAILED, NOW - timedelta(days=2), duration_seconds=100.0)  # not completed
    ended(tasks[0], S.COMPLETED, NOW - H, duration_seconds=500.0, trigger="test")
    days, trends = dashboard.slowest_trends(NOW, days=5, limit=3)
    assert days[-1] == date(2026, 1, 5) and len(days) == 5
    assert [t.name for t in trends] == ["task-6", "task-5", "task-4"]
    assert trends[0].mean_seconds == pytest.approx(16 / 3)
    assert trends[0].daily_mean_seconds == [None, 2.0, None, None, 7.0]
    assert trends[1].daily_mean_seconds == [None, None, None, None, 5.0]


def test_no_trend_without_completed_runs_in_the_last_week() -> None:
    task = make_task()
    ended(task, S.COMPLETED, NOW - timedelta(days=8), duration_seconds=3.0)
    ended(task, S.FAILED, NOW - H, duration_seconds=3.0)
    days, trends = dashboard.slowest_trends(NOW)
    assert len(days) == 30 and trends == []


# --- the page and its live counts -----------------------------------------------------------


def fill(tasks: int, runs_each: int) -> None:
    for n in range(tasks):
        task = make_task(name=f"fill-{ScheduledTask.objects.count()}-{n}")
        for k in range(runs_each):
            ended(task, S.COMPLETED, NOW - (k + 1) * H, duration_seconds=1.0 + k)
        with_last_run(task, S.FAILED)
        make_execution(task, status=S.RUNNING, started_at=NOW - H)
        heartbeat(f"runner-{task.pk}", Mode.DAEMON, NOW)
        open_alert(f"alert-{task.pk}")


def test_dashboard_page_shows_counts_lists_health_and_charts(viewer_client: Client) -> None:
    fill(2, 2)
    make_task(name="<b>next</b>", next_run_at=NOW + H)
    with time_machine.travel(NOW, tick=False):
        response = viewer_client.get(reverse("scheduled_tasks:dashboard"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-live-url="/tasks/dashboard/live/"' in page
    assert "scheduled_tasks/dashboard.js" in page
    assert 'data-live="tasks.active">3<' in page
    assert 'data-live="failing" data-live-alarm>2<' in page
    assert 'data-live="running">2<' in page
    assert 'data-live="alerts" data-live-alarm>2<' in page
    assert 'id="chart-outcomes"' in page and 'id="chart-durations"' in page
    assert "&lt;b&gt;next&lt;/b&gt;" in page and "<b>next</b>" not in page
    assert "Daemon" in page and "runner-" in page
    assert "Running now" in page and "Failing now" in page and "Next runs" in page
    assert '<span class="badge badge-failed">Failed</span>' in page


def test_dashboard_page_without_any_data(viewer_client: Client) -> None:
    response = viewer_client.get(reverse("scheduled_tasks:dashboard"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "No runner has sent a heartbeat yet" in page
    assert "No run completed in the last 7 days." in page
    assert 'id="chart-outcomes"' in page


def page_queries(client: Client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured, time_machine.travel(NOW, tick=False):
        assert client.get(url).status_code == 200
    return len(captured)


def test_dashboard_query_count_is_pinned_and_does_not_grow_with_the_rows(
    viewer_client: Client, django_assert_num_queries: Any
) -> None:
    url = reverse("scheduled_tasks:dashboard")
    fill(1, 1)
    page_queries(viewer_client, url)  # the first view computes the charts and stores them
    stored = page_queries(viewer_client, url)
    fill(12, 3)
    assert page_queries(viewer_client, url) == stored
    # session, user, the user's permissions (2); counts (5, the failing count from the list);
    # running, failing, next runs, runners; the stored charts.
    with django_assert_num_queries(14), time_machine.travel(NOW, tick=False):
        viewer_client.get(url)


def test_live_counts_answer_json_without_caching(
    viewer_client: Client, django_assert_num_queries: Any
) -> None:
    fill(1, 1)
    url = reverse("scheduled_tasks:dashboard_live")
    # session, user, permissions (2), the five queries of the counts.
    with django_assert_num_queries(9), time_machine.travel(NOW, tick=False):
        response = viewer_client.get(url)
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    body = json.loads(response.content)
    assert body["tasks"] == {"active": 1, "paused": 0}
    assert body["running"] == 1 and body["failing"] == 1 and body["alerts"] == 1
    assert body["scheduler"]["ok"] is True
    assert body["now"] == NOW.isoformat()
    assert body["now_label"] == "09:00:00 UTC"


def test_dashboard_and_live_counts_need_the_view_permission(client: Client) -> None:
    urls = [reverse("scheduled_tasks:dashboard"), reverse("scheduled_tasks:dashboard_live")]
    for url in urls:
        assert client.get(url).status_code == 302
    client.force_login(make_user("nobody"))
    for url in urls:
        assert client.get(url).status_code == 403
        assert client.post(url).status_code in (403, 405)


def test_navigation_links_to_the_dashboard_and_the_runs(viewer_client: Client) -> None:
    page = viewer_client.get(reverse("scheduled_tasks:dashboard")).content.decode()
    assert f'href="{reverse("scheduled_tasks:dashboard")}" aria-current="page"' in page
    assert f'href="{reverse("scheduled_tasks:execution_list")}"' in page


# --- the page's script, run by Node against a stand-in DOM -----------------------------------

# Loads dashboard.js into a context with a minimal document (the elements given as
# [attributes, text]), a fetch that answers from a list, and timers the harness fires one by
# one; prints the requests, the delays asked for and the elements afterwards.
NODE_HARNESS = r"""
const fs = require("fs");
const vm = require("vm");
function el(attrs, text) {
  return {
    attrs: Object.assign({}, attrs), textContent: text, hidden: true, children: [],
    classes: new Set(),
    getAttribute(n) { return n in this.attrs ? this.attrs[n] : null; },
    hasAttribute(n) { return n in this.attrs; },
    setAttribute(n, v) { this.attrs[n] = String(v); },
    replaceChildren(...c) { this.children = c; this.textContent = c.map((x) => x.textContent).join(""); },
    classList: null,
  };
}
const elements = JSON.parse(process.argv[2]).map(([attrs, text]) => {
  const e = el(attrs, text);
  e.classList = { toggle: (c, on) => (on ? e.classes.add(c) : e.classes.delete(c)) };
  return e;
});
const listeners = {};
const timers = [];
const requests = [];
const answers = JSON.parse(process.argv[3]);
const sandbox = {
  document: {
    hidden: false,
    addEventListener: (name, fn) => { listeners[name] = fn; },
    querySelector: (sel) => elements.find((e) => e.hasAttribute(sel.slice(1, -1))) || null,
    querySelectorAll: (sel) => elements.filter((e) => e.hasAttribute(sel.slice(1, -1))),
    createElement: () => ({ className: "", textContent: "" }),
  },
  fetch: (url, options) => {
    requests.push(url);
    const answer = answers.shift();
    return Promise.resolve({ ok: answer.status === 200, status: answer.status, json: () => Promise.resolve(answer.body) });
  },
  Number, String, Math, Error, Promise,
};
sandbox.window = { setTimeout: (fn, ms) => { timers.push([fn, ms]); return timers.length; }, clearTimeout: () => {} };
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(process.argv[1], "utf8"), sandbox);
listeners.DOMContentLoaded();
const delays = [];
(async () => {
  while (timers.length && answers.length) {
    const [fn, ms] = timers.shift();
    delays.push(ms);
    fn();
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
  }
  console.log(JSON.stringify({ requests, delays, pending: timers.map((t) => t[1]), elements: elements.map((e) => ({ attrs: e.attrs, text: e.textContent, hidden: e.hidden, classes: [...e.classes], children: e.children })) }));
})();
"""
SCRIPT = (
    Path(__file__).resolve().parent.parent / "scheduled_tasks/static/scheduled_tasks/dashboard.js"
)


def run_script(elements: list[Any], answers: list[dict[str, Any]]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    result = subprocess.run(
        [node, "-e", NODE_HARNESS, "--", str(SCRIPT), json.dumps(elements), json.dumps(answers)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)


def test_the_script_refreshes_the_counts_without_reloading(viewer_client: Client) -> None:
    fill(1, 1)
    with time_machine.travel(NOW, tick=False):
        live = json.loads(viewer_client.get(reverse("scheduled_tasks:dashboard_live")).content)
    elements = [
        [{"data-live-url": "/tasks/dashboard/live/"}, ""],
        [{"data-live-note": ""}, ""],
        [{"data-live": "now_label"}, "08:00:00 UTC"],
        [{"data-live": "tasks.active"}, "0"],
        [{"data-live": "failing", "data-live-alarm": ""}, "0"],
        [{"data-live": "recent.by_status.completed"}, "0"],
        [{"data-live": "scheduler.ok", "data-live-format": "health"}, "Down"],
    ]
    out = run_script(elements, [{"status": 200, "body": live}, {"status": 500, "body": {}}])
    assert out["requests"] == ["/tasks/dashboard/live/", "/tasks/dashboard/live/"]
    assert out["delays"] == [5000, 5000]
    assert out["pending"] == [10000]  # after a failed request it waits longer
    by_path = {e["attrs"].get("data-live"): e for e in out["elements"]}
    assert by_path["now_label"]["text"] == "09:00:00 UTC"
    assert by_path["tasks.active"]["text"] == "1"
    assert by_path["failing"]["text"] == "1"
    assert by_path["failing"]["classes"] == ["text-danger"]
    assert by_path["recent.by_status.completed"]["text"] == "1"
    assert by_path["scheduler.ok"]["children"] == [
        {"className": "health-ok", "textContent": "Running"}
    ]
    note = next(e for e in out["elements"] if "data-live-note" in e["attrs"])
    assert note["hidden"] is False and "failed" in note["text"]


# --- the plans: every read of the run history goes through an index -------------------------


def test_the_dashboard_reads_the_run_history_only_through_indexes() -> None:
    from tests.test_query_plans import EXECUTION_TABLE, explain, recording

    ScheduledTask.objects.bulk_create(
        [
            ScheduledTask(
                name=f"plan-{i:05d}",
                code="x",
                every=1,
                unit="hours",
                anchor=T0,
                is_active=i % 10 != 0,
                next_run_at=NOW + timedelta(seconds=i),
            )
            for i in range(10_000)
        ],
        batch_size=1000,
    )
    ids = list(ScheduledTask.objects.values_list("pk", flat=True))
    Execution.objects.bulk_create(
        [
            Execution(
                task_id=ids[i % len(ids)],
                status=S.COMPLETED if i % 9 else S.FAILED,
                trigger="schedule",
                scheduled_for=NOW - timedelta(minutes=i),
                created_at=NOW - timedelta(minutes=i),
                finished_at=NOW - timedelta(minutes=i),
                duration_seconds=float(i % 7),
            )
            for i in range(20_000)
        ],
        batch_size=1000,
    )
    with recording() as statements:
        dashboard.counts(NOW)
        dashboard.running_now()
        dashboard.failing_now()
        dashboard.daily_outcomes(NOW)
        dashboard.slowest_trends(NOW)
    on_runs = [s for s in explain(statements) if s.indexes(EXECUTION_TABLE)]
    assert len(on_runs) >= 5
    for statement in on_runs:
        assert None not in statement.indexes(EXECUTION_TABLE), f"a full scan:\n{statement}"
