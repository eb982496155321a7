"""The OpenAPI schema and its docs page: every endpoint described, nothing from a CDN."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.factories import make_user

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/scheduler/scheduled/",
    "/api/scheduler/scheduled/{id}/",
    "/api/scheduler/scheduled/{id}/toggle_status/",
    "/api/scheduler/scheduled/{id}/run_now/",
    "/api/scheduler/scheduled/{id}/preview/",
    "/api/scheduler/definitions/",
    "/api/scheduler/definitions/{name}/",
    "/api/scheduler/definitions/{name}/execute/",
    "/api/scheduler/test_run/",
    "/api/scheduler/executions/",
    "/api/scheduler/executions/{id}/",
    "/api/scheduler/executions/{id}/status/",
    "/api/scheduler/executions/{id}/cancel/",
    "/api/scheduler/alerts/",
    "/api/scheduler/alerts/{id}/",
    "/api/scheduler/alerts/{id}/resolve/",
    "/api/scheduler/alerts/summary/",
    "/api/scheduler/statistics/overview/",
    "/api/scheduler/statistics/performance/",
]


def test_the_schema_is_openapi_3_json_with_every_endpoint(client: Client) -> None:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert sorted(schema["paths"]) == sorted(ENDPOINTS)
    task = schema["components"]["schemas"]["Task"]["properties"]
    assert {"name", "code", "function", "schedule", "time_zone", "active", "last_status"} <= set(
        task
    )
    assert set(schema["components"]["securitySchemes"]) >= {"tokenAuth", "cookieAuth"}


def test_the_docs_page_loads_its_scripts_from_this_server(client: Client) -> None:
    client.force_login(make_user("viewer"))
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources, page
    assert all(not re.match(r"(https?:)?//", source) for source in sources), sources
    assert "swagger-ui" in page


def test_the_schema_generates_without_warnings_and_validates(tmp_path) -> None:
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert target.read_text().startswith("openapi: 3")
