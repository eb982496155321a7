"""The model proxies answer as Django does.

For every method on the allowlist, the same call runs on the proxy (as a snippet's code would
make it) and on the plain model, each from the same database state (a savepoint rolled back
in between); the results must have the corresponding type and the same value.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import models, transaction

from scheduled_tasks import conf
from scheduled_tasks.sandbox import expressions
from scheduled_tasks.sandbox.namespace import build_namespace
from scheduled_tasks.sandbox.orm import _QUERYSET_METHODS, InstanceProxy, QuerySetProxy
from scheduled_tasks.sandbox.policy import guarded_getattr
from ticketproo.crm.models import Company, Contact, Ticket

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def ns() -> dict[str, Any]:
    names, _ = build_namespace(conf.get("NAMESPACE"), sink=lambda text: None)
    return names


@pytest.fixture
def rows(db) -> None:
    acme = Company.objects.create(name="Acme")
    globex = Company.objects.create(name="Globex", is_active=False)
    ada = Contact.objects.create(company=acme, name="Ada")
    Ticket.objects.create(title="one", company=acme, contact=ada, status="open")
    Ticket.objects.create(title="two", company=acme, status="resolved", resolved_at=T0)
    Ticket.objects.create(title="three", company=globex, status="closed")


def normal(value: Any) -> Any:
    """A comparable form: rows by (label, pk), querysets as lists, containers item by item."""
    if isinstance(value, InstanceProxy):
        return ("row", value._spec.model._meta.label, value._obj.pk)
    if isinstance(value, models.Model):
        return ("row", value._meta.label, value.pk)
    if isinstance(value, QuerySetProxy):
        return ("query", [normal(item) for item in value])
    if isinstance(value, models.QuerySet):
        return ("query", [normal(item) for item in value])
    if isinstance(value, tuple):
        return ("tuple", tuple(normal(item) for item in value))
    if isinstance(value, list):
        return ("list", [normal(item) for item in value])
    if isinstance(value, dict):
        return ("dict", {key: normal(item) for key, item in value.items()})
    return (type(value).__name__, value)


def outcome(call: Any) -> Any:
    """What a call returned (normalised) or raised (its class name), then rolled back."""
    try:
        with transaction.atomic():
            result = normal(call())
            transaction.set_rollback(True)
            return result
    except Exception as exc:
        return ("raised", type(exc).__name__)


def both(ns: dict[str, Any], model: type[models.Model], name: str, chain: Any) -> None:
    proxy_manager = guarded_getattr(ns[name], "objects")
    mine = outcome(lambda: chain(proxy_manager, "sandbox"))
    django = outcome(lambda: chain(model.objects, "django"))
    assert mine == django


def q(kind: str, **lookups: Any) -> Any:
    return expressions.Q(**lookups) if kind == "sandbox" else models.Q(**lookups)


def agg(kind: str, name: str, field: str) -> Any:
    return getattr(expressions if kind == "sandbox" else models, name)(field)


def fields_of(row: Any) -> tuple[Any, ...]:
    real = row._obj if isinstance(row, InstanceProxy) else row
    return (type(row).__name__ in ("InstanceProxy", "Ticket"), real.title, real.status)


def acme(kind: str) -> Any:
    return Company.objects.get(name="Acme") if kind == "django" else ACME[0]


ACME: list[Any] = []

CALLS: dict[str, list[Any]] = {
    "all": [lambda m, k: m.all()],
    "filter": [
        lambda m, k: m.filter(status="open"),
        lambda m, k: m.filter(q(k, status="open") | q(k, title="two")),
        lambda m, k: m.filter(company__name="Acme", resolved_at__isnull=True),
        lambda m, k: m.filter(company=acme(k)),
    ],
    "exclude": [lambda m, k: m.exclude(status="open")],
    "order_by": [lambda m, k: m.order_by("title"), lambda m, k: m.order_by("-company__name")],
    "distinct": [lambda m, k: m.values("company").distinct()],
    "reverse": [lambda m, k: m.order_by("title").reverse()],
    "none": [lambda m, k: m.none()],
    "get": [
        lambda m, k: m.get(title="one"),
        lambda m, k: m.get(title="missing"),
        lambda m, k: m.get(company__name="Acme"),
    ],
    "first": [lambda m, k: m.order_by("title").first(), lambda m, k: m.none().first()],
    "last": [lambda m, k: m.order_by("title").last()],
    "count": [lambda m, k: m.count(), lambda m, k: m.filter(status="closed").count()],
    "exists": [lambda m, k: m.filter(status="open").exists(), lambda m, k: m.none().exists()],
    "values": [
        lambda m, k: m.order_by("title").values("title", "status"),
        lambda m, k: m.order_by("title").values("company__name"),
    ],
    "values_list": [
        lambda m, k: m.order_by("title").values_list("title", flat=True),
        lambda m, k: m.order_by("title").values_list("title", "status"),
    ],
    "update": [lambda m, k: m.filter(status="open").update(status="closed")],
    "delete": [lambda m, k: m.filter(status="closed").delete(), lambda m, k: m.none().delete()],
    # New rows are compared by their fields: PostgreSQL does not roll back its sequences.
    "create": [lambda m, k: fields_of(m.create(title="four", company=acme(k), status="open"))],
    "get_or_create": [
        lambda m, k: m.get_or_create(title="one"),
        lambda m, k: (lambda row, created: (fields_of(row), created))(
            *m.get_or_create(title="five", defaults={"description": "new"})
        ),
    ],
    "aggregate": [
        lambda m, k: m.aggregate(agg(k, "Count", "id")),
        lambda m, k: m.aggregate(n=agg(k, "Count", "id"), first=agg(k, "Min", "title")),
    ],
    "annotate": [
        lambda m, k: m.values("status").order_by("status").annotate(n=agg(k, "Count", "id")),
    ],
}


def test_every_allowlisted_method_has_a_parity_case():
    assert set(CALLS) == set(_QUERYSET_METHODS)


@pytest.mark.parametrize(
    "method,index",
    [(method, i) for method in sorted(CALLS) for i in range(len(CALLS[method]))],
)
def test_the_proxy_answers_as_django_does(ns, rows, method, index):
    ACME[:] = [guarded_getattr(ns["Company"], "objects").get(name="Acme")]
    both(ns, Ticket, "Ticket", CALLS[method][index])


@pytest.mark.parametrize(
    "name,model",
    [("Company", Company), ("Contact", Contact)],
)
def test_other_models_answer_as_django_does(ns, rows, name, model):
    for chain in (
        lambda m, k: m.order_by("name").values_list("name", flat=True),
        lambda m, k: m.order_by("name").first(),
        lambda m, k: m.count(),
        lambda m, k: m.filter(name="Acme").delete(),
    ):
        both(ns, model, name, chain)


def test_instance_methods_answer_as_django_does(ns, rows):
    proxy = guarded_getattr(ns["Ticket"], "objects").get(title="two")
    real = Ticket.objects.get(title="two")
    for field in ("title", "status", "resolved_at", "company_id", "pk"):
        assert guarded_getattr(proxy, field) == getattr(real, field)
    assert guarded_getattr(proxy, "get_status_display")() == real.get_status_display()
    assert normal(guarded_getattr(proxy, "company")) == normal(real.company)
    assert outcome(lambda: guarded_getattr(proxy, "delete")()) == outcome(real.delete)
