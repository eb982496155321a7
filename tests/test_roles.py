"""Roles: reading tasks, their code and their runs needs the view permission, and the groups
"Task viewers" and "Task editors" (created by migration 0007) grant what their names say."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client
from django.urls import reverse

from scheduled_tasks import services
from scheduled_tasks.models import Execution, ScheduledTask
from tests.conftest import snapshot
from tests.factories import T0, form_data, make_execution, make_user

pytestmark = pytest.mark.django_db

roles = importlib.import_module("scheduled_tasks.migrations.0007_roles")


def reading_urls(task: ScheduledTask, execution: Execution) -> list[str]:
    """Every page that shows tasks, their code or their runs."""
    return [
        reverse("scheduled_tasks:task_list"),
        reverse("scheduled_tasks:task_detail", args=[task.pk]),
        reverse("scheduled_tasks:execution_detail", args=[execution.pk]),
        reverse("scheduled_tasks:schedule_preview")
        + "?schedule_kind=interval&every=1&unit=hours&anchor=2026-01-05T09:00&time_zone=UTC",
        reverse("scheduled_tasks:task_versions", args=[task.pk]),
    ]


def member_of(group: str, username: str) -> User:
    user = make_user(username)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def versioned_task() -> ScheduledTask:
    task = ScheduledTask(name="secret job", code="print('token=abc')", anchor=T0)
    return services.save_task(task, now=T0)


def test_a_user_without_the_view_permission_is_refused_every_page(
    client: Client, versioned_task: ScheduledTask
) -> None:
    execution = make_execution(versioned_task, output="token=abc")
    client.force_login(make_user("nobody"))
    for url in reading_urls(versioned_task, execution):
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"token=abc" not in response.content, url


def test_the_view_permission_opens_every_page(
    viewer_client: Client, versioned_task: ScheduledTask
) -> None:
    execution = make_execution(versioned_task)
    for url in reading_urls(versioned_task, execution):
        assert viewer_client.get(url).status_code == 200, url


def test_the_migration_creates_the_two_groups_with_their_permissions() -> None:
    viewers = set(
        Group.objects.get(name="Task viewers").permissions.values_list("codename", flat=True)
    )
    editors = set(
        Group.objects.get(name="Task editors").permissions.values_list("codename", flat=True)
    )
    assert {
        "view_scheduledtask",
        "view_execution",
        "view_executionlogline",
        "view_alert",
        "view_runnerheartbeat",
        "view_taskversion",
    } <= viewers
    assert all(codename.startswith("view_") for codename in viewers)
    assert editors == viewers | {
        "add_scheduledtask",
        "change_scheduledtask",
        "delete_scheduledtask",
        "run_scheduledtask",
        "change_alert",
    }


def test_a_task_viewer_sees_everything_and_changes_nothing(
    client: Client, versioned_task: ScheduledTask
) -> None:
    task = versioned_task
    pending = make_execution(task, status=Execution.Status.PENDING)
    client.force_login(member_of("Task viewers", "vera"))
    for url in reading_urls(task, pending):
        assert client.get(url).status_code == 200, url
    detail = client.get(reverse("scheduled_tasks:task_detail", args=[task.pk])).content.decode()
    assert reverse("scheduled_tasks:task_edit", args=[task.pk]) not in detail
    assert reverse("scheduled_tasks:task_run", args=[task.pk]) not in detail
    versions = client.get(reverse("scheduled_tasks:task_versions", args=[task.pk]))
    assert "Restore this version" not in versions.content.decode()
    before = snapshot(task)
    refused = [
        client.get(reverse("scheduled_tasks:task_create")),
        client.post(reverse("scheduled_tasks:task_create"), form_data(name="new")),
        client.get(reverse("scheduled_tasks:task_edit", args=[task.pk])),
        client.post(reverse("scheduled_tasks:task_edit", args=[task.pk]), form_data()),
        client.post(reverse("scheduled_tasks:task_toggle", args=[task.pk])),
        client.post(reverse("scheduled_tasks:task_run", args=[task.pk])),
        client.post(reverse("scheduled_tasks:execution_cancel", args=[pending.pk])),
        client.post(reverse("scheduled_tasks:test_run"), {"code": "print(1)"}),
        client.post(reverse("scheduled_tasks:version_restore", args=[task.pk, 1])),
    ]
    assert [response.status_code for response in refused] == [403] * len(refused)
    assert snapshot(task) == before
    assert Execution.objects.get(pk=pending.pk).status == Execution.Status.PENDING
    assert ScheduledTask.objects.count() == 1
    assert task.versions.count() == 1


def test_a_task_editor_may_edit_run_and_cancel(
    client: Client, versioned_task: ScheduledTask
) -> None:
    task = versioned_task
    pending = make_execution(task, status=Execution.Status.PENDING)
    client.force_login(member_of("Task editors", "eddie"))
    detail = client.get(reverse("scheduled_tasks:task_detail", args=[task.pk])).content.decode()
    assert reverse("scheduled_tasks:task_edit", args=[task.pk]) in detail
    assert reverse("scheduled_tasks:task_run", args=[task.pk]) in detail
    assert client.get(reverse("scheduled_tasks:task_create")).status_code == 200
    assert client.get(reverse("scheduled_tasks:task_edit", args=[task.pk])).status_code == 200
    edited = client.post(
        reverse("scheduled_tasks:task_edit", args=[task.pk]),
        form_data(name="secret job", code="print('v2')"),
    )
    assert edited.status_code == 302
    assert ScheduledTask.objects.get(pk=task.pk).code == "print('v2')"
    cancel = client.post(reverse("scheduled_tasks:execution_cancel", args=[pending.pk]))
    assert cancel.status_code == 302
    assert Execution.objects.get(pk=pending.pk).status == Execution.Status.CANCELLED
    restore = client.post(reverse("scheduled_tasks:version_restore", args=[task.pk, 1]))
    assert restore.status_code == 302
    assert ScheduledTask.objects.get(pk=task.pk).code == "print('token=abc')"
    toggle = client.post(reverse("scheduled_tasks:task_toggle", args=[task.pk]))
    assert toggle.status_code == 302
    assert ScheduledTask.objects.get(pk=task.pk).is_active is False
    assert client.post(reverse("scheduled_tasks:task_run", args=[task.pk])).status_code != 403


def _state_apps() -> Any:
    loader = MigrationLoader(connection)
    return loader.project_state(("scheduled_tasks", "0007_roles")).apps


def test_the_roles_migration_is_reversible_and_can_run_again() -> None:
    apps, editor = _state_apps(), SimpleNamespace(connection=connection)
    roles.delete_groups(apps, editor)
    assert not Group.objects.filter(name__in=["Task viewers", "Task editors"]).exists()
    roles.create_groups(apps, editor)
    roles.create_groups(apps, editor)  # idempotent
    editors = Group.objects.get(name="Task editors")
    assert editors.permissions.filter(codename="run_scheduledtask").exists()
    assert Group.objects.filter(name="Task viewers").count() == 1
