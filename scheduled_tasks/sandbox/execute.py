"""Inside the sandbox's child process: compile, build the namespace, exec, report."""

from __future__ import annotations

import marshal
import traceback
from dataclasses import dataclass
from datetime import datetime
from types import CodeType
from typing import Any

from scheduled_tasks import conf
from scheduled_tasks.sandbox.isolation import OutputChannel
from scheduled_tasks.sandbox.namespace import build_namespace
from scheduled_tasks.sandbox.policy import (
    SNIPPET_FILENAME,
    compile_snippet,
    restricted_globals,
)


def format_snippet_error(exc: BaseException, code: str) -> str:
    """A traceback that shows only the snippet's own lines, never the sandbox's internals."""
    lines = code.splitlines()
    parts = ["Traceback (snippet lines only):"]
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename == SNIPPET_FILENAME and f.lineno is not None
    ]
    index = 0
    while index < len(frames):
        frame = frames[index]
        repeats = 0
        while index + repeats + 1 < len(frames) and (
            frames[index + repeats + 1].lineno,
            frames[index + repeats + 1].name,
        ) == (frame.lineno, frame.name):
            repeats += 1
        where = "snippet" if frame.name == "<module>" else frame.name
        parts.append(f"  Line {frame.lineno}, in {where}")
        if 0 < frame.lineno <= len(lines):
            parts.append(f"    {lines[frame.lineno - 1].strip()}")
        if repeats:
            parts.append(f"  [the line above repeated {repeats} more times]")
        index += repeats + 1
    try:
        message = str(exc)
    except Exception:
        message = "(the error's message could not be shown)"
    parts.append(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)
    return "\n".join(parts)


@dataclass(frozen=True)
class SnippetJob:
    """A snippet run as the child receives it (picklable: a spare gets it through a pipe).

    ``compiled`` is the snippet's code object, compiled in the parent and marshalled, so that
    no child compiles a snippet again; None when it did not compile (the child then reports
    the problems)."""

    code: str
    label: str
    compiled: bytes | None = None

    @classmethod
    def of(cls, code: str, label: str) -> SnippetJob:
        compiled, _ = compile_snippet(code)  # cached in the parent
        return cls(code, label, None if compiled is None else marshal.dumps(compiled))

    def __call__(self, channel: OutputChannel) -> tuple[str, str]:
        compiled = None if self.compiled is None else marshal.loads(self.compiled)  # noqa: S302
        return execute_snippet(self.code, channel, self.label, compiled)


def execute_snippet(
    code: str, channel: OutputChannel, label: str, compiled: CodeType | None = None
) -> tuple[str, str]:
    """Run ``code`` here (we are the child); return (status, error)."""
    if compiled is None:
        compiled, problems = compile_snippet(code)
        if compiled is None:
            return "failed", "\n".join(str(p) for p in problems)
    names, import_hook = build_namespace(conf.get("NAMESPACE"), sink=channel.write, label=label)
    env = restricted_globals(names, import_hook=import_hook, sink=channel.write)
    try:
        exec(compiled, env)  # noqa: S102 - compiled by RestrictedPython with our policy
    except MemoryError:
        raise  # reported by the isolation layer as "memory limit exceeded"
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are snippet errors too
        return "failed", format_snippet_error(exc, code)
    return "completed", ""


def execute_function(
    name: str, params: dict[str, Any], now: datetime, channel: OutputChannel, label: str
) -> tuple[str, str]:
    """Run a registered function here (we are the child); return (status, error)."""
    from scheduled_tasks import registry

    problems = registry.param_problems(name, params)
    if problems:
        return "failed", "\n".join(problems)
    ctx = registry.JobContext(now, channel.write, label)
    try:
        value = registry.get(name).func(ctx, **params)
    except MemoryError:
        raise
    except BaseException as exc:
        # Trusted code: show its own frames, not the runner's.
        frames = traceback.extract_tb(exc.__traceback__)[1:]
        lines = ["Traceback (most recent call last):", *traceback.format_list(frames)]
        lines.append(f"{type(exc).__name__}: {exc}")
        return "failed", "\n".join(line.rstrip("\n") for line in lines)
    if value is not None:
        channel.write(f"{value}\n")
    return "completed", ""
