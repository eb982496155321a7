"""Whitelisted Django models as snippets see them: proxies with a per-model field allowlist.

A real model class is a door to the whole database (``_meta``, ``objects.raw()``, ``extra()``,
``queryset.query``, string lookups such as ``values("assignee__password")``). Snippets get
proxies instead: every lookup path, ordering, value and assignment is checked against the
fields each model exposes, and relations lead only to other whitelisted models.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from scheduled_tasks.sandbox.expressions import aggregate_kwargs, require_q
from scheduled_tasks.sandbox.policy import SandboxViolation

# Lookups and transforms a snippet may put after a field name in filter()/exclude().
ALLOWED_LOOKUPS = frozenset(
    {
        "exact", "iexact", "contains", "icontains", "in", "gt", "gte", "lt", "lte",
        "startswith", "istartswith", "endswith", "iendswith", "range", "isnull",
        "date", "time", "year", "iso_year", "month", "day", "week", "week_day",
        "iso_week_day", "quarter", "hour", "minute", "second",
    }
)  # fmt: skip

# The auth user is shared with the login system: snippets read a few harmless fields only and
# never write. ``password``, permissions and groups are never reachable.
DEFAULT_USER_FIELDS = (
    "id", "username", "first_name", "last_name", "email", "is_active", "is_staff", "date_joined",
)  # fmt: skip

_PLAIN_TYPES = (
    str, int, float, bool, decimal.Decimal, _dt.date, _dt.datetime, _dt.time, _dt.timedelta,
    uuid.UUID,
)  # fmt: skip

_QUERYSET_METHODS = frozenset(
    {
        "all", "filter", "exclude", "order_by", "distinct", "reverse", "none", "get", "first",
        "last", "count", "exists", "values", "values_list", "update", "delete", "create",
        "get_or_create", "aggregate", "annotate",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the name snippets know the model by
    model: type[models.Model]
    fields: frozenset[str]
    read_only: bool


class ModelRegistry:
    """The whitelisted models of one namespace, found by class."""

    def __init__(self, specs: Iterable[ModelSpec]) -> None:
        self._by_model = {spec.model: spec for spec in specs}

    def spec_for(self, model: type[models.Model]) -> ModelSpec | None:
        return self._by_model.get(model)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._by_model.values())


def resolve_model(label: str) -> type[models.Model]:
    """``"app_label.Model"`` to the model class (LookupError/ValueError when unknown)."""
    return apps.get_model(label)


def default_fields(model: type[models.Model], whitelisted: set[type[models.Model]]) -> set[str]:
    """Concrete fields, plus relations whose other side is whitelisted too."""
    if model._meta.label == "auth.User":
        return set(DEFAULT_USER_FIELDS)
    names: set[str] = set()
    for field in model._meta.get_fields():
        if field.is_relation:
            if field.related_model in whitelisted and not getattr(field, "hidden", False):
                names.add(field.name)
        elif getattr(field, "concrete", False):
            names.add(field.name)
    return names


def build_registry(entries: dict[str, dict[str, Any]]) -> ModelRegistry:
    """Model specs from the NAMESPACE entries ``{"model": label, "fields"?, "read_only"?}``."""
    resolved = {name: resolve_model(entry["model"]) for name, entry in entries.items()}
    whitelisted = set(resolved.values())
    specs = []
    for name, entry in entries.items():
        model = resolved[name]
        fields = entry.get("fields")
        field_set = set(fields) if fields is not None else default_fields(model, whitelisted)
        read_only = entry.get("read_only", model._meta.label == "auth.User")
        specs.append(ModelSpec(name, model, frozenset(field_set), bool(read_only)))
    return ModelRegistry(specs)


def _has_field(spec: ModelSpec, name: str) -> bool:
    try:
        spec.model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


class _Checker:
    """Checks lookup paths and values against a registry."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def related_spec(self, spec: ModelSpec, field: Any, part: str) -> ModelSpec:
        target = self.registry.spec_for(field.related_model)
        if target is None:
            raise SandboxViolation(f"{spec.name}.{part} leads to a model snippets cannot use")
        return target

    def field(self, spec: ModelSpec, part: str) -> Any:
        if part == "pk":
            return spec.model._meta.pk
        if part not in spec.fields:
            raise SandboxViolation(f"{spec.name} has no field {part!r} available to snippets")
        try:
            return spec.model._meta.get_field(part)
        except FieldDoesNotExist:
            raise SandboxViolation(f"{spec.name} has no field {part!r}") from None

    def path(self, spec: ModelSpec, path: str, *, lookups: bool) -> None:
        """Refuse a ``field__related__lookup`` path that leaves the allowlist."""
        if not isinstance(path, str) or not path or path.startswith("_") or "___" in path:
            raise SandboxViolation(f"invalid field path {path!r}")
        parts = path.split("__")
        current = spec
        for index, part in enumerate(parts):
            if index > 0 and lookups and part in ALLOWED_LOOKUPS and not _has_field(current, part):
                rest = parts[index + 1 :]
                if all(p in ALLOWED_LOOKUPS for p in rest):
                    return
                raise SandboxViolation(f"lookup {path!r} is not allowed in snippets")
            field = self.field(current, part)
            if field.is_relation:
                current = self.related_spec(current, field, part)
            elif index < len(parts) - 1:
                # Only lookups may follow a plain field.
                tail = parts[index + 1 :]
                if lookups and all(p in ALLOWED_LOOKUPS for p in tail):
                    return
                raise SandboxViolation(f"lookup {path!r} is not allowed in snippets")

    def value(self, value: Any) -> Any:
        """Unwrap proxies; refuse expressions (RawSQL, F, Func...) and other live objects."""
        if value is None or isinstance(value, _PLAIN_TYPES):
            return value
        if isinstance(value, InstanceProxy):
            return value._obj
        if isinstance(value, QuerySetProxy):
            return value._qs
        if isinstance(value, (list, tuple, set, frozenset)):
            return type(value)(self.value(v) for v in value)
        raise SandboxViolation(f"values of type {type(value).__name__} cannot be used in queries")

    def q(self, spec: ModelSpec, q: models.Q) -> models.Q:
        """A copy of ``q`` whose every leaf lookup and value passed the checks."""
        clean = models.Q()
        clean.connector, clean.negated = q.connector, q.negated
        for child in q.children:
            if isinstance(child, models.Q):
                clean.children.append(self.q(spec, child))
            else:
                key, value = child
                self.path(spec, key, lookups=True)
                clean.children.append((key, self.value(value)))
        return clean

    def kwargs(self, spec: ModelSpec, kwargs: dict[str, Any], *, lookups: bool) -> dict[str, Any]:
        for key in kwargs:
            self.path(spec, key, lookups=lookups)
        return {key: self.value(v) for key, v in kwargs.items()}

    def writable(self, spec: ModelSpec, kwargs: dict[str, Any]) -> dict[str, Any]:
        if spec.read_only:
            raise SandboxViolation(f"{spec.name} is read-only in snippets")
        clean = {}
        for key, value in kwargs.items():
            field = self.field(spec, key)
            if field.primary_key or not getattr(field, "concrete", False):
                raise SandboxViolation(f"{spec.name}.{key} cannot be set by snippets")
            if field.is_relation and value is not None and not isinstance(value, InstanceProxy):
                raise SandboxViolation(f"{spec.name}.{key} must be set to a {field.name} object")
            clean[key] = self.value(value)
        return clean


class QuerySetProxy:
    """A manager or queryset of a whitelisted model."""

    __slots__ = ("_checker", "_plain", "_qs", "_spec")

    def __init__(
        self, spec: ModelSpec, qs: models.QuerySet, checker: _Checker, *, plain: bool = False
    ) -> None:
        self._spec = spec
        self._qs = qs
        self._checker = checker
        self._plain = plain  # values()/values_list() rows: plain dicts/tuples

    def __sandbox_getattr__(self, name: str) -> Any:
        if name in _QUERYSET_METHODS:
            return getattr(self, name)
        raise SandboxViolation(f"{self._spec.name}.objects.{name} is not available in snippets")

    def _wrap(self, qs: models.QuerySet, *, plain: bool | None = None) -> QuerySetProxy:
        return QuerySetProxy(
            self._spec, qs, self._checker, plain=self._plain if plain is None else plain
        )

    def _instance(self, obj: Any) -> Any:
        if self._plain:
            return obj
        return InstanceProxy(self._spec, obj, self._checker)

    def _read(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return self._checker.kwargs(self._spec, kwargs, lookups=True)

    def _q_args(self, args: tuple[Any, ...]) -> list[models.Q]:
        return [self._checker.q(self._spec, require_q(arg)._q) for arg in args]

    # chainable
    def all(self) -> QuerySetProxy:
        return self._wrap(self._qs.all())

    def filter(self, *args: Any, **kwargs: Any) -> QuerySetProxy:
        return self._wrap(self._qs.filter(*self._q_args(args), **self._read(kwargs)))

    def exclude(self, *args: Any, **kwargs: Any) -> QuerySetProxy:
        return self._wrap(self._qs.exclude(*self._q_args(args), **self._read(kwargs)))

    def order_by(self, *fields: str) -> QuerySetProxy:
        for field in fields:
            if not isinstance(field, str):
                raise SandboxViolation("order_by() takes field names")
            if field != "?":
                self._checker.path(self._spec, field.removeprefix("-"), lookups=False)
        return self._wrap(self._qs.order_by(*fields))

    def distinct(self) -> QuerySetProxy:
        return self._wrap(self._qs.distinct())

    def reverse(self) -> QuerySetProxy:
        return self._wrap(self._qs.reverse())

    def none(self) -> QuerySetProxy:
        return self._wrap(self._qs.none())

    def _value_fields(self, fields: tuple[str, ...]) -> tuple[str, ...]:
        if not fields:
            # values() with no names would include every column: list the allowed ones.
            concrete = [f for f in self._spec.model._meta.concrete_fields]
            return tuple(
                f.attname if f.is_relation else f.name
                for f in concrete
                if f.name in self._spec.fields
            )
        for field in fields:
            self._checker.path(self._spec, field, lookups=True)
        return fields

    def values(self, *fields: str) -> QuerySetProxy:
        return self._wrap(self._qs.values(*self._value_fields(fields)), plain=True)

    def values_list(self, *fields: str, flat: bool = False) -> QuerySetProxy:
        names = self._value_fields(fields)
        return self._wrap(self._qs.values_list(*names, flat=flat), plain=True)

    # terminal
    def get(self, **kwargs: Any) -> Any:
        return self._instance(self._qs.get(**self._read(kwargs)))

    def first(self) -> Any:
        obj = self._qs.first()
        return None if obj is None else self._instance(obj)

    def last(self) -> Any:
        obj = self._qs.last()
        return None if obj is None else self._instance(obj)

    def count(self) -> int:
        return self._qs.count()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._qs.aggregate(**aggregate_kwargs(self._checker, self._spec, args, kwargs))

    def annotate(self, *args: Any, **kwargs: Any) -> QuerySetProxy:
        # Only on values()/values_list() rows, where the result is plain data: model objects
        # with extra attributes would step outside the field allowlist.
        if not self._plain:
            raise SandboxViolation("annotate() is available after values() only")
        named = aggregate_kwargs(self._checker, self._spec, args, kwargs)
        return self._wrap(self._qs.annotate(**named))

    def exists(self) -> bool:
        return self._qs.exists()

    def update(self, **kwargs: Any) -> int:
        return self._qs.update(**self._checker.writable(self._spec, kwargs))

    def delete(self) -> int:
        if self._spec.read_only:
            raise SandboxViolation(f"{self._spec.name} is read-only in snippets")
        return self._qs.delete()[0]

    def create(self, **kwargs: Any) -> InstanceProxy:
        obj = self._spec.model._default_manager.create(**self._checker.writable(self._spec, kwargs))
        return InstanceProxy(self._spec, obj, self._checker)

    def get_or_create(self, defaults: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        lookup = self._read(kwargs)
        clean_defaults = self._checker.writable(self._spec, dict(defaults or {}))
        if self._spec.read_only:
            raise SandboxViolation(f"{self._spec.name} is read-only in snippets")
        obj, created = self._qs.get_or_create(defaults=clean_defaults, **lookup)
        return InstanceProxy(self._spec, obj, self._checker), created

    # Python protocols
    def __iter__(self) -> Iterator[Any]:
        return (self._instance(obj) for obj in self._qs)

    def __len__(self) -> int:
        return len(self._qs)

    def __bool__(self) -> bool:
        return self._qs.exists() if self._qs._result_cache is None else bool(self._qs)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return self._wrap(self._qs[key])
        if isinstance(key, int) and not isinstance(key, bool):
            return self._instance(self._qs[key])
        raise TypeError("querysets are indexed by integers or slices")

    def __repr__(self) -> str:
        return f"<{self._spec.name} query>"


def _read(obj: Any, name: str) -> Any:
    # An AttributeError raised by the real object would carry it in ``.obj``.
    try:
        return getattr(obj, name)
    except AttributeError:
        raise SandboxViolation(f"{name!r} cannot be read here") from None


class SafeCall:
    """A callable that exposes nothing but the call."""

    __slots__ = ("_call",)

    def __init__(self, call: Any) -> None:
        self._call = call

    def __call__(self) -> Any:
        return self._call()

    def __sandbox_getattr__(self, name: str) -> Any:
        raise SandboxViolation(f"{name!r} is not available on this method")

    def __repr__(self) -> str:
        return "<method>"


class InstanceProxy:
    """One row of a whitelisted model: allowed fields readable, writable unless read-only."""

    __slots__ = ("_checker", "_obj", "_spec")

    def __init__(self, spec: ModelSpec, obj: models.Model, checker: _Checker) -> None:
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_checker", checker)

    def __sandbox_getattr__(self, name: str) -> Any:
        spec, obj = self._spec, self._obj
        if name == "pk":
            return obj.pk
        if name in ("save", "delete", "refresh_from_db"):
            if spec.read_only and name != "refresh_from_db":
                raise SandboxViolation(f"{spec.name} is read-only in snippets")
            return getattr(self, name)
        if name.startswith("get_") and name.endswith("_display"):
            field_name = name[4:-8]
            if field_name in spec.fields and spec.model._meta.get_field(field_name).choices:
                # Django's bound helper is a functools.partial whose .keywords hold the real
                # field (and through it the model): hand out a plain call instead.
                return SafeCall(lambda: str(getattr(obj, name)()))
        if name.endswith("_id") and name[:-3] in spec.fields:
            field = self._checker.field(spec, name[:-3])
            if field.many_to_one or field.one_to_one:
                return getattr(obj, name)
        field = self._checker.field(spec, name)
        if not field.is_relation:
            return _read(obj, name)
        target = self._checker.related_spec(spec, field, name)
        if field.many_to_one or (field.one_to_one and field.concrete):
            related = getattr(obj, name)
            return None if related is None else InstanceProxy(target, related, self._checker)
        if field.one_to_one:
            try:
                related = getattr(obj, name)
            except field.related_model.DoesNotExist:
                return None
            return InstanceProxy(target, related, self._checker)
        manager = getattr(obj, field.get_accessor_name() if field.auto_created else name)
        return QuerySetProxy(target, manager.all(), self._checker)

    def __guarded_setattr__(self, name: str, value: Any) -> None:
        clean = self._checker.writable(self._spec, {name: value})
        setattr(self._obj, name, clean[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise SandboxViolation("model objects are changed through attribute assignment only")

    def save(self) -> None:
        self._obj.save()

    def delete(self) -> None:
        self._obj.delete()

    def refresh_from_db(self) -> None:
        self._obj.refresh_from_db()

    def __str__(self) -> str:
        return str(self._obj)

    def __repr__(self) -> str:
        return f"<{self._spec.name}: {self._obj}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, InstanceProxy):
            return self._obj == other._obj
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._obj)


class ModelProxy:
    """What a snippet sees as ``Ticket``: ``objects``, ``DoesNotExist``, choices enums."""

    __slots__ = ("_checker", "_spec")

    def __init__(self, spec: ModelSpec, checker: _Checker) -> None:
        self._spec = spec
        self._checker = checker

    def __sandbox_getattr__(self, name: str) -> Any:
        model = self._spec.model
        if name == "objects":
            return QuerySetProxy(self._spec, model._default_manager.all(), self._checker)
        if name in ("DoesNotExist", "MultipleObjectsReturned"):
            return getattr(model, name)
        value = getattr(model, name, None)
        if isinstance(value, type) and issubclass(value, models.Choices):
            return value
        raise SandboxViolation(f"{self._spec.name}.{name} is not available in snippets")

    def __call__(self, **kwargs: Any) -> InstanceProxy:
        obj = self._spec.model(**self._checker.writable(self._spec, kwargs))
        return InstanceProxy(self._spec, obj, self._checker)

    def __repr__(self) -> str:
        return f"<model {self._spec.name}>"


def model_proxies(registry: ModelRegistry) -> dict[str, ModelProxy]:
    checker = _Checker(registry)
    return {spec.name: ModelProxy(spec, checker) for spec in registry}
