"""The form's "Test run": edited code runs in the sandbox at once, without saving it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from scheduled_tasks.models import Execution, ScheduledTask
from tests.factories import make_editor, make_task, make_user

pytestmark = pytest.mark.django_db

URL = reverse("scheduled_tasks:test_run")


@pytest.fixture
def editor_client(client):
    client.force_login(make_editor())
    return client


def test_new_code_runs_and_nothing_is_saved(editor_client):
    response = editor_client.post(URL, {"code": "print('try me')"})
    assert response.status_code == 200
    data = response.json()
    assert (data["status"], data["output"], data["error"]) == ("completed", "try me\n", "")
    assert data["execution_url"] is None
    assert Execution.objects.count() == 0
    assert ScheduledTask.objects.count() == 0


def test_a_failing_run_shows_the_snippet_line(editor_client):
    data = editor_client.post(URL, {"code": "x = 1\nraise ValueError('nope')"}).json()
    assert data["status"] == "failed"
    assert "Line 2" in data["error"]


def test_refused_code_is_explained_and_not_run(editor_client):
    response = editor_client.post(URL, {"code": "import os"})
    assert response.status_code == 400
    assert "Line 1" in response.json()["errors"][0]


def test_a_test_run_of_an_existing_task_is_kept_in_its_history(editor_client):
    task = make_task(code="print('saved code')")
    before = ScheduledTask.objects.values("next_run_at", "last_execution", "code").get(pk=task.pk)
    data = editor_client.post(URL, {"code": "print('edited')", "task": task.pk}).json()
    execution = Execution.objects.get(task=task)
    assert (execution.trigger, execution.status, execution.output) == (
        "test",
        "completed",
        "edited\n",
    )
    assert data["execution_url"] == reverse("scheduled_tasks:execution_detail", args=[execution.pk])
    # The schedule, the saved code and the list's status are untouched.
    assert (
        ScheduledTask.objects.values("next_run_at", "last_execution", "code").get(pk=task.pk)
        == before
    )


def test_viewers_may_not_run_code(client):
    client.force_login(make_user("viewer"))
    assert client.post(URL, {"code": "print(1)"}).status_code == 403
    task = make_task()
    assert client.post(URL, {"code": "print(1)", "task": task.pk}).status_code == 403
    assert Execution.objects.count() == 0


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.post(URL, {"code": "print(1)"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_form_offers_the_button(editor_client):
    html = editor_client.get(reverse("scheduled_tasks:task_create")).content.decode()
    assert "data-test-run" in html
