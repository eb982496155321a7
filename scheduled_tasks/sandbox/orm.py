"""Whitelisted Django models as snippets see them: proxies with a per-model field allowlist.

A real model class is a door to the whole database (``_meta``, ``objects.raw()``, ``extra()``,
``queryset.query``, string lookups such as ``values("assignee__password")``). Snippets get
proxies instead, built on three rules:

* every lookup path, ordering, value name and assignment is checked against the fields each
  model exposes, and relations lead only to other whitelisted models;
* values going in are exact plain types, copied at once (:func:`vetting.plain_copy`), or a
  proxy where the field is a relation — never an object Django would probe for
  ``resolve_expression`` or ``as_sql``;
* values coming out are checked when they are read: plain values or proxies, nothing else.

Every public method runs behind the exception firewall (:mod:`errors`), and querysets load
only the allowlisted columns (``only()``), so the database itself can refuse the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from scheduled_tasks.sandbox import vetting
from scheduled_tasks.sandbox.errors import SandboxViolation, firewall_class, model_exceptions
from scheduled_tasks.sandbox.expressions import aggregate_kwargs, require_q

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

    def concrete_columns(self) -> list[str]:
        """Names of the allowlisted concrete fields (what querysets load)."""
        return [f.name for f in self.model._meta.concrete_fields if f.name in self.fields]


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


def _exact_str(value: Any, what: str) -> str:
    if type(value) is not str:
        raise SandboxViolation(f"{what} must be a plain string")
    return value


def plain_out(value: Any, where: str) -> Any:
    """A value read from Django, checked before the snippet gets it."""
    if isinstance(value, models.Choices):
        # A field default such as Ticket.Status.OPEN, still on an unsaved row: its value.
        value = value.value
    try:
        return vetting.plain_copy(value)
    except TypeError:
        raise SandboxViolation(f"{where} holds a value snippets cannot use") from None


@dataclass(frozen=True)
class _Resolved:
    field: Any  # the last model field of the path (None for "pk" on a model)
    spec: ModelSpec  # the model that field belongs to (or leads to, for a relation)
    lookups: tuple[str, ...]  # the lookups/transforms after it


class _Checker:
    """Checks lookup paths and values against a registry."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    # --- querysets that load the allowlisted columns only ---------------------------------

    def queryset(self, spec: ModelSpec) -> models.QuerySet:
        return self.restrict(spec, spec.model._default_manager.all())

    def restrict(self, spec: ModelSpec, qs: models.QuerySet) -> models.QuerySet:
        columns = spec.concrete_columns()
        if len(columns) < len(spec.model._meta.concrete_fields):
            # The database (SQLite authorizer / PostgreSQL column privileges) refuses the
            # other columns, and a row loaded this way saves only what it loaded.
            return qs.only(*columns)
        return qs

    # --- paths ----------------------------------------------------------------------------

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

    def resolve(self, spec: ModelSpec, path: Any, *, lookups: bool) -> _Resolved:
        """Follow a ``field__related__lookup`` path; refuse one that leaves the allowlist."""
        path = _exact_str(path, "a field path")
        if not path or path.startswith("_") or "___" in path or path.endswith("_"):
            raise SandboxViolation(f"invalid field path {path!r}")
        parts = path.split("__")
        current = spec
        field: Any = None
        for index, part in enumerate(parts):
            if index > 0 and lookups and part in ALLOWED_LOOKUPS and not _has_field(current, part):
                rest = tuple(parts[index:])
                if all(p in ALLOWED_LOOKUPS for p in rest):
                    return _Resolved(field, current, rest)
                raise SandboxViolation(f"lookup {path!r} is not allowed in snippets")
            field = self.field(current, part)
            if field.is_relation:
                current = self.related_spec(current, field, part)
            elif index < len(parts) - 1:
                # Only lookups may follow a plain field.
                rest = tuple(parts[index + 1 :])
                if lookups and all(p in ALLOWED_LOOKUPS for p in rest):
                    return _Resolved(field, current, rest)
                raise SandboxViolation(f"lookup {path!r} is not allowed in snippets")
        return _Resolved(field, current, ())

    def path(self, spec: ModelSpec, path: Any, *, lookups: bool) -> None:
        self.resolve(spec, path, lookups=lookups)

    # --- values going in ------------------------------------------------------------------

    def related_value(self, target: ModelSpec, value: Any, name: str) -> Any:
        """A relation's value: a proxy of the related model (or a plain key)."""
        if type(value) is InstanceProxy:
            if value._spec.model is not target.model:
                raise TypeError(f"{name} must be a {target.name} object")
            return value._obj
        return self.plain(value, name)

    def plain(self, value: Any, name: str) -> Any:
        try:
            return vetting.plain_copy(value)
        except TypeError as exc:
            raise TypeError(f"{name}: {exc}") from None

    def lookup_value(self, spec: ModelSpec, key: str, value: Any) -> Any:
        """The value of one ``filter(key=value)`` lookup, checked for what ``key`` expects."""
        resolved = self.resolve(spec, key, lookups=True)
        last = resolved.lookups[-1] if resolved.lookups else "exact"
        relation = resolved.field is not None and resolved.field.is_relation
        transformed = len(resolved.lookups) > 1 or (
            resolved.lookups and last not in ("exact", "in", "isnull", "range")
        )

        def one(item: Any) -> Any:
            if relation and not transformed:
                return self.related_value(resolved.spec, item, key)
            return self.plain(item, key)

        if last == "isnull":
            if type(value) is not bool:
                raise TypeError(f"{key} takes True or False")
            return value
        if last == "in":
            if type(value) is QuerySetProxy:
                # Rows of the related model for a relation; plain values() rows otherwise.
                if value._plain if relation else not value._plain:
                    raise TypeError(f"{key} takes a list or a values_list() query here")
                if relation and value._spec.model is not resolved.spec.model:
                    raise TypeError(f"{key} takes {resolved.spec.name} objects")
                return value._qs
            if type(value) not in (list, tuple, set, frozenset):
                raise TypeError(f"{key} takes a list, a tuple or a set")
            return [one(item) for item in value]
        if last == "range":
            if type(value) not in (list, tuple) or len(value) != 2:
                raise TypeError(f"{key} takes a (low, high) pair")
            return tuple(one(item) for item in value)
        return one(value)

    def q(self, spec: ModelSpec, q: models.Q) -> models.Q:
        """A copy of ``q`` whose every leaf lookup and value passed the checks."""
        clean = models.Q()
        clean.connector, clean.negated = q.connector, q.negated
        for child in q.children:
            if type(child) is models.Q:
                clean.children.append(self.q(spec, child))
            else:
                key, value = child
                clean.children.append((key, self.lookup_value(spec, key, value)))
        return clean

    def kwargs(self, spec: ModelSpec, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            _exact_str(key, "a lookup"): self.lookup_value(spec, key, v)
            for key, v in kwargs.items()
        }

    def writable(self, spec: ModelSpec, kwargs: dict[str, Any]) -> dict[str, Any]:
        if spec.read_only:
            raise SandboxViolation(f"{spec.name} is read-only in snippets")
        clean = {}
        for key, value in kwargs.items():
            key = _exact_str(key, "a field name")
            field = self.field(spec, key)
            if field.primary_key or not getattr(field, "concrete", False):
                raise SandboxViolation(f"{spec.name}.{key} cannot be set by snippets")
            name = f"{spec.name}.{key}"
            if field.is_relation:
                if value is not None and type(value) is not InstanceProxy:
                    raise TypeError(f"{name} must be set to a {field.name} object")
                clean[key] = (
                    None
                    if value is None
                    else self.related_value(self.related_spec(spec, field, key), value, name)
                )
            else:
                clean[key] = self.plain(value, name)
        return clean


def _firewalled(cls: type) -> type:
    return vetting.register_proxy(firewall_class(cls))


@_firewalled
class GuardedIterator:
    """Iteration over a queryset: each item made safe (proxy or plain) as it is produced."""

    __slots__ = ("_iterator", "_make")

    def __init__(self, iterator: Iterator[Any], make: Callable[[Any], Any]) -> None:
        self._iterator = iterator
        self._make = make

    def __iter__(self) -> GuardedIterator:
        return self

    def __next__(self) -> Any:
        return self._make(next(self._iterator))

    def __sandbox_getattr__(self, name: str) -> Any:
        raise SandboxViolation(f"{name!r} is not available on an iterator")

    def __repr__(self) -> str:
        return "<iterator>"


@_firewalled
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
            return plain_out(obj, f"a {self._spec.name} row")
        return InstanceProxy(self._spec, obj, self._checker)

    def _q_args(self, args: tuple[Any, ...]) -> list[models.Q]:
        return [self._checker.q(self._spec, require_q(arg)._q) for arg in args]

    # chainable
    def all(self) -> QuerySetProxy:
        return self._wrap(self._qs.all())

    def filter(self, *args: Any, **kwargs: Any) -> QuerySetProxy:
        q_args = self._q_args(args)
        return self._wrap(self._qs.filter(*q_args, **self._checker.kwargs(self._spec, kwargs)))

    def exclude(self, *args: Any, **kwargs: Any) -> QuerySetProxy:
        q_args = self._q_args(args)
        return self._wrap(self._qs.exclude(*q_args, **self._checker.kwargs(self._spec, kwargs)))

    def order_by(self, *fields: Any) -> QuerySetProxy:
        for field in fields:
            field = _exact_str(field, "an order_by() field")
            if field != "?":
                self._checker.path(self._spec, field.removeprefix("-"), lookups=False)
        return self._wrap(self._qs.order_by(*fields))

    def distinct(self) -> QuerySetProxy:
        return self._wrap(self._qs.distinct())

    def reverse(self) -> QuerySetProxy:
        return self._wrap(self._qs.reverse())

    def none(self) -> QuerySetProxy:
        return self._wrap(self._qs.none())

    def _value_fields(self, fields: tuple[Any, ...]) -> tuple[str, ...]:
        if not fields:
            # values() with no names would include every column: list the allowed ones.
            concrete = self._spec.model._meta.concrete_fields
            return tuple(
                f.attname if f.is_relation else f.name
                for f in concrete
                if f.name in self._spec.fields
            )
        for field in fields:
            self._checker.path(self._spec, field, lookups=True)
        return tuple(fields)

    def values(self, *fields: Any) -> QuerySetProxy:
        return self._wrap(self._qs.values(*self._value_fields(fields)), plain=True)

    def values_list(self, *fields: Any, flat: Any = False) -> QuerySetProxy:
        names = self._value_fields(fields)
        return self._wrap(self._qs.values_list(*names, flat=bool(flat)), plain=True)

    # terminal
    def get(self, *args: Any, **kwargs: Any) -> Any:
        q_args = self._q_args(args)
        return self._instance(self._qs.get(*q_args, **self._checker.kwargs(self._spec, kwargs)))

    def first(self) -> Any:
        obj = self._qs.first()
        return None if obj is None else self._instance(obj)

    def last(self) -> Any:
        obj = self._qs.last()
        return None if obj is None else self._instance(obj)

    def count(self) -> int:
        return plain_out(self._qs.count(), "count()")

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        named = aggregate_kwargs(self._checker, self._spec, args, kwargs)
        return plain_out(self._qs.aggregate(**named), "aggregate()")

    def annotate(self, *args: Any, **kwargs: Any) -> QuerySetProxy:
        # Only on values()/values_list() rows, where the result is plain data: model objects
        # with extra attributes would step outside the field allowlist.
        if not self._plain:
            raise SandboxViolation("annotate() is available after values() only")
        named = aggregate_kwargs(self._checker, self._spec, args, kwargs)
        return self._wrap(self._qs.annotate(**named))

    def exists(self) -> bool:
        return plain_out(self._qs.exists(), "exists()")

    def update(self, **kwargs: Any) -> int:
        return plain_out(self._qs.update(**self._checker.writable(self._spec, kwargs)), "update()")

    def delete(self) -> tuple[int, dict[str, int]]:
        if self._spec.read_only:
            raise SandboxViolation(f"{self._spec.name} is read-only in snippets")
        if self._plain:
            raise SandboxViolation("delete() is not available after values()")
        return plain_out(self._qs.delete(), "delete()")

    def create(self, **kwargs: Any) -> InstanceProxy:
        values = self._checker.writable(self._spec, kwargs)
        obj = self._spec.model._default_manager.create(**values)
        return InstanceProxy(self._spec, obj, self._checker)

    def get_or_create(self, defaults: Any = None, **kwargs: Any) -> tuple[Any, bool]:
        if self._spec.read_only:
            raise SandboxViolation(f"{self._spec.name} is read-only in snippets")
        if defaults is not None and type(defaults) is not dict:
            raise TypeError("defaults must be a dict")
        # Lookups without "__" become field values of a created row: the write rules apply.
        direct = {k: v for k, v in kwargs.items() if "__" not in _exact_str(k, "a lookup")}
        self._checker.writable(self._spec, direct)
        lookup = self._checker.kwargs(self._spec, kwargs)
        clean_defaults = self._checker.writable(self._spec, dict(defaults or {}))
        obj, created = self._qs.get_or_create(defaults=clean_defaults, **lookup)
        return InstanceProxy(self._spec, obj, self._checker), bool(created)

    # Python protocols
    def __iter__(self) -> GuardedIterator:
        return GuardedIterator(iter(self._qs), self._instance)

    def __len__(self) -> int:
        return len(self._qs)

    def __bool__(self) -> bool:
        return self._qs.exists() if self._qs._result_cache is None else bool(self._qs)

    def __getitem__(self, key: Any) -> Any:
        if type(key) is slice:
            for part in (key.start, key.stop, key.step):
                if part is not None and type(part) is not int:
                    raise TypeError("querysets are sliced by plain integers")
            return self._wrap(self._qs[key])
        if type(key) is int:
            return self._instance(self._qs[key])
        raise TypeError("querysets are indexed by integers or slices")

    def __repr__(self) -> str:
        return f"<{self._spec.name} query>"


@_firewalled
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


@_firewalled
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
            return plain_out(obj.pk, f"{spec.name}.pk")
        if name in ("save", "delete", "refresh_from_db"):
            if spec.read_only and name != "refresh_from_db":
                raise SandboxViolation(f"{spec.name} is read-only in snippets")
            return SafeCall(getattr(self, f"_{name}"))
        if name.startswith("get_") and name.endswith("_display"):
            field_name = name[4:-8]
            if field_name in spec.fields and spec.model._meta.get_field(field_name).choices:
                # Django's bound helper is a functools.partial whose .keywords hold the real
                # field (and through it the model): hand out a plain call instead.
                return SafeCall(lambda: plain_out(str(getattr(obj, name)()), name))
        if name.endswith("_id") and name[:-3] in spec.fields:
            field = self._checker.field(spec, name[:-3])
            if field.many_to_one or field.one_to_one:
                return plain_out(getattr(obj, field.attname), f"{spec.name}.{name}")
        field = self._checker.field(spec, name)
        where = f"{spec.name}.{name}"
        if not field.is_relation:
            value = obj.__dict__.get(field.attname, _MISSING)
            if value is _MISSING:  # deferred: an allowlisted column loads on first read
                value = getattr(obj, field.attname)
            return plain_out(value, where)
        target = self._checker.related_spec(spec, field, name)
        related_qs = self._checker.queryset(target)
        if field.many_to_one or (field.one_to_one and field.concrete):
            key = getattr(obj, field.attname)
            if key is None:
                return None
            # Loaded through the restricted queryset, not Django's descriptor, which would
            # read every column of the related row.
            return InstanceProxy(
                target, related_qs.get(**{field.target_field.attname: key}), self._checker
            )
        if field.one_to_one:
            related = related_qs.filter(**{field.field.name: obj.pk}).first()
            return None if related is None else InstanceProxy(target, related, self._checker)
        manager = getattr(obj, field.get_accessor_name() if field.auto_created else name)
        return QuerySetProxy(target, self._checker.restrict(target, manager.all()), self._checker)

    def __guarded_setattr__(self, name: str, value: Any) -> None:
        clean = self._checker.writable(self._spec, {name: value})
        setattr(self._obj, name, clean[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise SandboxViolation("model objects are changed through attribute assignment only")

    def _save(self) -> None:
        self._obj.save()

    def _delete(self) -> tuple[int, dict[str, int]]:
        return plain_out(self._obj.delete(), "delete()")

    def _refresh_from_db(self) -> None:
        self._obj.refresh_from_db()

    def __str__(self) -> str:
        return "" + str(self._obj)

    def __repr__(self) -> str:
        return f"<{self._spec.name}: {self}>"

    def __eq__(self, other: object) -> bool:
        if type(other) is InstanceProxy:
            return self._obj == other._obj
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._obj)


class _Missing:
    """Marks a field whose value the row did not load."""


_MISSING = _Missing()


@_firewalled
class ModelProxy:
    """What a snippet sees as ``Ticket``: ``objects``, ``DoesNotExist``, choices enums."""

    __slots__ = ("_checker", "_errors", "_spec")

    def __init__(self, spec: ModelSpec, checker: _Checker) -> None:
        self._spec = spec
        self._checker = checker
        does_not_exist, multiple = model_exceptions(spec.name, spec.model)
        self._errors = {"DoesNotExist": does_not_exist, "MultipleObjectsReturned": multiple}

    def __sandbox_getattr__(self, name: str) -> Any:
        model = self._spec.model
        if name == "objects":
            return QuerySetProxy(self._spec, self._checker.queryset(self._spec), self._checker)
        if name in self._errors:
            return self._errors[name]
        value = model.__dict__.get(name)
        if isinstance(value, type) and issubclass(value, models.Choices):
            return vetting.register_choices(value)
        raise SandboxViolation(f"{self._spec.name}.{name} is not available in snippets")

    def __call__(self, **kwargs: Any) -> InstanceProxy:
        obj = self._spec.model(**self._checker.writable(self._spec, kwargs))
        return InstanceProxy(self._spec, obj, self._checker)

    def __repr__(self) -> str:
        return f"<model {self._spec.name}>"


def model_proxies(registry: ModelRegistry) -> dict[str, ModelProxy]:
    checker = _Checker(registry)
    return {spec.name: ModelProxy(spec, checker) for spec in registry}
