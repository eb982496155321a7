"""Access to the scheduler's pages: login and logout, who sees and may do what, refused
methods, unknown ids, and the error pages."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from scheduled_tasks.models import Execution, ScheduledTask
from tests.conftest import snapshot
from tests.factories import form_data, make_execution, make_task, make_user

pytestmark = pytest.mark.django_db


def all_urls(task: ScheduledTask, execution: Execution) -> list[tuple[str, str]]:
    return [
        ("get", reverse("scheduled_tasks:task_list")),
        ("get", reverse("scheduled_tasks:task_create")),
        ("get", reverse("scheduled_tasks:task_detail", args=[task.pk])),
        ("get", reverse("scheduled_tasks:task_edit", args=[task.pk])),
        ("post", reverse("scheduled_tasks:task_toggle", args=[task.pk])),
        ("post", reverse("scheduled_tasks:task_run", args=[task.pk])),
        ("get", reverse("scheduled_tasks:execution_detail", args=[execution.pk])),
        ("get", reverse("scheduled_tasks:schedule_preview")),
        ("get", reverse("scheduled_tasks:dashboard")),
        ("get", reverse("scheduled_tasks:dashboard_live")),
        ("get", reverse("scheduled_tasks:execution_list")),
    ]


def test_every_page_sends_anonymous_visitors_to_the_login_page(client: Client) -> None:
    task = make_task(name="secret")
    execution = make_execution(task)
    before = snapshot(task)
    for method, url in all_urls(task, execution):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"{reverse('login')}?next="), url
    assert snapshot(task) == before
    assert Execution.objects.count() == 1


def test_root_redirects_to_the_task_list(viewer_client: Client) -> None:
    response = viewer_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduled_tasks:task_list")


def test_login_page_renders_and_logs_in(client: Client) -> None:
    make_user("ada")
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content
    response = client.post(reverse("login"), {"username": "ada", "password": "pw-12345-secret"})
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduled_tasks:task_list")


def test_login_page_reports_bad_credentials(client: Client) -> None:
    make_user("ada")
    response = client.post(reverse("login"), {"username": "ada", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_logout_is_a_post_form_in_the_navigation(viewer_client: Client) -> None:
    page = viewer_client.get(reverse("scheduled_tasks:task_list")).content.decode()
    assert f'action="{reverse("logout")}"' in page
    response = viewer_client.post(reverse("logout"))
    assert response.status_code == 302
    assert viewer_client.get(reverse("scheduled_tasks:task_list")).status_code == 302


def test_viewer_sees_the_list_and_the_task_page_without_edit_buttons(
    viewer_client: Client,
) -> None:
    task = make_task(name="visible task")
    execution = make_execution(task, output="all good\n")
    listing = viewer_client.get(reverse("scheduled_tasks:task_list"))
    detail = viewer_client.get(reverse("scheduled_tasks:task_detail", args=[task.pk]))
    run_page = viewer_client.get(reverse("scheduled_tasks:execution_detail", args=[execution.pk]))
    for response in (listing, detail, run_page):
        assert response.status_code == 200
        html = response.content.decode()
        assert "visible task" in html
        assert reverse("scheduled_tasks:task_create") not in html
        assert reverse("scheduled_tasks:task_edit", args=[task.pk]) not in html
        assert reverse("scheduled_tasks:task_toggle", args=[task.pk]) not in html
        assert reverse("scheduled_tasks:task_run", args=[task.pk]) not in html
        assert "Run now" not in html


def test_editor_sees_the_edit_buttons(editor_client: Client) -> None:
    task = make_task(name="editable")
    listing = editor_client.get(reverse("scheduled_tasks:task_list")).content.decode()
    detail = editor_client.get(
        reverse("scheduled_tasks:task_detail", args=[task.pk])
    ).content.decode()
    assert reverse("scheduled_tasks:task_create") in listing
    assert reverse("scheduled_tasks:task_edit", args=[task.pk]) in detail
    assert reverse("scheduled_tasks:task_toggle", args=[task.pk]) in detail
    assert reverse("scheduled_tasks:task_run", args=[task.pk]) in detail
    assert "Admin" not in listing  # not staff


def test_staff_see_the_admin_link(client: Client) -> None:
    client.force_login(make_user("staff", perms=("view_scheduledtask",), is_staff=True))
    assert (
        reverse("admin:index") in client.get(reverse("scheduled_tasks:task_list")).content.decode()
    )


@pytest.mark.parametrize(
    "method,name",
    [
        ("get", "task_create"),
        ("post", "task_create"),
        ("get", "task_edit"),
        ("post", "task_edit"),
        ("post", "task_toggle"),
        ("post", "task_run"),
    ],
)
def test_viewer_is_refused_every_change(viewer_client: Client, method: str, name: str) -> None:
    task = make_task(name="protected")
    before = snapshot(task)
    args = [] if name == "task_create" else [task.pk]
    response = getattr(viewer_client, method)(
        reverse(f"scheduled_tasks:{name}", args=args), form_data(name="hijacked")
    )
    assert response.status_code == 403
    assert snapshot(task) == before
    assert ScheduledTask.objects.count() == 1
    assert Execution.objects.count() == 0


def test_add_permission_alone_does_not_allow_editing(client: Client) -> None:
    client.force_login(make_user("adder", perms=("add_scheduledtask",)))
    task = make_task()
    assert client.get(reverse("scheduled_tasks:task_create")).status_code == 200
    assert client.get(reverse("scheduled_tasks:task_edit", args=[task.pk])).status_code == 403


def test_running_code_needs_the_run_permission(client: Client) -> None:
    """Editing is not running: without ``run_scheduledtask`` there is no Run now, no test run
    and no cancel, on the pages as in the API."""
    client.force_login(
        make_user(
            "changer", perms=("view_scheduledtask", "change_scheduledtask", "add_scheduledtask")
        )
    )
    task = make_task(name="t")
    pending = make_execution(task, status=Execution.Status.PENDING)
    detail = client.get(reverse("scheduled_tasks:task_detail", args=[task.pk])).content.decode()
    assert reverse("scheduled_tasks:task_run", args=[task.pk]) not in detail
    assert reverse("scheduled_tasks:task_edit", args=[task.pk]) in detail
    form = client.get(reverse("scheduled_tasks:task_edit", args=[task.pk])).content.decode()
    assert "data-test-run" not in form
    assert client.post(reverse("scheduled_tasks:task_run", args=[task.pk])).status_code == 403
    test_run = client.post(reverse("scheduled_tasks:test_run"), {"code": "print(1)"})
    assert test_run.status_code == 403
    cancel = client.post(reverse("scheduled_tasks:execution_cancel", args=[pending.pk]))
    assert cancel.status_code == 403
    assert Execution.objects.get(pk=pending.pk).status == Execution.Status.PENDING
    assert Execution.objects.count() == 1


def test_toggle_and_run_refuse_get(editor_client: Client) -> None:
    task = make_task()
    for name in ("task_toggle", "task_run"):
        response = editor_client.get(reverse(f"scheduled_tasks:{name}", args=[task.pk]))
        assert response.status_code == 405
    assert ScheduledTask.objects.get().is_active is True


def test_unknown_ids_are_404(editor_client: Client) -> None:
    for name in ("task_detail", "task_edit", "execution_detail"):
        assert editor_client.get(reverse(f"scheduled_tasks:{name}", args=[999])).status_code == 404
    assert editor_client.post(reverse("scheduled_tasks:task_toggle", args=[999])).status_code == 404


# --- error pages ---------------------------------------------------------------------------


def test_permission_errors_and_missing_pages_use_the_app_layout(viewer_client: Client) -> None:
    forbidden = viewer_client.get(reverse("scheduled_tasks:task_create"))
    missing = viewer_client.get(reverse("scheduled_tasks:task_detail", args=[999]))
    nowhere = viewer_client.get("/no/such/page/")
    assert forbidden.status_code == 403
    assert missing.status_code == 404
    assert nowhere.status_code == 404
    for response, heading in [
        (forbidden, "You cannot do that"),
        (missing, "Page not found"),
        (nowhere, "Page not found"),
    ]:
        html = response.content.decode()
        assert heading in html
        assert "TicketProo" in html
        assert "scheduled_tasks/scheduler.css" in html
        assert reverse("scheduled_tasks:task_list") in html
