"""Shapes of the API's plain answers, for the OpenAPI schema, and its answer to a URL no
route matches."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

# {"detail": "..."}: an action refused (409), as DRF words its own errors.
DetailSerializer = inline_serializer("Detail", {"detail": serializers.CharField()})


# The answers any operation may give besides its own (see docs/api.md): what the schema says,
# so clients and the fuzzer know them.
_ERRORS = {
    "400": "Bad input: the problems keyed by field (query parameters or body); nothing changed.",
    "401": "Not authenticated: send `Authorization: Token <key>` or log in.",
    "403": "Authenticated, but without the permission this action needs.",
    "404": "No such object (or page).",
}


def add_error_responses(result: dict, generator: object, request: object, public: bool) -> dict:
    """drf-spectacular postprocessing hook: document the common error answers and their
    body (``{"detail": "..."}`` or ``{"field": ["problem", ...], ...}``) on every operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = {
        "type": "object",
        "description": 'A refusal: {"detail": "..."}, or the problems keyed by field.',
        "additionalProperties": True,
    }
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, text in _ERRORS.items():
                responses.setdefault(code, {"description": text, "content": body})
    return result


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The project's 404: JSON under ``/api/`` (a URL no route matches, such as an id that is
    not a number), the site's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
