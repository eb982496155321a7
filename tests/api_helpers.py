"""Clients and users for the API tests."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import make_user

API = "/api/scheduler/"
VIEW = ("view_scheduledtask",)
EDIT = ("view_scheduledtask", "add_scheduledtask", "change_scheduledtask")
ALL = (*EDIT, "delete_scheduledtask", "run_scheduledtask", "change_alert")


def client_for(user: User | None) -> APIClient:
    """A client authenticated by the user's token (as scripts call the API)."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def api_client(username: str, perms: tuple[str, ...]) -> APIClient:
    return client_for(make_user(username, perms=perms))


def entry(name: str = "nightly", **overrides: Any) -> dict[str, Any]:
    """A valid task body in the import/export format."""
    body: dict[str, Any] = {
        "name": name,
        "code": "print('hello')",
        "schedule": {
            "kind": "interval",
            "every": 1,
            "unit": "days",
            "anchor": "2030-01-05T09:00:00Z",
        },
        "time_zone": "UTC",
    }
    body.update(overrides)
    return body
