"""The help panel of the task form: each name a snippet sees, what it is, a one-line example.

Built from the ``NAMESPACE`` setting plus ``logger`` and ``print``. Known names get the words
below; a name a project adds without an entry here gets a generic line from its model (fields,
read-only or not) or from the object's docstring, so the panel never leaves a name out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string

from scheduled_tasks import conf
from scheduled_tasks.sandbox.orm import ModelSpec, build_registry

# name -> (what it is, a one-line example). Names missing here are described generically.
DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "print": (
        "Writes a line to the run's output, kept with the execution.",
        'print(f"{count} tickets closed")',
    ),
    "logger": (
        "The run's logger: debug, info, warning, error; lines are kept with the execution "
        "and written to the scheduler's log file.",
        'logger.warning("%s tickets overdue", overdue)',
    ),
    "timezone": (
        "Django's time-zone helpers: now(), localtime(), localdate(), make_aware(), "
        "make_naive(), plus timedelta and utc.",
        "today = timezone.localdate()",
    ),
    "datetime": (
        "The datetime class from the standard library.",
        "start = datetime(2025, 1, 1, tzinfo=timezone.utc)",
    ),
    "timedelta": (
        "A duration, for date arithmetic.",
        "week_ago = timezone.now() - timedelta(days=7)",
    ),
    "User": (
        "The site's user accounts, read-only (id, username, names, email, is_active, "
        "is_staff, date_joined).",
        "staff = User.objects.filter(is_staff=True, is_active=True).count()",
    ),
    "Ticket": (
        "Support tickets of the CRM: title, status (open, in_progress, resolved, closed), "
        "company, contact, dates.",
        'open_tickets = Ticket.objects.filter(status="open").count()',
    ),
    "Contact": (
        "People at customer companies: name, email, phone, company.",
        'Contact.objects.filter(email="").count()',
    ),
    "Company": (
        "Customer companies: name, website, is_active, contract_ends_on.",
        "Company.objects.filter(contract_ends_on__lt=timezone.localdate())",
    ),
    "Q": (
        "Combines query conditions with | (or), & (and) and ~ (not).",
        'Ticket.objects.filter(Q(status="open") | Q(status="in_progress"))',
    ),
    "Count": (
        "An aggregate: how many rows, per group after values().",
        'Ticket.objects.values("status").annotate(n=Count("id"))',
    ),
    # The CRM's tables hold no number but their ids: the examples sum and average those, so
    # that every example here runs as written (tests/test_code_editor.py runs them).
    "Sum": (
        "An aggregate: the sum of a numeric field.",
        'Ticket.objects.filter(status="open").aggregate(total=Sum("id"))',
    ),
    "Avg": (
        "An aggregate: the average of a numeric field.",
        'Ticket.objects.aggregate(mean=Avg("id"))',
    ),
    "Min": (
        "An aggregate: the smallest value of a field.",
        'Ticket.objects.aggregate(first=Min("created_at"))',
    ),
    "Max": (
        "An aggregate: the largest value of a field.",
        'Ticket.objects.aggregate(last=Max("created_at"))',
    ),
}


@dataclass(frozen=True)
class NameHelp:
    """One line of the help panel."""

    name: str
    description: str
    example: str


def namespace_help(namespace: dict[str, Any] | None = None) -> list[NameHelp]:
    """Every name a snippet sees (the setting's names, ``logger`` and ``print``), sorted."""
    if namespace is None:
        namespace = conf.get("NAMESPACE")
    specs = _model_specs(namespace)
    entries = [
        _describe(name, namespace.get(name), specs.get(name))
        for name in [*namespace, "logger", "print"]
    ]
    return sorted(entries, key=lambda entry: entry.name.lower())


def _model_specs(namespace: dict[str, Any]) -> dict[str, ModelSpec]:
    model_entries = {k: v for k, v in namespace.items() if isinstance(v, dict) and "model" in v}
    try:
        registry = build_registry(model_entries)
    except (LookupError, ValueError):
        return {}  # a bad setting is reported by the system checks, not by this page
    return {spec.name: spec for spec in registry}


def _describe(name: str, entry: Any, spec: ModelSpec | None) -> NameHelp:
    known = DESCRIPTIONS.get(name)
    if known is not None:
        return NameHelp(name, *known)
    if spec is not None:
        return _model_help(name, spec)
    if isinstance(entry, dict):
        return NameHelp(name, f"The model {entry.get('model', '?')}.", f"{name}.objects.count()")
    return _object_help(name, entry)


def _model_help(name: str, spec: ModelSpec) -> NameHelp:
    verbose = str(spec.model._meta.verbose_name_plural)
    access = "read-only" if spec.read_only else "read and write"
    fields = ", ".join(sorted(spec.fields))
    what = f"{verbose[:1].upper()}{verbose[1:]} ({spec.model._meta.label}, {access})"
    return NameHelp(name, f"{what}; fields: {fields}.", f"{name}.objects.count()")


def _object_help(name: str, path: Any) -> NameHelp:
    try:
        obj = import_string(path) if isinstance(path, str) else None
    except ImportError:
        obj = None
    doc = (getattr(obj, "__doc__", None) or "").strip().split("\n", 1)[0].strip()
    if isinstance(obj, type):
        description = doc or f"The class {obj.__module__}.{obj.__qualname__}."
        example = f"value = {name}(...)"
    elif callable(obj):
        description = doc or f"The function {path}."
        example = f"result = {name}(...)"
    else:
        description = f"The object {path}."
        example = f"{name}"
    return NameHelp(name, description, example)
