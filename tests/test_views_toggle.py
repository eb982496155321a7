"""Activating and deactivating a task (``views.tasks.task_toggle``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import message_texts, snapshot
from tests.factories import T0, make_task

pytestmark = pytest.mark.django_db


def test_toggle_deactivates_and_activates(editor_client: Client, editor: Any) -> None:
    task = make_task(name="flip", next_run_at=T0)
    url = reverse("scheduled_tasks:task_toggle", args=[task.pk])

    response = editor_client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduled_tasks:task_detail", args=[task.pk])
    task.refresh_from_db()
    assert task.is_active is False
    assert task.next_run_at is None
    assert task.updated_by == editor
    assert any("deactivated" in m for m in message_texts(response))

    response = editor_client.post(url)
    task.refresh_from_db()
    assert task.is_active is True
    assert task.next_run_at == task.first_run_after(timezone.now())
    assert any("activated" in m for m in message_texts(response))


def test_activating_a_past_one_off_is_refused(editor_client: Client) -> None:
    past = timezone.now() - timedelta(days=1)
    task = make_task(
        name="done", schedule_kind="once", run_at=past, is_active=False, next_run_at=None
    )
    before = snapshot(task)
    response = editor_client.post(reverse("scheduled_tasks:task_toggle", args=[task.pk]))
    assert response.status_code == 302
    assert snapshot(task) == before
    assert "was not activated" in message_texts(response)[0]
