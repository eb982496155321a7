"""The exception firewall: no exception object made outside the snippet ever reaches it.

Django's exceptions carry live objects (``ValidationError.params`` held a real ``User``, whose
related managers led to the database connection and a shell). Every call from a snippet into
the sandbox's proxies goes through :func:`firewall`: whatever is raised inside is replaced by a
*fresh* exception of a vetted class with the same name and meaning, carrying message strings
only, raised outside the ``except`` block so it has no ``__cause__`` or ``__context__`` either.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.core import exceptions as dj_exceptions
from django.db import utils as db_utils

from scheduled_tasks.sandbox import vetting

MAX_MESSAGE_CHARS = 2000


@vetting.register_exception
class SandboxViolation(Exception):
    """A snippet tried something the sandbox refuses; the message says what."""


@vetting.register_exception
class ObjectDoesNotExist(Exception):
    """The object asked for does not exist (base of every model's ``DoesNotExist``)."""


@vetting.register_exception
class MultipleObjectsReturned(Exception):
    """``get()`` found more than one object."""


@vetting.register_exception
class FieldError(Exception):
    """A lookup or field name the model does not have."""


@vetting.register_exception
class ValidationError(Exception):
    """A value the field does not accept. ``messages``: the messages as plain strings;
    ``message_dict``: the messages by field name, when Django gave them by field."""

    def __init__(
        self,
        message: str,
        messages: list[str] | None = None,
        message_dict: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.messages = list(messages) if messages is not None else [message]
        self.message_dict = dict(message_dict or {})


@vetting.register_exception
class DatabaseError(Exception):
    """The database refused the statement."""


def _database_error(name: str) -> type[DatabaseError]:
    return vetting.register_exception(type(name, (DatabaseError,), {"__module__": __name__}))


IntegrityError = _database_error("IntegrityError")
DataError = _database_error("DataError")
OperationalError = _database_error("OperationalError")
ProgrammingError = _database_error("ProgrammingError")
NotSupportedError = _database_error("NotSupportedError")
InternalError = _database_error("InternalError")
InterfaceError = _database_error("InterfaceError")

# The names snippets can use in ``except`` clauses (added to their namespace).
SNIPPET_EXCEPTIONS: dict[str, type[BaseException]] = {
    "SandboxViolation": SandboxViolation,
    "ObjectDoesNotExist": ObjectDoesNotExist,
    "MultipleObjectsReturned": MultipleObjectsReturned,
    "FieldError": FieldError,
    "ValidationError": ValidationError,
    "DatabaseError": DatabaseError,
    "IntegrityError": IntegrityError,
    "DataError": DataError,
    "OperationalError": OperationalError,
    "ProgrammingError": ProgrammingError,
}

# Django's class -> ours. Checked along the raised exception's MRO, most specific first.
_DJANGO_TO_SANDBOX: dict[type[BaseException], type[BaseException]] = {
    dj_exceptions.ObjectDoesNotExist: ObjectDoesNotExist,
    dj_exceptions.MultipleObjectsReturned: MultipleObjectsReturned,
    dj_exceptions.FieldError: FieldError,
    dj_exceptions.FieldDoesNotExist: FieldError,
    db_utils.IntegrityError: IntegrityError,
    db_utils.DataError: DataError,
    db_utils.OperationalError: OperationalError,
    db_utils.ProgrammingError: ProgrammingError,
    db_utils.NotSupportedError: NotSupportedError,
    db_utils.InternalError: InternalError,
    db_utils.InterfaceError: InterfaceError,
    db_utils.DatabaseError: DatabaseError,
}

# Per-model classes (``Ticket.DoesNotExist``): Django's class -> the sandbox's.
_model_errors: dict[type[BaseException], type[BaseException]] = {}


def model_exceptions(label: str, model: Any) -> tuple[type[BaseException], type[BaseException]]:
    """The sandbox's ``DoesNotExist`` / ``MultipleObjectsReturned`` of one model: made once per
    model and process, so that every namespace built here catches what the firewall raises."""
    does_not_exist = _model_errors.get(model.DoesNotExist)
    multiple = _model_errors.get(model.MultipleObjectsReturned)
    if does_not_exist is None or multiple is None:
        does_not_exist = vetting.register_exception(
            type(
                "DoesNotExist",
                (ObjectDoesNotExist,),
                {"__module__": "snippet", "__qualname__": f"{label}.DoesNotExist"},
            )
        )
        multiple = vetting.register_exception(
            type(
                "MultipleObjectsReturned",
                (MultipleObjectsReturned,),
                {"__module__": "snippet", "__qualname__": f"{label}.MultipleObjectsReturned"},
            )
        )
        _model_errors[model.DoesNotExist] = does_not_exist
        _model_errors[model.MultipleObjectsReturned] = multiple
    return does_not_exist, multiple


# Standard exceptions that come back as a fresh instance of the same builtin class.
_PASS_THROUGH_BUILTINS = frozenset(
    {
        ValueError, TypeError, KeyError, IndexError, LookupError, AttributeError,
        ArithmeticError, ZeroDivisionError, OverflowError, RecursionError, RuntimeError,
        NotImplementedError, UnicodeError, AssertionError, StopIteration, NameError,
    }
)  # fmt: skip


def _text(value: Any) -> str:
    try:
        text = str(value)
    except Exception:
        return ""
    text = "" + text  # an exact str even if __str__ returned a subclass
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + " ..."
    return text


def _validation_error(exc: dj_exceptions.ValidationError) -> ValidationError:
    try:
        messages = [_text(m) for m in exc.messages]
    except Exception:
        messages = [_text(exc)]
    message_dict: dict[str, list[str]] = {}
    if hasattr(exc, "error_dict"):
        try:
            message_dict = {_text(k): [_text(m) for m in v] for k, v in exc.message_dict.items()}
        except Exception:
            message_dict = {}
    return ValidationError("; ".join(messages), messages, message_dict)


def translate(exc: BaseException) -> BaseException:
    """A fresh, vetted exception that means what ``exc`` meant, with message strings only."""
    kind = type(exc)
    if isinstance(exc, dj_exceptions.ValidationError):
        return _validation_error(exc)
    if kind is ValidationError:
        return ValidationError(_text(exc), [_text(m) for m in exc.messages])
    message = _text(exc)
    if isinstance(exc, db_utils.Error):
        # PostgreSQL adds DETAIL/HINT lines ("Failing row contains (...)" lists every column,
        # allowlisted or not): the first line says what went wrong.
        message = message.split("\n", 1)[0].strip()
    for cls in kind.__mro__:
        mapped = _model_errors.get(cls) or _DJANGO_TO_SANDBOX.get(cls)
        if mapped is not None:
            return mapped(message)
        if vetting.is_vetted_exception_class(cls) and cls.__module__ in (__name__, "snippet"):
            return cls(message)  # one of ours (SandboxViolation, a model's DoesNotExist...)
        if cls in _PASS_THROUGH_BUILTINS:
            if cls is KeyError and len(exc.args) == 1 and type(exc.args[0]) in (str, int):
                return KeyError(exc.args[0])
            return cls(message)
    return RuntimeError(f"{kind.__name__}: {message}" if message else kind.__name__)


F = TypeVar("F", bound=Callable[..., Any])


def firewall(func: F) -> F:
    """Wrap ``func`` so that nothing it raises reaches the caller except a fresh vetted one."""

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MemoryError:
            raise  # the isolation layer reports it as "memory limit exceeded"
        except BaseException as exc:
            fresh = translate(exc)
        # Raised here, outside the except block: no __context__ links it to the original.
        raise fresh

    return guarded  # type: ignore[return-value]


_NOT_WRAPPED = frozenset({"__init_subclass__", "__class_getitem__", "__new__", "__slots__"})


def firewall_class(cls: type) -> type:
    """Apply :func:`firewall` to every function defined on ``cls`` (dunders included)."""
    for name, member in list(vars(cls).items()):
        if name in _NOT_WRAPPED:
            continue
        if isinstance(member, staticmethod | classmethod):
            continue
        if callable(member) and not isinstance(member, type):
            setattr(cls, name, firewall(member))
    return cls
