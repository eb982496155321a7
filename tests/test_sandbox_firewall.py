"""The exception firewall and default-deny access, tested in-process against the proxies.

The black-box suites (test_sandbox_*_attacks.py) run snippets; here we call the proxies the way
a snippet's code would and look at the objects themselves: every value a proxy returns is a
proxy or an exact plain value, and every exception it raises is a fresh, vetted one carrying
strings only, with no ``__cause__`` or ``__context__`` leading back to Django.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections import namedtuple
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import exceptions as dj_exceptions
from django.db import connection, transaction
from django.db import utils as db_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduled_tasks import conf
from scheduled_tasks.sandbox import errors, vetting
from scheduled_tasks.sandbox.errors import SandboxViolation, translate
from scheduled_tasks.sandbox.namespace import build_namespace
from scheduled_tasks.sandbox.orm import _QUERYSET_METHODS, InstanceProxy, QuerySetProxy
from scheduled_tasks.sandbox.policy import (
    guarded_getattr,
    guarded_getitem,
    guarded_getiter,
    guarded_write,
)
from ticketproo.crm.models import Company, Contact, Ticket

pytestmark = pytest.mark.django_db


def assert_vetted_exception(exc: BaseException) -> None:
    assert vetting.is_vetted_exception(exc), type(exc)
    assert exc.__cause__ is None
    assert exc.__context__ is None
    assert all(type(a) in (str, int) for a in exc.args), exc.args
    for name, value in vars(exc).items():
        assert vetting.is_vetted_value(value), (name, type(value))


def assert_vetted_result(value: Any) -> None:
    assert vetting.is_vetted_value(value) or vetting.is_proxy(value), type(value)
    if type(value) in (list, tuple):
        for item in value:
            assert_vetted_result(item)


def call(func: Any, *args: Any, **kwargs: Any) -> Any:
    """Call like a snippet; check what comes back, returned or raised."""
    try:
        with transaction.atomic():  # a failed statement must not spoil the next call
            result = func(*args, **kwargs)
    except MemoryError:
        raise
    except BaseException as exc:
        assert_vetted_exception(exc)
        return exc
    assert_vetted_result(result)
    return result


@pytest.fixture
def ns() -> dict[str, Any]:
    sink: list[str] = []
    names, _ = build_namespace(conf.get("NAMESPACE"), sink=sink.append)
    return names


@pytest.fixture
def rows(db) -> dict[str, Any]:
    root = User.objects.create_superuser("root", "root@example.com", "root-pw")
    acme = Company.objects.create(name="Acme")
    ada = Contact.objects.create(name="Ada", company=acme)
    Ticket.objects.create(title="one", company=acme, contact=ada, assignee=root)
    Ticket.objects.create(title="two", company=acme)
    return {"root": root, "acme": acme}


def objects(ns: dict[str, Any], name: str) -> QuerySetProxy:
    return guarded_getattr(ns[name], "objects")


# --- the incident ------------------------------------------------------------------------------


def test_the_validation_error_of_the_incident_holds_strings_only(ns, rows):
    user = guarded_getattr(objects(ns, "User"), "first")()
    companies = objects(ns, "Company")
    with pytest.raises(TypeError) as caught:
        companies.filter(is_active=user).count()
    assert_vetted_exception(caught.value)
    # A value Django itself rejects comes back as the sandbox's ValidationError.
    with pytest.raises(errors.ValidationError) as caught:
        companies.filter(is_active="maybe").count()
    exc = caught.value
    assert_vetted_exception(exc)
    assert not hasattr(exc, "params") and not hasattr(exc, "error_list")
    assert exc.messages == ["“maybe” value must be either True or False."]


@pytest.mark.parametrize(
    "raised",
    [
        dj_exceptions.ValidationError("%(value)s bad", params={"value": object()}),
        dj_exceptions.ValidationError({"title": ["too long"], "status": ["bad"]}),
        dj_exceptions.ValidationError([dj_exceptions.ValidationError("a"), "b"]),
        dj_exceptions.FieldError("no field"),
        dj_exceptions.FieldDoesNotExist("no field"),
        dj_exceptions.ObjectDoesNotExist("none"),
        dj_exceptions.MultipleObjectsReturned("many"),
        db_utils.IntegrityError("UNIQUE constraint failed", object()),
        db_utils.OperationalError("locked"),
        db_utils.DataError("too long"),
        db_utils.ProgrammingError("syntax"),
        db_utils.DatabaseError("db"),
        Ticket.DoesNotExist("Ticket matching query does not exist."),
        User.MultipleObjectsReturned("many users"),
        ValueError(object(), [object()]),
        TypeError("bad type"),
        KeyError(object()),
        KeyError("name"),
        IndexError("out of range"),
        AttributeError("attr", name="x", obj=object()),
        RecursionError("deep"),
        SystemExit(object()),
        KeyboardInterrupt(),
        OSError(13, "denied", "/etc/passwd"),
        Exception(object()),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_exception_comes_back_fresh_and_plain(raised, ns):
    # Build the translation tables for the model proxies, as a run does.
    assert ns["Ticket"] is not None

    def inner() -> None:
        try:
            raise RuntimeError("the original's own context")
        except RuntimeError:
            raise raised from ValueError("cause")

    with pytest.raises(BaseException) as caught:
        errors.firewall(inner)()
    exc = caught.value
    assert exc is not raised
    assert_vetted_exception(exc)
    assert exc.__traceback__ is None or all(
        frame.f_code.co_name in ("guarded", "test_every_exception_comes_back_fresh_and_plain")
        for frame, _ in __import__("traceback").walk_tb(exc.__traceback__)
    )


def test_model_errors_keep_their_meaning(ns, rows):
    tickets = objects(ns, "Ticket")
    does_not_exist = guarded_getattr(ns["Ticket"], "DoesNotExist")
    with pytest.raises(does_not_exist) as caught:
        tickets.get(title="nope")
    assert isinstance(caught.value, errors.ObjectDoesNotExist)
    assert_vetted_exception(caught.value)
    multiple = guarded_getattr(ns["Ticket"], "MultipleObjectsReturned")
    with pytest.raises(multiple):
        tickets.get(company__name="Acme")
    with pytest.raises(errors.IntegrityError):
        objects(ns, "Company").create(name="Acme")
    with pytest.raises(SandboxViolation):
        tickets.filter(nonexistent=1)


def test_translate_keeps_a_validation_errors_messages_by_field():
    exc = translate(dj_exceptions.ValidationError({"title": ["too long"]}))
    assert type(exc) is errors.ValidationError
    assert exc.message_dict == {"title": ["too long"]}
    assert exc.messages == ["too long"]


# --- default deny ----------------------------------------------------------------------------


def raw_objects(rows: dict[str, Any]) -> list[Any]:
    return [
        rows["root"],
        Ticket.objects.all(),
        Ticket.objects,
        Ticket,
        Ticket._meta,
        connection,
        dj_exceptions.ValidationError("x", params={"value": rows["root"]}),
        type("Str", (str,), {})("subclass"),
        namedtuple("Row", "a")(1),  # made outside the snippet
        object(),
        len,
    ]


def test_raw_objects_refuse_every_attribute_item_iteration_and_write(rows):
    for raw in raw_objects(rows):
        for name in ("password", "objects", "query", "connection", "params", "args", "a"):
            with pytest.raises(SandboxViolation):
                guarded_getattr(raw, name)
        with pytest.raises(SandboxViolation):
            guarded_getitem(raw, 0)
        with pytest.raises(SandboxViolation):
            guarded_getiter(raw)
        with pytest.raises(SandboxViolation):
            guarded_write(raw)


def test_vetted_objects_keep_working():
    assert guarded_getattr("abc", "upper")() == "ABC"
    assert guarded_getattr(dt.datetime(2024, 1, 2), "year") == 2024
    assert guarded_getattr(dt.datetime, "fromisoformat")("2024-01-02").day == 2
    assert guarded_getattr(decimal.Decimal("1.5"), "quantize")
    assert guarded_getitem({"a": 1}, "a") == 1
    assert list(guarded_getiter(enumerate([1]))) == [(0, 1)]
    assert guarded_write([]) == []
    assert guarded_getattr(ValueError("x"), "args") == ("x",)


# --- every allowlisted method, walked --------------------------------------------------------

ARGUMENTS: dict[str, list[tuple[tuple[Any, ...], dict[str, Any]]]] = {
    "all": [((), {})],
    "filter": [((), {"title": "one"}), ((), {"company__name__icontains": "ac"})],
    "exclude": [((), {"title": "one"})],
    "order_by": [(("-title",), {}), (("company__name",), {})],
    "distinct": [((), {})],
    "reverse": [((), {})],
    "none": [((), {})],
    "get": [((), {"title": "one"}), ((), {"title": "missing"}), ((), {"company__name": "Acme"})],
    "first": [((), {})],
    "last": [((), {})],
    "count": [((), {})],
    "exists": [((), {})],
    "values": [((), {}), (("title", "company__name"), {})],
    "values_list": [(("title",), {"flat": True}), ((), {})],
    "update": [((), {"status": "open"}), ((), {"title": None})],
    "delete": [((), {})],
    "create": [((), {"title": "new", "company": None}), ((), {"title": None})],
    "get_or_create": [((), {"title": "one"}), ((), {"title": "three", "defaults": {}})],
    "aggregate": [((), {})],
    "annotate": [((), {})],
}


def test_every_allowlisted_method_returns_proxies_or_plain_values(ns, rows):
    assert set(ARGUMENTS) == set(_QUERYSET_METHODS)
    for model in ("Ticket", "Company", "Contact", "User"):
        for method in sorted(_QUERYSET_METHODS):
            for args, kwargs in ARGUMENTS[method]:
                manager = objects(ns, model)
                result = call(guarded_getattr(manager, method), *args, **kwargs)
                if type(result) is QuerySetProxy:
                    items = call(list, result)
                    assert not isinstance(items, BaseException), (model, method, items)
                if type(result) is InstanceProxy:
                    for field in sorted(result._spec.fields):
                        call(guarded_getattr, result, field)
                for values in (call(guarded_getattr(manager, "values")),):
                    call(list, values)


# --- property: random argument trees ---------------------------------------------------------


class Probe:
    """A duck-typed value: records every call Django makes on it."""

    calls: list[str] = []  # shared on purpose: any call is a failure

    def __getattr__(self, name: str) -> Any:
        def hook(*args: Any, **kwargs: Any) -> Any:
            Probe.calls.append(name)
            return self

        if name.startswith("__"):
            raise AttributeError(name)
        return hook

    def __eq__(self, other: object) -> bool:
        Probe.calls.append("__eq__")
        return False

    def __hash__(self) -> int:
        Probe.calls.append("__hash__")
        return 1

    def __str__(self) -> str:
        Probe.calls.append("__str__")
        return "probe"


class Text(str):
    def resolve_expression(self, *args: Any, **kwargs: Any) -> Any:
        Probe.calls.append("Text.resolve_expression")
        return self


class Pair(tuple):
    __slots__ = ()

    def as_sql(self, *args: Any, **kwargs: Any) -> Any:
        Probe.calls.append("Pair.as_sql")
        return ("1=1", [])


class Number(int):
    def __index__(self) -> int:
        Probe.calls.append("Number.__index__")
        return 1


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**31), max_value=2**31),
    st.text(max_size=8),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, max_value=10**6, min_value=-1),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.builds(Probe),
    st.builds(Text, st.text(max_size=4)),
    st.builds(Number, st.integers(0, 3)),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.builds(Pair, st.lists(children, max_size=2)),
        st.dictionaries(st.text(max_size=4), children, max_size=2),
    ),
    max_leaves=6,
)
KEYS = [
    "title", "status", "company", "company__in", "company__name", "id__in", "created_at__year",
    "title__icontains", "resolved_at__range", "assignee", "assignee__username", "pk", "id",
    "description", "contact__isnull", "name", "is_active", "username", "email",
]  # fmt: skip


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    model=st.sampled_from(["Ticket", "Company", "Contact", "User"]),
    method=st.sampled_from(sorted(_QUERYSET_METHODS)),
    args=st.lists(trees, max_size=2),
    kwargs=st.dictionaries(st.sampled_from(KEYS), trees, max_size=3),
    proxy_args=st.booleans(),
)
def test_nothing_unvetted_comes_back_and_no_snippet_object_is_called(
    ns, rows, model, method, args, kwargs, proxy_args
):
    Probe.calls = []
    if proxy_args:
        kwargs = {**kwargs, "company": objects(ns, "Company").first()}
    manager = objects(ns, model)
    result = call(guarded_getattr(manager, method), *args, **kwargs)
    if type(result) is QuerySetProxy:
        call(list, result)
    assert Probe.calls == [], f"the sandbox called a snippet object: {Probe.calls}"
