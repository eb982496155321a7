"""Registered Python functions a task may run instead of a snippet.

Trusted code, written by developers, registered by a dotted name::

    from scheduled_tasks.registry import register

    @register("crm.auto_close_resolved_tickets", description="Close tickets resolved long ago")
    def auto_close(ctx: JobContext, *, hours: int = 24) -> str: ...

Staff pick a function from the list and give its keyword parameters as a JSON object; an
unregistered name or an unknown parameter is refused where it is entered. Functions run in the
same isolated child process as snippets (timeout, memory limit, output cap), receive a
:class:`JobContext` and may return a value, which is printed.
"""

from __future__ import annotations

import inspect
import json
import logging
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_REGISTRY: dict[str, RegisteredFunction] = {}


class UnknownFunction(KeyError):
    def __str__(self) -> str:
        return f"no registered function is called {self.args[0]!r}"


@dataclass(frozen=True)
class RegisteredFunction:
    name: str
    func: Callable[..., Any]
    description: str

    @property
    def parameters(self) -> dict[str, inspect.Parameter]:
        """The keyword parameters staff may set (everything after the context)."""
        params = list(inspect.signature(self.func).parameters.values())[1:]
        return {p.name: p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD}

    def defaults(self) -> dict[str, Any]:
        return {
            name: p.default
            for name, p in self.parameters.items()
            if p.default is not inspect.Parameter.empty
        }

    def signature_text(self) -> str:
        parts = []
        for name, p in self.parameters.items():
            default = "" if p.default is inspect.Parameter.empty else f"={p.default!r}"
            parts.append(f"{name}{default}")
        return f"{self.name}({', '.join(parts)})"


class JobContext:
    """What a registered function gets: the run's start time and captured output."""

    def __init__(self, now: datetime, write: Callable[[str], None], label: str) -> None:
        self.now = now
        self._write = write
        self._logger = logging.getLogger(f"scheduled_tasks.job.{label}")

    def print(self, *objects: Any, sep: str = " ", end: str = "\n") -> None:
        self._write(sep.join(str(o) for o in objects) + end)

    def log(self, message: str, *args: Any, level: int = logging.INFO) -> None:
        """A line into the run's output and its log (the log file and the execution's log
        lines, like a snippet's ``logger``)."""
        from scheduled_tasks.sandbox.protocol import active_channel

        text = message % args if args else message
        self._write(f"[{logging.getLevelName(level)}] {text}\n")
        channel = active_channel()
        if channel is not None:  # in a run's child: straight to the parent, as a snippet's
            channel.log(level, text)
        else:
            self._logger.log(level, text)


def register(
    name: str | None = None, *, description: str = ""
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func`` under ``name`` (default: its module and name)."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        key = name or f"{func.__module__}.{func.__qualname__}"
        existing = _REGISTRY.get(key)
        if existing is not None and existing.func is not func:
            raise ValueError(f"a function is already registered as {key!r}")
        doc = description or (inspect.getdoc(func) or "").split("\n")[0]
        _REGISTRY[key] = RegisteredFunction(key, func, doc)
        return func

    return decorator


def get(name: str) -> RegisteredFunction:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownFunction(name) from None


def all_functions() -> list[RegisteredFunction]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def param_problems(name: str, params: object) -> list[str]:
    """Why ``params`` cannot be passed to the function ``name`` (empty when they can)."""
    try:
        registered = get(name)
    except UnknownFunction as exc:
        return [str(exc)]
    if not isinstance(params, dict):
        return ["parameters must be a JSON object"]
    try:
        json.dumps(params)
    except (TypeError, ValueError):
        return ["parameters must be plain JSON values"]
    problems = []
    accepted = registered.parameters
    open_ended = any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        for p in inspect.signature(registered.func).parameters.values()
    )
    hints = _type_hints(registered.func)
    for key, value in params.items():
        if key not in accepted:
            if not open_ended:
                known = ", ".join(accepted) or "none"
                problems.append(f"{name} has no parameter {key!r} (parameters: {known})")
            continue
        expected = hints.get(key)
        if expected is not None and not _matches(value, expected):
            problems.append(f"{name}: {key!r} must be {_describe(expected)}, not {value!r}")
    for key, p in accepted.items():
        if p.default is inspect.Parameter.empty and key not in params:
            problems.append(f"{name} needs the parameter {key!r}")
    return problems


_JSON_TYPES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false",
               list: "a list", dict: "an object", type(None): "null"}  # fmt: skip


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # an annotation we cannot resolve: no type check for it
        return {}


def _options(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (typing.get_origin(annotation) or annotation,)


def _matches(value: Any, annotation: Any) -> bool:
    """Whether a JSON value fits a simple annotation (int, float, str, bool, list, dict, unions
    of those, None); anything fancier is not checked here."""
    options = _options(annotation)
    if not all(option in _JSON_TYPES for option in options):
        return True
    for option in options:
        if option is bool and isinstance(value, bool):
            return True
        if isinstance(value, bool):
            continue  # JSON true is not a number
        if option is float and isinstance(value, int | float):
            return True
        if option is not float and isinstance(value, option):
            return True
    return False


def _describe(annotation: Any) -> str:
    return " or ".join(_JSON_TYPES.get(option, str(option)) for option in _options(annotation))
