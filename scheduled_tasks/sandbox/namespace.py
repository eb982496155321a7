"""What a snippet sees: vetted proxies built from ``SCHEDULED_TASKS["NAMESPACE"]``.

Never a real module (``django.utils.timezone`` reaches ``settings`` through its attributes):
modules and helpers are exposed as :class:`SafeNamespace` objects holding chosen members only.
"""

from __future__ import annotations

import builtins
import collections
import datetime as dt
import decimal
import dis
import itertools
import json
import math
import random
import re
import statistics
import string
import sys
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone as dj_timezone
from django.utils.module_loading import import_string

from scheduled_tasks import conf
from scheduled_tasks.sandbox import vetting
from scheduled_tasks.sandbox.errors import SNIPPET_EXCEPTIONS, SandboxViolation, firewall_class
from scheduled_tasks.sandbox.orm import (
    ModelRegistry,
    build_registry,
    model_proxies,
    resolve_model,
)
from scheduled_tasks.sandbox.policy import ALLOWED_IMPORTS
from scheduled_tasks.sandbox.snippet_logger import SnippetLogger

vetting.register_proxy(SnippetLogger, open_attributes=True)

# Time zone objects may cross the boundary as they are (they hold no reference outward).
_TZ_TYPES = (dt.timezone, zoneinfo.ZoneInfo)


def _crossing(value: Any, what: str) -> Any:
    """A value crossing a function boundary: exact plain data, a time zone, or a proxy."""
    if type(value) in _TZ_TYPES or vetting.is_proxy(value) or vetting.is_vetted_value(value):
        return value
    raise TypeError(f"{what}: values of type {type(value).__name__} cannot be used here")


@vetting.register_proxy
@firewall_class
class SafeFunction:
    """A configured function (``timezone.now``, a NAMESPACE dotted path): exact plain values
    in and out, its errors through the firewall, nothing else of it visible."""

    __slots__ = ("_func", "_name")

    def __init__(self, name: str, func: Callable[..., Any]) -> None:
        self._name = name
        self._func = func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args = tuple(_crossing(a, self._name) for a in args)
        kwargs = {k: _crossing(v, self._name) for k, v in kwargs.items()}
        return _crossing(self._func(*args, **kwargs), f"{self._name}() result")

    def __sandbox_getattr__(self, name: str) -> Any:
        raise SandboxViolation(f"{name!r} is not available on {self._name}")

    def __repr__(self) -> str:
        return f"<function {self._name}>"


def expose(name: str, obj: Any) -> Any:
    """How a configured object is handed to snippets: vetted classes and proxies as they
    are, other callables behind :class:`SafeFunction`; anything else is refused."""
    if vetting.vetted_class(obj) or vetting.is_proxy(obj) or vetting.is_proxy_class(obj):
        return obj
    if callable(obj) and not isinstance(obj, type):
        return SafeFunction(name, obj)
    raise SandboxViolation(f"{name} cannot be exposed to snippets")


def _snippet_namedtuple(*args: Any, **kwargs: Any) -> type:
    kwargs.pop("module", None)
    cls = collections.namedtuple(*args, **kwargs)
    cls.__module__ = "snippet"
    return vetting.register_snippet_class(cls)


@vetting.register_proxy
class SafeNamespace:
    """A module-like object exposing an explicit set of members, nothing else."""

    __slots__ = ("_members", "_name")

    def __init__(self, name: str, members: dict[str, Any]) -> None:
        self._name = name
        self._members = dict(members)

    def __sandbox_getattr__(self, name: str) -> Any:
        try:
            return self._members[name]
        except KeyError:
            raise SandboxViolation(f"{self._name}.{name} is not available in snippets") from None

    # `from math import sqrt` reads the member with a plain getattr: same allowlist.
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._members[name]
        except KeyError:
            raise ImportError(f"cannot import {name!r} from {self._name!r}") from None

    def __repr__(self) -> str:
        return f"<{self._name}>"


def _public(module: Any, names: list[str] | None = None) -> dict[str, Any]:
    chosen = names if names is not None else [n for n in dir(module) if not n.startswith("_")]
    return {name: getattr(module, name) for name in chosen}


def _allowed_modules() -> dict[str, SafeNamespace]:
    members = {
        "math": _public(math),
        "json": _public(json, ["dumps", "loads", "JSONDecodeError"]),
        "re": _public(
            re,
            [
                "compile", "search", "match", "fullmatch", "split", "findall", "finditer",
                "sub", "subn", "escape", "error", "IGNORECASE", "I", "MULTILINE", "M",
                "DOTALL", "S", "VERBOSE", "X", "ASCII", "A",
            ],
        ),
        "decimal": _public(
            decimal,
            [
                "Decimal", "InvalidOperation", "DivisionByZero", "ROUND_HALF_UP",
                "ROUND_HALF_EVEN", "ROUND_HALF_DOWN", "ROUND_UP", "ROUND_DOWN", "ROUND_CEILING",
                "ROUND_FLOOR",
            ],
        ),
        "statistics": _public(
            statistics,
            [
                "mean", "fmean", "geometric_mean", "harmonic_mean", "median", "median_low",
                "median_high", "median_grouped", "mode", "multimode", "quantiles", "pstdev",
                "pvariance", "stdev", "variance", "StatisticsError",
            ],
        ),
        "itertools": _public(itertools),
        "collections": {
            **_public(collections, ["Counter", "defaultdict", "OrderedDict", "deque", "ChainMap"]),
            "namedtuple": _snippet_namedtuple,
        },
        "datetime": _public(
            dt, ["date", "datetime", "time", "timedelta", "timezone", "MINYEAR", "MAXYEAR", "UTC"]
        ),
        "string": _public(
            string,
            [
                "ascii_letters", "ascii_lowercase", "ascii_uppercase", "digits", "hexdigits",
                "octdigits", "punctuation", "printable", "whitespace", "capwords",
            ],
        ),
        "random": _public(
            random,
            [
                "random", "randint", "randrange", "choice", "choices", "shuffle", "sample",
                "uniform", "gauss",
            ],
        ),
    }  # fmt: skip
    return {name: SafeNamespace(name, m) for name, m in members.items()}


assert tuple(sorted(_allowed_modules())) == ALLOWED_IMPORTS, "policy and namespace disagree"


_IMPORT_NAME = dis.opmap["IMPORT_NAME"]


def _is_import_statement(frame: Any) -> bool:
    """Whether the calling frame is executing an ``import`` statement right now.

    C code such as ``datetime.strftime`` imports ``time`` through the ``__import__`` of the
    running frame's builtins, i.e. ours. Such a call happens during a CALL instruction of the
    snippet, an ``import`` statement during IMPORT_NAME: only the latter is the snippet's.
    """
    code = frame.f_code.co_code
    return 0 <= frame.f_lasti < len(code) and code[frame.f_lasti] == _IMPORT_NAME


def make_import_hook(modules: dict[str, SafeNamespace]) -> Callable[..., Any]:
    def guarded_import(
        name: str,
        globals: Any = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> Any:
        caller = sys._getframe(1)
        if not _is_import_statement(caller):
            # The standard library importing what it needs, not the snippet: the module goes
            # to C code that asked for it and never reaches the snippet's namespace.
            return builtins.__import__(name, globals, locals, fromlist, level)
        if level != 0 or name not in modules:
            allowed = ", ".join(sorted(modules))
            raise SandboxViolation(f"import of {name!r} is not allowed (allowed: {allowed})")
        return modules[name]

    return guarded_import


timezone_proxy = SafeNamespace(
    "timezone",
    {
        **{
            name: SafeFunction(f"timezone.{name}", getattr(dj_timezone, name))
            for name in (
                "now",
                "localtime",
                "localdate",
                "make_aware",
                "make_naive",
                "is_aware",
                "is_naive",
                "get_current_timezone_name",
                "get_default_timezone_name",
            )
        },
        "timedelta": dt.timedelta,
        "utc": dt.UTC,
    },
)


def _split(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    model_entries = {k: v for k, v in config.items() if isinstance(v, dict)}
    paths = {k: v for k, v in config.items() if isinstance(v, str)}
    return model_entries, paths


@dataclass(frozen=True)
class BaseNamespace:
    """What every snippet of one NAMESPACE setting sees, but its logger: built once per
    process, before the fork (each run's child gets a copy-on-write copy it cannot change
    for the next run)."""

    names: dict[str, Any]
    import_hook: Callable[..., Any]
    registry: ModelRegistry


_BASES: dict[str, BaseNamespace] = {}


def base_namespace(config: dict[str, Any]) -> BaseNamespace:
    """The (cached) names, import hook and model registry of a NAMESPACE setting."""
    key = repr(config)
    base = _BASES.get(key)
    if base is None:
        model_entries, paths = _split(config)
        registry = build_registry(model_entries)
        names: dict[str, Any] = dict(SNIPPET_EXCEPTIONS)
        names.update({name: expose(name, import_string(path)) for name, path in paths.items()})
        names.update(model_proxies(registry))
        base = BaseNamespace(names, make_import_hook(_allowed_modules()), registry)
        _BASES[key] = base
    return base


def build_namespace(
    config: dict[str, Any], *, sink: Callable[[str], None], label: str = "snippet"
) -> tuple[dict[str, Any], Callable[..., Any]]:
    """The snippet's names and its import hook, from the NAMESPACE setting."""
    base = base_namespace(config)
    logger = SnippetLogger(sink, label, budget=conf.get("MAX_OUTPUT_BYTES"))
    return {**base.names, "logger": logger}, base.import_hook


def namespace_errors(config: dict[str, Any]) -> list[str]:
    """Problems with a NAMESPACE setting, for the system checks."""
    errors = []
    for name, entry in config.items():
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            errors.append(f"NAMESPACE name {name!r} is not a valid public identifier.")
            continue
        if isinstance(entry, str):
            try:
                obj = import_string(entry)
            except ImportError as exc:
                errors.append(f"NAMESPACE[{name!r}]: cannot import {entry!r} ({exc}).")
                continue
            if type(obj).__name__ == "module":
                errors.append(
                    f"NAMESPACE[{name!r}] is a module; expose functions or a SafeNamespace."
                )
        elif isinstance(entry, dict) and "model" in entry:
            try:
                model = resolve_model(entry["model"])
            except (LookupError, ValueError):
                errors.append(f"NAMESPACE[{name!r}]: unknown model {entry['model']!r}.")
                continue
            for field in entry.get("fields") or ():
                try:
                    model._meta.get_field(field)
                except Exception:
                    errors.append(f"NAMESPACE[{name!r}]: {entry['model']} has no field {field!r}.")
                if field == "password":
                    errors.append(f"NAMESPACE[{name!r}]: exposing 'password' is refused.")
        else:
            errors.append(
                f"NAMESPACE[{name!r}] must be a dotted path or {{'model': 'app_label.Model'}}."
            )
    return errors
