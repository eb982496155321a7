"""Running code now through the API, nothing saved: ``test_run/`` and the registered
functions of ``definitions/`` (real sandbox children)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scheduled_tasks import registry
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.registry import JobContext
from tests.api_helpers import API, VIEW, api_client

pytestmark = pytest.mark.django_db
RUN = (*VIEW, "run_scheduledtask")


def greet(ctx: JobContext, *, who: str, times: int = 1) -> str:
    """Greets someone."""
    ctx.log(f"greeting {who}")
    for _ in range(times):
        ctx.print(f"hello {who}")
    return "done"


@pytest.fixture
def greet_function() -> Iterator[registry.RegisteredFunction]:
    registry.register("tests.greet")(greet)
    yield registry.get("tests.greet")
    registry._REGISTRY.pop("tests.greet", None)


def test_test_run_runs_the_code_in_the_sandbox_and_saves_nothing() -> None:
    code = "logger.warning('careful')\nprint('hi')\n"
    response = api_client("runner", RUN).post(f"{API}test_run/", {"code": code}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["error"]) == ("completed", "")
    assert body["output"].endswith("hi\n")
    assert [(line["level_name"], line["message"]) for line in body["logs"]] == [
        ("WARNING", "careful")
    ]
    assert not Execution.objects.exists() and not ScheduledTask.objects.exists()


def test_a_failing_test_run_reports_the_snippets_line() -> None:
    code = "x = 1\ny = x / 0\n"
    body = api_client("runner", RUN).post(f"{API}test_run/", {"code": code}, format="json").json()
    assert body["status"] == "failed"
    assert "line 2" in body["error"].lower()


def test_a_test_run_the_policy_refuses_is_a_400_and_never_runs() -> None:
    code = "import os\n"
    response = api_client("runner", RUN).post(f"{API}test_run/", {"code": code}, format="json")
    assert response.status_code == 400
    assert response.json()["code"][0].startswith("Line 1:")


@pytest.mark.parametrize(
    "body", [{}, {"code": ""}, {"code": 3}, {"code": "print(1)", "timeout_seconds": 31}, []]
)
def test_bad_test_run_input_is_a_400(body: object) -> None:
    response = api_client("runner", RUN).post(f"{API}test_run/", body, format="json")
    assert response.status_code == 400


def test_test_run_needs_the_run_permission() -> None:
    client = api_client("viewer", VIEW)
    assert client.post(f"{API}test_run/", {"code": "print(1)"}, format="json").status_code == 403


def test_definitions_list_the_registered_functions(greet_function: object) -> None:
    body = api_client("viewer", VIEW).get(f"{API}definitions/").json()
    item = next(d for d in body if d["name"] == "tests.greet")
    assert item == {
        "name": "tests.greet",
        "description": "Greets someone.",
        "signature": "tests.greet(who, times=1)",
        "parameters": [
            {"name": "who", "required": True, "default": None},
            {"name": "times", "required": False, "default": 1},
        ],
    }
    assert api_client("v2", VIEW).get(f"{API}definitions/tests.greet/").json() == item
    assert api_client("v3", VIEW).get(f"{API}definitions/tests.nope/").status_code == 404


def test_execute_calls_the_function_with_checked_parameters(greet_function: object) -> None:
    client = api_client("runner", RUN)
    url = f"{API}definitions/tests.greet/execute/"
    response = client.post(url, {"params": {"who": "Ada", "times": 2}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "completed"
    assert body["output"].count("hello Ada") == 2
    assert [line["message"] for line in body["logs"]] == ["greeting Ada"]
    bad = client.post(url, {"params": {"times": "x"}}, format="json")
    assert bad.status_code == 400
    assert "params" in bad.json()
    assert not Execution.objects.exists()


def test_execute_needs_the_run_permission(greet_function: object) -> None:
    client = api_client("viewer", VIEW)
    url = f"{API}definitions/tests.greet/execute/"
    assert client.post(url, {"params": {"who": "Ada"}}, format="json").status_code == 403
