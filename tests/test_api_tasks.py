"""The API's tasks: the task JSON (the import/export format), filters, writes, permissions,
toggling, queueing a run and the schedule preview."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from scheduled_tasks import import_export
from scheduled_tasks.models import Execution, ScheduledTask
from tests.api_helpers import ALL, API, EDIT, VIEW, api_client, client_for, entry
from tests.conftest import FakeSandbox, tick
from tests.factories import make_execution, make_task, make_user

pytestmark = pytest.mark.django_db
TASKS = f"{API}scheduled/"


def test_anonymous_requests_are_told_to_authenticate() -> None:
    response = client_for(None).get(TASKS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_user_without_the_view_permission_is_refused() -> None:
    make_task(name="secret")
    response = api_client("nobody", ()).get(TASKS)
    assert response.status_code == 403


def test_a_viewer_reads_tasks_in_the_export_format_with_read_only_fields() -> None:
    task = make_task(name="report", time_zone="Europe/Madrid")
    response = api_client("viewer", VIEW).get(TASKS)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    item = body["results"][0]
    exported = import_export.export_task(task)
    assert {k: v for k, v in item.items() if k in exported} == exported
    assert item["id"] == task.pk
    assert item["last_status"] == ""
    assert item["next_run_at"] is not None
    assert api_client("v2", VIEW).get(f"{TASKS}{task.pk}/").json() == item


def test_a_viewer_cannot_write_or_run() -> None:
    task = make_task()
    client = api_client("viewer", VIEW)
    assert client.post(TASKS, entry(), format="json").status_code == 403
    assert client.patch(f"{TASKS}{task.pk}/", {"priority": 3}, format="json").status_code == 403
    assert client.delete(f"{TASKS}{task.pk}/").status_code == 403
    assert client.post(f"{TASKS}{task.pk}/toggle_status/").status_code == 403
    assert client.post(f"{TASKS}{task.pk}/run_now/").status_code == 403
    assert ScheduledTask.objects.get().priority == 0
    assert not Execution.objects.exists()


def test_filters_and_search() -> None:
    a = make_task(name="alpha report", description="monthly")
    make_task(name="beta", is_active=False, next_run_at=None)
    c = make_task(name="gamma", schedule_kind="cron", cron_expression="0 9 * * *")
    a.last_execution = make_execution(a, status=Execution.Status.FAILED)
    a.save()
    client = api_client("viewer", VIEW)

    def names(query: str) -> list[str]:
        response = client.get(f"{TASKS}?{query}")
        assert response.status_code == 200, response.content
        return [item["name"] for item in response.json()["results"]]

    assert names("active=false") == ["beta"]
    assert names("active=true") == ["alpha report", "gamma"]
    assert names("kind=cron") == [c.name]
    assert names("last_status=failed") == ["alpha report"]
    assert names("last_status=never") == ["beta", "gamma"]
    assert names("search=monthly") == ["alpha report"]
    assert names("page_size=1") == ["alpha report", "beta", "gamma"]  # the page size is fixed
    assert client.get(f"{TASKS}?kind=yearly").status_code == 400
    assert client.get(f"{TASKS}?last_status=happy").status_code == 400
    assert client.get(f"{TASKS}?page=9").status_code == 404


def test_create_saves_through_the_service_and_answers_the_task() -> None:
    client = api_client("editor", EDIT)
    response = client.post(TASKS, entry("nightly", priority=5), format="json")
    assert response.status_code == 201, response.content
    task = ScheduledTask.objects.get()
    assert (task.name, task.priority, task.created_by.username) == ("nightly", 5, "editor")
    assert task.next_run_at == datetime(2030, 1, 5, 9, 0, tzinfo=UTC)
    assert response.json()["id"] == task.pk
    assert response.json()["schedule"]["kind"] == "interval"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (entry(schedule={"kind": "interval", "every": 0, "unit": "years", "anchor": "x"}), {
            "schedule": {
                "every": ["the frequency must be at least 1, not 0"],
                "unit": ["unknown unit 'years'; use one of: minutes, hours, days, weeks, months"],
                "anchor": ["'x' is not an ISO 8601 date-time such as 2026-01-05T09:00:00+01:00"],
            }
        }),
        (entry(code=""), {"code": ["The code is empty."]}),
        (entry(time_zone="Mars/Olympus"), {
            "time_zone": [
                "unknown time zone 'Mars/Olympus'; use an IANA name such as Europe/Madrid"
            ]
        }),
        (entry(name=""), {"name": ["must not be empty"]}),
        (entry(timeout="3"), {"timeout": ["unknown key"]}),
        ([entry()], {"non_field_errors": ["must be an object, not a list"]}),
        ("text", {"non_field_errors": ["must be an object, not a string"]}),
    ],
)  # fmt: skip
def test_bad_input_answers_400_keyed_by_field_and_saves_nothing(body: object, errors: dict) -> None:
    response = api_client("editor", EDIT).post(TASKS, body, format="json")
    assert response.status_code == 400
    assert response.json() == errors
    assert not ScheduledTask.objects.exists()


def test_code_errors_name_the_snippets_line() -> None:
    body = entry(code="x = 1\nx.__class__\n")
    response = api_client("editor", EDIT).post(TASKS, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"][0].startswith("Line 2:")


def test_a_name_already_taken_is_refused() -> None:
    make_task(name="nightly")
    response = api_client("editor", EDIT).post(TASKS, entry("nightly"), format="json")
    assert response.status_code == 400
    assert response.json() == {"name": ["a task with this name already exists"]}
    assert ScheduledTask.objects.count() == 1


def test_malformed_json_is_a_400() -> None:
    client = api_client("editor", EDIT)
    response = client.post(TASKS, "{not json", content_type="application/json")
    assert response.status_code == 400


def test_put_replaces_the_task_and_ignores_the_read_only_fields() -> None:
    client = api_client("editor", EDIT)
    created = client.post(TASKS, entry("nightly", priority=5, max_retries=2), format="json").json()
    body = {**created, "description": "changed", "max_retries": 1}
    body.pop("priority")  # omitted: back to the default, as an import does
    response = client.put(f"{TASKS}{created['id']}/", body, format="json")
    assert response.status_code == 200, response.content
    task = ScheduledTask.objects.get()
    assert (task.description, task.max_retries, task.priority) == ("changed", 1, 0)


def test_patch_changes_only_the_given_keys() -> None:
    client = api_client("editor", EDIT)
    created = client.post(TASKS, entry("nightly", priority=5), format="json").json()
    url = f"{TASKS}{created['id']}/"
    response = client.patch(url, {"schedule": {"kind": "cron", "cron": "0 9 * * *"}}, format="json")
    assert response.status_code == 200, response.content
    task = ScheduledTask.objects.get()
    assert (task.schedule_kind, task.cron_expression, task.priority) == ("cron", "0 9 * * *", 5)
    assert client.patch(url, {"max_retries": 99}, format="json").json() == {
        "max_retries": ["must be between 0 and 20, not 99"]
    }
    response = client.patch(url, {"name": "renamed"}, format="json")
    assert response.json()["name"] == "renamed"


def test_patch_from_a_function_to_code_drops_the_function() -> None:
    from scheduled_tasks import registry

    registry.register("tests.api_noop")(lambda ctx: None)
    try:
        task = make_task(name="f", code="", function_name="tests.api_noop", function_params={})
        client = api_client("editor", EDIT)
        response = client.patch(f"{TASKS}{task.pk}/", {"code": "print(1)"}, format="json")
        assert response.status_code == 200, response.content
        task.refresh_from_db()
        assert (task.code, task.function_name) == ("print(1)", "")
    finally:
        registry._REGISTRY.pop("tests.api_noop", None)


def test_delete_removes_the_task_and_its_runs() -> None:
    task = make_task()
    make_execution(task)
    response = api_client("admin", ALL).delete(f"{TASKS}{task.pk}/")
    assert response.status_code == 204
    assert not ScheduledTask.objects.exists()
    assert not Execution.objects.exists()


def test_unknown_ids_are_404() -> None:
    client = api_client("admin", ALL)
    for response in (
        client.get(f"{TASKS}999/"),
        client.patch(f"{TASKS}999/", {"priority": 1}, format="json"),
        client.post(f"{TASKS}999/run_now/"),
        client.get(f"{TASKS}999/preview/"),
        client.get(f"{TASKS}abc/"),
    ):
        assert response.status_code == 404


def test_toggle_status_pauses_and_resumes() -> None:
    task = make_task()
    client = api_client("editor", EDIT)
    assert client.post(f"{TASKS}{task.pk}/toggle_status/").json()["active"] is False
    assert ScheduledTask.objects.get().next_run_at is None
    assert client.post(f"{TASKS}{task.pk}/toggle_status/").json()["active"] is True
    assert ScheduledTask.objects.get().next_run_at is not None


def test_toggle_status_refuses_to_activate_a_one_off_whose_time_has_passed() -> None:
    past = datetime(2020, 1, 1, tzinfo=UTC)
    task = make_task(schedule_kind="once", run_at=past, is_active=False, next_run_at=None)
    response = api_client("editor", EDIT).post(f"{TASKS}{task.pk}/toggle_status/")
    assert response.status_code == 400
    assert "was not activated" in response.json()["active"][0]
    assert ScheduledTask.objects.get().is_active is False


def test_run_now_answers_202_with_a_pending_run_that_a_runner_then_starts(now: datetime) -> None:
    task = make_task(next_run_at=datetime(2099, 1, 1, tzinfo=UTC))
    response = api_client("runner", (*VIEW, "run_scheduledtask")).post(f"{TASKS}{task.pk}/run_now/")
    assert response.status_code == 202
    body = response.json()
    execution = Execution.objects.get()
    assert (body["id"], body["status"], body["trigger"]) == (execution.pk, "pending", "manual")
    assert body["finished"] is False
    sandbox = FakeSandbox("completed")
    tick(datetime.now(UTC), sandbox)  # the runner, not the request, runs it
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert len(sandbox.ran) == 1


def test_run_now_of_an_inactive_task_still_runs(now: datetime) -> None:
    task = make_task(is_active=False, next_run_at=None)
    client = api_client("runner", (*VIEW, "run_scheduledtask"))
    assert client.post(f"{TASKS}{task.pk}/run_now/").status_code == 202
    tick(datetime.now(UTC), FakeSandbox("completed"))
    assert Execution.objects.get().status == Execution.Status.COMPLETED


def test_preview_lists_the_next_runs() -> None:
    task = make_task(schedule_kind="cron", cron_expression="0 9 * * *", time_zone="Europe/Madrid")
    client = api_client("viewer", VIEW)
    body = client.get(f"{TASKS}{task.pk}/preview/?count=3").json()
    assert body["time_zone"] == "Europe/Madrid"
    assert len(body["runs"]) == 3
    assert "09:00" in body["description"]
    for bad in ("0", "101", "x", "²"):
        response = client.get(f"{TASKS}{task.pk}/preview/?count={bad}")
        assert response.status_code == 400
        assert "count" in response.json()


def test_session_authentication_works_for_the_pages_users(client) -> None:
    make_task(name="t")
    client.force_login(make_user("viewer", perms=VIEW))
    assert client.get(TASKS).status_code == 200


def test_drf_create_token_makes_a_token_the_api_accepts() -> None:
    make_user("scripts", perms=VIEW)
    call_command("drf_create_token", "scripts", verbosity=0)
    key = Token.objects.get(user__username="scripts").key
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(TASKS).status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert client.get(TASKS).status_code == 401


def test_the_list_costs_the_same_queries_whatever_the_number_of_tasks(
    django_assert_max_num_queries,
) -> None:
    client = api_client("viewer", VIEW)
    for i in range(3):
        task = make_task(name=f"t{i}")
        task.last_execution = make_execution(task)
        task.save()
    client.get(TASKS)  # the token and permissions warm nothing that matters here
    with django_assert_max_num_queries(6):
        assert len(client.get(TASKS).json()["results"]) == 3
    for i in range(3, 20):
        task = make_task(name=f"t{i}")
        task.last_execution = make_execution(task)
        task.save()
    with django_assert_max_num_queries(6):
        assert len(client.get(TASKS).json()["results"]) == 20


@pytest.mark.parametrize(
    "path", ["scheduled/1.5/", "scheduled/99999999999999999999999/", "executions/-1/", "nope/"]
)
def test_ids_that_are_not_ids_are_a_json_404(path: str) -> None:
    response = api_client("viewer", VIEW).get(f"{API}{path}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_a_filter_id_too_large_for_the_database_is_a_400() -> None:
    client = api_client("viewer", VIEW)
    for query in ("task=99999999999999999999999", "task=-8.8e166", "task=1.5"):
        response = client.get(f"{API}executions/?{query}")
        assert response.status_code == 400, query
        assert "task" in response.json()


def test_run_now_hands_the_run_to_the_web_processs_thread_when_no_runner_is_alive(
    django_capture_on_commit_callbacks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scheduled_tasks import background

    started: list[int] = []
    monkeypatch.setattr(background, "start", started.append)
    task = make_task()
    client = api_client("runner", (*VIEW, "run_scheduledtask"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{TASKS}{task.pk}/run_now/")
    assert response.status_code == 202
    assert started == [response.json()["id"]]  # after the commit, never in the request
