"""Where the sandbox cannot run (no fork(), no resource limits): a clear refusal at start."""

from __future__ import annotations

import os
import sys

import pytest
from django.core.management import CommandError, call_command

from scheduled_tasks.checks import check_sandbox_platform
from scheduled_tasks.sandbox import run_snippet
from scheduled_tasks.sandbox.platform import SandboxUnavailable, unsupported_reason


@pytest.fixture
def windows_like(monkeypatch):
    monkeypatch.delattr(os, "fork")
    monkeypatch.setitem(sys.modules, "resource", None)  # import resource -> ImportError
    monkeypatch.setattr(sys, "platform", "win32")


def test_this_platform_can_run_snippets():
    assert unsupported_reason() is None
    assert check_sandbox_platform() == []


def test_the_reason_names_what_is_missing_and_the_supported_ways(windows_like):
    reason = unsupported_reason()
    assert "fork()" in reason and "resource limits" in reason and "win32" in reason
    assert "WSL 2" in reason and "Linux container" in reason


def test_running_a_snippet_fails_with_the_reason(windows_like):
    with pytest.raises(SandboxUnavailable, match="WSL 2"):
        run_snippet("print(1)")


def test_the_runner_command_refuses_to_start(windows_like):
    with pytest.raises(CommandError, match="WSL 2") as caught:
        call_command("run_scheduled_tasks")
    assert caught.value.returncode == 2


def test_the_embedded_scheduler_refuses_to_start(windows_like):
    from scheduled_tasks import embedded

    with pytest.raises(SandboxUnavailable, match="WSL 2"):
        embedded.start()
    assert embedded.current() is None


def test_manage_py_check_reports_it(windows_like):
    assert [error.id for error in check_sandbox_platform()] == ["scheduled_tasks.E030"]
