"""Running code now, nothing saved: a test run of posted code, and a registered function
called on demand (``definitions/``). Both run in the sandbox, inside the request, with a short
time limit (the pages' test run does the same)."""

from __future__ import annotations

import inspect
import time
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scheduled_tasks import loglines, registry, services
from scheduled_tasks.api import permissions
from scheduled_tasks.api.executions import LogLineSerializer
from scheduled_tasks.records import storable
from scheduled_tasks.sandbox import SnippetResult, run_function, run_snippet
from scheduled_tasks.validation import code_problems, contains_nul, field_limits

# A run inside a request: short, whatever the task's own timeout.
MAX_SECONDS = 30


class RunResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["completed", "failed", "timeout"])
    output = serializers.CharField(allow_blank=True)
    output_truncated = serializers.BooleanField()
    error = serializers.CharField(allow_blank=True, help_text="With the snippet's line number.")
    duration_seconds = serializers.FloatField()
    logs = LogLineSerializer(many=True)


class StrictCharField(serializers.CharField):
    """Text only: a number is not code (DRF's CharField would turn 3 into "3")."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TestRunSerializer(serializers.Serializer):
    code = StrictCharField(help_text="The snippet, checked as the task form checks it.")
    timeout_seconds = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_SECONDS, help_text="At most 30 s."
    )


class ExecuteSerializer(serializers.Serializer):
    params = serializers.DictField(
        required=False, help_text="Keyword arguments, checked against the function's signature."
    )


def _run(start: Any) -> dict[str, Any]:
    lines = loglines.LogLines(0, timezone.now)
    result: SnippetResult = start(lines.add)
    return {
        "status": result.status,
        "output": storable(result.output),
        "output_truncated": result.output_truncated,
        "error": storable(result.error),
        "duration_seconds": round(result.duration, 6),
        "logs": LogLineSerializer(lines.take(time.monotonic()), many=True).data,
    }


class TestRunView(APIView):
    """Run posted code in the sandbox now and answer with what happened; nothing is saved."""

    permission_classes = [permissions.SchedulerPermission]
    action_perms = {"post": permissions.RUN}

    @extend_schema(request=TestRunSerializer, responses=RunResultSerializer)
    def post(self, request: Request) -> Response:
        data = TestRunSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        code = data.validated_data["code"]
        problems = code_problems(code)
        if problems:
            return Response({"code": problems}, status=status.HTTP_400_BAD_REQUEST)
        timeout = data.validated_data.get(
            "timeout_seconds", min(services.effective_timeout(None), MAX_SECONDS)
        )
        return Response(
            _run(lambda on_log: run_snippet(code, timeout=timeout, label="api-test-run",
                                            on_log=on_log))
        )  # fmt: skip


class ParameterSerializer(serializers.Serializer):
    name = serializers.CharField()
    required = serializers.BooleanField()
    default = serializers.JSONField(allow_null=True, help_text="Null when required.")


class DefinitionSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    signature = serializers.CharField()
    parameters = ParameterSerializer(many=True)

    def to_representation(self, function: registry.RegisteredFunction) -> dict[str, Any]:
        return {
            "name": function.name,
            "description": function.description,
            "signature": function.signature_text(),
            "parameters": [
                {
                    "name": name,
                    "required": p.default is inspect.Parameter.empty,
                    "default": None if p.default is inspect.Parameter.empty else p.default,
                }
                for name, p in function.parameters.items()
            ],
        }


class DefinitionViewSet(viewsets.ViewSet):
    """The registered functions a task may run instead of code, with their parameters."""

    permission_classes = [permissions.SchedulerPermission]
    action_perms = {"execute": permissions.RUN}
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"
    serializer_class = DefinitionSerializer

    def list(self, request: Request) -> Response:
        functions = sorted(registry.all_functions(), key=lambda f: f.name)
        return Response(DefinitionSerializer(functions, many=True).data)

    def retrieve(self, request: Request, name: str | None = None) -> Response:
        return Response(DefinitionSerializer(self._function(name)).data)

    @extend_schema(request=ExecuteSerializer, responses=RunResultSerializer)
    @action(detail=True, methods=["post"])
    def execute(self, request: Request, name: str | None = None) -> Response:
        """Call the function now in its own process with the posted parameters (at most
        30 s); nothing is saved."""
        function = self._function(name)
        data = ExecuteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data.get("params", {})
        problems = registry.param_problems(function.name, params)
        if contains_nul(params):
            problems.append("must not contain a NUL character")
        if problems:
            return Response({"params": problems}, status=status.HTTP_400_BAD_REQUEST)
        timeout = min(field_limits("timeout_seconds")[1], MAX_SECONDS)
        return Response(
            _run(lambda on_log: run_function(function.name, params, now=timezone.now(),
                                             timeout=timeout, label="api-execute",
                                             on_log=on_log))
        )  # fmt: skip

    @staticmethod
    def _function(name: str | None) -> registry.RegisteredFunction:
        from rest_framework.exceptions import NotFound

        try:
            return registry.get(name or "")
        except registry.UnknownFunction as exc:
            raise NotFound(str(exc)) from None
