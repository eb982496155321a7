"""How a claimed execution gets run: the seam between claiming and executing.

The scheduler (a tick of the daemon, a cron pass, the embedded scheduler, "Run now", a retry
coming due) decides *what* runs and claims it in the database; a backend decides *where*:

- ``inline`` (the default): the runner that claimed it runs it in its own pool of sandbox
  children (``runner.tick``), as a single machine does.
- ``celery``: the runner claims due work as ``pending`` under its lease and sends one Celery
  message per execution; a worker process (``celery -A ticketproo worker``) takes the claim
  with a compare-and-set and runs it in the same sandbox. See ``backends/celery.py``.

Chosen by ``SCHEDULED_TASKS["BACKEND"]`` (environment ``SCHEDULED_TASKS_BACKEND``): a name
above or the dotted path of a :class:`~scheduled_tasks.backends.base.Backend` subclass.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

from scheduled_tasks import conf
from scheduled_tasks.backends.base import Backend, BackendError

__all__ = ["BUILTIN", "Backend", "BackendError", "current", "load"]

BUILTIN = {
    "inline": "scheduled_tasks.backends.inline.InlineBackend",
    "celery": "scheduled_tasks.backends.celery.CeleryBackend",
}


def load(name: str) -> Backend:
    """The backend called ``name`` (a built-in name or a dotted path). Raises
    :class:`BackendError` with a message a person can act on."""
    path = BUILTIN.get(name, name)
    try:
        backend_class = import_string(path)
    except ImportError as exc:
        known = ", ".join(sorted(BUILTIN))
        raise BackendError(
            f"unknown execution backend {name!r}: use one of {known} or the dotted path of a "
            f"Backend class ({exc})"
        ) from exc
    if not (isinstance(backend_class, type) and issubclass(backend_class, Backend)):
        raise BackendError(f"{path} is not a scheduled_tasks.backends.base.Backend subclass")
    return backend_class()


def current() -> Backend:
    """The configured backend (``SCHEDULED_TASKS["BACKEND"]``)."""
    return load(conf.get("BACKEND"))
