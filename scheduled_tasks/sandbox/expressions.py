"""Query helpers a snippet may use: ``Q`` objects and the aggregates ``Count``, ``Sum``,
``Avg``, ``Min``, ``Max``. They hold plain data only (lookups, a field name); the model proxies
check every field path when they turn them into Django objects."""

from __future__ import annotations

from typing import Any

from django.db import models

from scheduled_tasks.sandbox import vetting
from scheduled_tasks.sandbox.errors import SandboxViolation, firewall_class


def _helper(cls: type) -> type:
    return vetting.register_proxy(firewall_class(cls))


@_helper
class Q:
    """``Q(status="open") | Q(status="resolved")`` for snippets; checked when it is used.

    Values are copied at once as exact plain types (or proxies): Django compares and hashes
    the children of a Q when it combines them, and must never call a snippet's object.
    """

    __slots__ = ("_q",)

    def __init__(self, **lookups: Any) -> None:
        clean = {}
        for key, value in lookups.items():
            if type(key) is not str or key.startswith("_"):
                raise SandboxViolation("Q() takes field lookups only")
            try:
                clean[key] = vetting.plain_copy(value, proxies=True)
            except TypeError as exc:
                raise TypeError(f"{key}: {exc}") from None
        self._q = models.Q(**clean)

    @classmethod
    def _of(cls, q: models.Q) -> Q:
        obj = cls.__new__(cls)
        obj._q = q
        return obj

    def __and__(self, other: Q) -> Q:
        return Q._of(self._q & require_q(other)._q)

    def __or__(self, other: Q) -> Q:
        return Q._of(self._q | require_q(other)._q)

    def __xor__(self, other: Q) -> Q:
        return Q._of(self._q ^ require_q(other)._q)

    def __invert__(self) -> Q:
        return Q._of(~self._q)

    def __repr__(self) -> str:
        return repr(self._q)


def require_q(value: Any) -> Q:
    if type(value) is not Q:
        raise SandboxViolation("Q objects combine only with other Q objects")
    return value


class _Aggregate:
    """``Count("id")``, ``Sum("amount", distinct=True)``...: a field name checked on use."""

    __slots__ = ("_distinct", "_field")
    _function: type[models.Aggregate] = models.Aggregate

    def __init__(self, field: str, *, distinct: bool = False) -> None:
        if type(field) is not str:
            raise SandboxViolation("aggregates take a field name")
        if type(distinct) is not bool:
            raise TypeError("distinct takes True or False")
        self._field = field
        self._distinct = distinct

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._field!r})"


@_helper
class Count(_Aggregate):
    __slots__ = ()
    _function = models.Count


@_helper
class Sum(_Aggregate):
    __slots__ = ()
    _function = models.Sum


@_helper
class Avg(_Aggregate):
    __slots__ = ()
    _function = models.Avg


@_helper
class Min(_Aggregate):
    __slots__ = ()
    _function = models.Min


@_helper
class Max(_Aggregate):
    __slots__ = ()
    _function = models.Max


def aggregate_kwargs(
    checker: Any, spec: Any, args: Any, kwargs: Any
) -> dict[str, models.Aggregate]:
    """Django aggregates for ``aggregate()``/``annotate()``, each field path checked first."""
    named: dict[str, models.Aggregate] = {}
    for alias, agg in [(None, a) for a in args] + list(kwargs.items()):
        if type(agg) not in _AGGREGATES:
            raise SandboxViolation("only Count, Sum, Avg, Min and Max can be aggregated")
        checker.path(spec, agg._field, lookups=False)
        name = alias or f"{agg._field}__{type(agg).__name__.lower()}"
        if type(name) is not str or name.startswith("_"):
            raise SandboxViolation(f"invalid aggregate name {name!r}")
        named[name] = agg._function(agg._field, distinct=agg._distinct)
    return named


_AGGREGATES = (Count, Sum, Avg, Min, Max)
