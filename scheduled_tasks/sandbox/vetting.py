"""Which objects a snippet may touch: exact types, allowlists, deny by default.

A snippet that holds one raw Django object (a model instance, a queryset, a connection) can
walk from it to the whole process. The proxies keep such objects out, and this module is the
second wall when a door nobody foresaw hands one out anyway: attribute reads, item reads,
iteration and writes are allowed only on objects whose *exact* type is vetted here —

* plain values: ``str``, ``int``, ``Decimal``, date/time types, ``UUID`` ... and the containers
  and iterators of the standard library a snippet works with;
* the sandbox's proxies (registered with :func:`register_proxy`);
* the firewall's exceptions and the standard exceptions;
* what the snippet itself made: its functions, generators, and classes registered with
  :func:`register_snippet_class`.

Everything else refuses every attribute. Subclasses are not vetted: a ``str`` subclass can
override any method, so only the exact type says what an object does.
"""

from __future__ import annotations

import builtins
import collections
import datetime as dt
import decimal
import fractions
import itertools
import json
import re
import statistics
import types
import uuid
import weakref
import zoneinfo
from typing import Any

# The file name compiled snippets carry; code objects with it are the snippet's own.
SNIPPET_FILENAME = "<snippet>"

# Exact types whose instances hold plain data and may go into and come out of the ORM.
SCALAR_TYPES: frozenset[type] = frozenset(
    {
        type(None), bool, int, float, str, decimal.Decimal, dt.date, dt.datetime, dt.time,
        dt.timedelta, uuid.UUID,
    }
)  # fmt: skip

# Containers the ORM accepts and returns (rebuilt as these exact types).
CONTAINER_TYPES: frozenset[type] = frozenset({list, tuple, dict, set, frozenset})


def _iterator_types() -> set[type]:
    samples: list[Any] = [
        iter([]), iter(()), iter(""), iter(range(1)), iter(set()), iter(frozenset()),
        iter({}), iter({}.values()), iter({}.items()), reversed([]), reversed(range(1)),
        iter(bytearray()), iter(b""), iter(collections.deque()), reversed(collections.deque()),
        {}.keys(), {}.values(), {}.items(), enumerate([]), zip(), map(abs, []),
        filter(None, []), reversed({}), reversed({}.values()), reversed({}.items()),
        iter(collections.OrderedDict()), reversed(collections.OrderedDict()),
        collections.OrderedDict().keys(), collections.OrderedDict().values(),
        collections.OrderedDict().items(),
    ]  # fmt: skip
    found = {type(sample) for sample in samples}
    found.update(
        obj for obj in vars(itertools).values() if isinstance(obj, type) and obj is not object
    )
    found.add(type(next(itertools.groupby([1]))[1]))  # itertools._grouper
    found.add(type(itertools.tee([])[0]))
    return found


# Other plain-data types of the standard library that snippets use through allowed modules.
_LIBRARY_VALUE_TYPES: set[type] = {
    complex, bytes, bytearray, range, slice, dt.timezone, zoneinfo.ZoneInfo, fractions.Fraction,
    collections.Counter, collections.defaultdict, collections.OrderedDict, collections.deque,
    collections.ChainMap, re.Pattern, re.Match, type(dt.date(2000, 1, 1).isocalendar()),
    decimal.Context, decimal.DecimalTuple,
}  # fmt: skip

VALUE_TYPES: frozenset[type] = frozenset(
    SCALAR_TYPES | CONTAINER_TYPES | _LIBRARY_VALUE_TYPES | _iterator_types()
)

# Mutable containers whose items a snippet may set (``counts[key] = 1``).
ITEM_WRITABLE_TYPES: frozenset[type] = frozenset(
    {
        list, dict, collections.Counter, collections.defaultdict, collections.OrderedDict,
        collections.deque, collections.ChainMap, bytearray,
    }
)  # fmt: skip


def _builtin_exceptions() -> set[type]:
    return {
        obj
        for obj in vars(builtins).values()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    }


_LIBRARY_EXCEPTIONS: set[type] = {
    json.JSONDecodeError, re.error, statistics.StatisticsError, decimal.DecimalException,
    decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow, decimal.Underflow,
    decimal.Inexact, decimal.Rounded, decimal.Subnormal, decimal.Clamped,
    decimal.FloatOperation, decimal.ConversionSyntax, decimal.DivisionImpossible,
    decimal.DivisionUndefined, decimal.InvalidContext,
}  # fmt: skip

# Exception classes whose instances a snippet may inspect; the firewall's are added on import.
_exception_types: set[type] = _builtin_exceptions() | _LIBRARY_EXCEPTIONS

# Proxy classes: attribute reads go through their ``__sandbox_getattr__`` (or, for the few
# registered as "open", plain ``getattr`` of public names).
_proxy_types: set[type] = set()
_open_types: set[type] = set()
# Classes the snippet created (class statements, namedtuple) and Django choices enums.
_snippet_classes: weakref.WeakSet[type] = weakref.WeakSet()
_choices_classes: set[type] = set()


def register_proxy(cls: type, *, open_attributes: bool = False) -> type:
    """Mark ``cls`` as a sandbox proxy (usable as a class decorator)."""
    _proxy_types.add(cls)
    if open_attributes:
        _open_types.add(cls)
    return cls


def register_exception(cls: type) -> type:
    """Mark an exception class of the firewall as vetted (usable as a class decorator)."""
    _exception_types.add(cls)
    return cls


def register_snippet_class(cls: type) -> type:
    """A class the snippet itself defined: its instances are the snippet's own objects."""
    _snippet_classes.add(cls)
    return cls


def register_choices(cls: type) -> type:
    """A Django ``Choices`` enum exposed on a model proxy (``Ticket.Status``)."""
    _choices_classes.add(cls)
    return cls


def is_snippet_class(cls: Any) -> bool:
    return isinstance(cls, type) and cls in _snippet_classes


def is_proxy_class(obj: Any) -> bool:
    """A sandbox helper class itself (``Q``, ``Count``...), as configured in NAMESPACE."""
    return isinstance(obj, type) and obj in _proxy_types


def is_vetted_exception_class(cls: Any) -> bool:
    return isinstance(cls, type) and cls in _exception_types


def is_proxy(obj: Any) -> bool:
    return type(obj) in _proxy_types


def is_open_proxy(obj: Any) -> bool:
    return type(obj) in _open_types


def is_snippet_code(code: Any) -> bool:
    return isinstance(code, types.CodeType) and code.co_filename == SNIPPET_FILENAME


def _is_snippet_made(obj: Any) -> bool:
    kind = type(obj)
    if kind is types.FunctionType:
        return is_snippet_code(obj.__code__)
    if kind is types.MethodType:
        return _is_snippet_made(obj.__func__)
    if kind in (types.GeneratorType, types.CoroutineType):
        code = obj.gi_code if kind is types.GeneratorType else obj.cr_code
        return is_snippet_code(code)
    return kind in _snippet_classes  # an instance (the classes themselves: vetted_class)


def vetted_class(obj: Any) -> bool:
    """Whether ``obj`` is a class whose attributes a snippet may read (``datetime.now``)."""
    return isinstance(obj, type) and (
        obj in VALUE_TYPES
        or obj in _exception_types
        or obj in _choices_classes
        or obj in _snippet_classes
    )


def allows_items(obj: Any) -> bool:
    """May a snippet index or iterate ``obj``?"""
    kind = type(obj)
    return (
        kind in VALUE_TYPES
        or kind in _proxy_types
        or kind in _choices_classes
        or vetted_class(obj)
        or _is_snippet_made(obj)
    )


def allows_attributes(obj: Any) -> bool:
    """Default deny: may a snippet read (public) attributes of ``obj``?"""
    return allows_items(obj) or type(obj) in _exception_types


def allows_item_writes(obj: Any) -> bool:
    kind = type(obj)
    return kind in ITEM_WRITABLE_TYPES or kind in _snippet_classes


def allows_attribute_writes(obj: Any) -> bool:
    """Attribute writes: instances of the snippet's own classes and those classes themselves
    (proxies decide through their own guard)."""
    return type(obj) in _snippet_classes or is_snippet_class(obj)


def is_vetted_exception(exc: BaseException) -> bool:
    return type(exc) in _exception_types


MAX_DEPTH = 32


def plain_copy(value: Any, *, depth: int = 0, proxies: bool = False) -> Any:
    """An eager copy of ``value`` made of exact plain types only, or TypeError.

    Containers are rebuilt as their exact base type (a ``tuple`` subclass with extra
    attributes comes back as a plain ``tuple`` — or not at all if it is not a plain type).
    Choices members (``Ticket.Status.OPEN``) become their plain value. With ``proxies``,
    sandbox proxies are kept as they are (``Q(company__in=[acme, globex])``).
    """
    kind = type(value)
    if kind in SCALAR_TYPES:
        return value
    if kind in _choices_classes:
        return plain_copy(value.value, depth=depth)
    if proxies and kind in _proxy_types:
        return value
    if depth >= MAX_DEPTH:
        raise TypeError("the value is nested too deeply")
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        return kind(plain_copy(item, depth=depth + 1, proxies=proxies) for item in value)
    if kind is dict:
        return {
            plain_copy(key, depth=depth + 1): plain_copy(item, depth=depth + 1, proxies=proxies)
            for key, item in value.items()
        }
    raise TypeError(f"values of type {kind.__name__} cannot be used here")


def is_vetted_value(value: Any, *, depth: int = 0) -> bool:
    """Deep check used by tests and by the firewall on what proxies return."""
    kind = type(value)
    if kind in SCALAR_TYPES or kind in _proxy_types or kind in _choices_classes:
        return True
    if depth >= MAX_DEPTH:
        return False
    if kind in (list, tuple, set, frozenset):
        return all(is_vetted_value(item, depth=depth + 1) for item in value)
    if kind is dict:
        return all(
            is_vetted_value(k, depth=depth + 1) and is_vetted_value(v, depth=depth + 1)
            for k, v in value.items()
        )
    return False
