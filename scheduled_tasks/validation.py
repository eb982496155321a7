"""Checks shared by every way a task enters the system (form, admin, import, API)."""

from __future__ import annotations

from scheduled_tasks import conf
from scheduled_tasks.sandbox.policy import check_code


def code_problems(code: str) -> list[str]:
    """Human-readable problems that stop ``code`` from being saved, each with its line."""
    if not code or not code.strip():
        return ["The code is empty."]
    limit = conf.get("MAX_CODE_BYTES")
    size = len(code.encode("utf-8"))
    if size > limit:
        return [f"The code is {size} bytes; the limit is {limit} bytes."]
    return [str(problem) for problem in check_code(code)]
