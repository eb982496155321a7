"""Shared pieces of the black-box sandbox attack suites (exception and value families).

The attack modules run snippets through ``run_snippet`` only and judge outcomes: what the
snippet printed, the error its author gets, and what happened to the database and the disk.

Snippets cannot say ``type(x).__name__`` today (no ``type`` builtin; ``__name__`` is refused at
compile time), so every attack snippet starts with :data:`PROBE`, a few plain-Python helpers that
classify what the snippet got hold of *by what it can do with it*:

* ``verdict(x)``: ``ok:none`` / ``ok:plain`` (plain scalars and containers of them, checked
  recursively) / ``ok:exc:<Name>`` (an exception that carries only message strings) /
  ``ok:opaque`` (refuses every internals-leading attribute: a proxy or another vetted object)
  or ``BAD:...`` (a raw Django exception with ``params``/``error_list``/..., or an object whose
  ``password``/``full_clean``/``query``/``get_compiler``/``connection``... can be read).
* ``probe(label, x)`` prints ``KIND <label> <verdict>``.
* ``deny(label, x, name)`` reads ``getattr(x, name)`` and prints ``REACHED-DENIED <label>`` when
  that worked: the attribute must be absent or refused.
* ``inspect_exc(e)`` runs the whole battery on a caught exception: its kind, every item of
  ``args``, ``str``/``repr``/``format``, iteration, ``messages``/``message_dict``/``message``,
  and the denied attributes (``params``, ``error_list``, ``error_dict``, ``code``, ``obj``,
  ``__cause__``, ``__context__``, ``__traceback__``, driver internals...).

A raw Django ``ValidationError`` is told from the sandbox's same-named one by its attributes: the
sandbox's has no ``params``, ``error_list``, ``error_dict`` or ``code`` and its ``args`` are
strings (Django's are ``(message, code, params)`` with the offending value inside ``params``).

:func:`findings` applies the checks every attack gets: no secret in the output or the error
(``SECRET_KEY``, canaries, passwords, password hashes, ``pbkdf2``/``md5$``), no internals in
the error, every ``KIND`` verdict ``ok`` (exception names within :data:`VETTED_EXCEPTIONS`), no
``REACHED-DENIED`` line, no forbidden marker (``HOOK-CALLED``: a snippet function was called back
by the ORM), and no side effect: rows of every table snippets may not write are unchanged, no
file appeared in the working directory, and ``/tmp/x`` (the exploit's shell target) was not
created or touched.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.auth.models import User

from ticketproo.crm.models import Company, Contact, Ticket

SETTING_CANARY = "canary-setting-5be2d1-attack-kit-must-not-see-me"
ENV_CANARY = "canary-env-0c94ae-attack-kit-must-not-see-me"
ROOT_PASSWORD = "root-password-kit-7e31-never-leak"
ALICE_PASSWORD = "alice-password-kit-a9d4-never-leak"
# Whatever hasher is configured, its output must never reach a snippet.
HASH_MARKERS = ("pbkdf2", "md5$", "argon2", "bcrypt", "scrypt$", "sha1$")
WRITABLE_MODELS = {"crm.Ticket", "crm.Company", "crm.Contact"}
DUMP_MARKERS = ('File "', "site-packages", "scheduled_tasks/", "Traceback (most recent call")
MAX_ERROR_CHARS = 8000
# The exploit's shell command writes here; the file must not appear or change.
SHELL_TARGET = Path("/tmp/x")  # only stat()ed
HOOK_MARKER = "HOOK-CALLED"

# Exception class names a snippet may see (the firewall's fresh classes share the names of
# what they replace). A name outside this set means a raw exception of some library (a
# psycopg/sqlite3 error reached through a cause, a Django internal...). A new sandbox class
# (its refusal error, say) may be added here; a driver's class must not.
VETTED_EXCEPTIONS = frozenset(
    {
        # Django, as the firewall re-creates them
        "ValidationError", "ObjectDoesNotExist", "DoesNotExist", "RelatedObjectDoesNotExist",
        "MultipleObjectsReturned", "FieldError", "FieldDoesNotExist", "EmptyResultSet",
        "IntegrityError", "DatabaseError", "DataError", "OperationalError", "ProgrammingError",
        "NotSupportedError", "InterfaceError", "InternalError",
        # builtins
        "Exception", "ValueError", "TypeError", "KeyError", "IndexError", "AttributeError",
        "LookupError", "ArithmeticError", "ZeroDivisionError", "OverflowError",
        "RecursionError", "RuntimeError", "NotImplementedError", "NameError", "StopIteration",
        "AssertionError", "UnicodeError", "UnicodeEncodeError", "UnicodeDecodeError",
        # the sandbox's own refusal
        "SandboxViolation",
    }
)  # fmt: skip

# Plain Python run at the top of every attack snippet (see the module docstring). Names start
# without "_" (RestrictedPython refuses those) and only builtins snippets have are used.
PROBE = """\
import datetime as probe_dt
import decimal as probe_decimal
SCALARS = (str, int, float, bool, probe_decimal.Decimal, probe_dt.date, probe_dt.time,
           probe_dt.timedelta)
EXC_DENIED = ['params', 'error_list', 'error_dict', 'code', 'obj', '__cause__', '__context__',
              '__traceback__', '__dict__', '__class__', 'with_traceback', 'diag', 'pgconn',
              'pgresult', 'cursor', 'sqlite_errorcode', 'sqlite_errorname', 'connection']
OBJ_INTERNALS = ['password', 'set_password', 'full_clean', 'save_base', 'clean_fields',
                 'serializable_value', 'query', 'model', 'db', 'connection', 'cursor',
                 'execute', 'get_compiler', 'resolve_expression', 'as_sql', 'keywords', 'func',
                 'related_model', 'remote_field', 'params', 'error_list', 'error_dict', 'raw',
                 'using', 'client', 'Database', 'get_field', 'concrete_fields']


def has(x, name):
    try:
        getattr(x, name)
    except Exception:
        return False
    return True


def verdict(x, depth=0):
    if x is None:
        return 'ok:none'
    if isinstance(x, BaseException):
        bad = []
        args = x.args
        if not isinstance(args, tuple):
            bad.append('args-not-tuple')
        elif not all([isinstance(a, str) for a in args]):
            bad.append('args-not-str')
        bad += [n for n in EXC_DENIED if has(x, n)]
        name = repr(x).split('(')[0]
        return ('BAD:exc:' + name + ':' + ','.join(bad)) if bad else ('ok:exc:' + name)
    if isinstance(x, SCALARS):
        return 'ok:plain'
    if isinstance(x, (list, tuple, set, frozenset)):
        if depth > 4:
            return 'ok:plain'
        for item in list(x)[:50]:
            v = verdict(item, depth + 1)
            if not v.startswith('ok:'):
                return v
        return 'ok:plain'
    if isinstance(x, dict):
        if depth > 4:
            return 'ok:plain'
        for k, item in list(x.items())[:50]:
            for v in (verdict(k, depth + 1), verdict(item, depth + 1)):
                if not v.startswith('ok:'):
                    return v
        return 'ok:plain'
    bad = [n for n in OBJ_INTERNALS if has(x, n)]
    if bad:
        return 'BAD:raw:' + ','.join(bad)
    return 'ok:opaque'


def probe(label, x):
    print('KIND', label, verdict(x))
    return x


def deny(label, x, name):
    try:
        got = getattr(x, name)
    except Exception:
        return
    print('REACHED-DENIED', label + '.' + name, verdict(got))


def inspect_exc(e, label='e'):
    probe(label, e)
    for i, a in enumerate(e.args):
        probe(label + '.args[' + str(i) + ']', a)
    print('TEXT', label, str(e), repr(e), format(e))
    try:
        items = list(e)
    except Exception:
        items = []
    for i, item in enumerate(items[:5]):
        probe(label + '.iter[' + str(i) + ']', item)
    for name in ('messages', 'message_dict', 'message'):
        try:
            value = getattr(e, name)
        except Exception:
            continue
        probe(label + '.' + name, value)
        if name == 'message' and not isinstance(value, str):
            print('REACHED-DENIED', label + '.message-not-str')
    for name in EXC_DENIED:
        deny(label, e, name)
    return e


"""
PROBE_LINES = PROBE.count("\n")


def with_probe(code: str) -> str:
    return PROBE + code


# --- the world every attack runs in -----------------------------------------------------------


def model_rows() -> dict[str, list[str]]:
    """Every row of every model snippets may not write, as comparable text."""
    rows = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.label in WRITABLE_MODELS or meta.proxy or not meta.managed:
            continue
        rows[meta.label] = sorted(repr(r) for r in model._base_manager.values_list())
    return rows


def _file_state(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


@dataclass
class World:
    root: User
    secrets: list[str]
    rows_before: dict[str, list[str]]
    cwd: Path
    shell_target_before: tuple[int, int] | None

    def side_effects(self) -> list[str]:
        found = []
        after = model_rows()
        for label, before in self.rows_before.items():
            now = after.get(label, [])
            if now != before:
                gone = sorted(set(before) - set(now))
                new = sorted(set(now) - set(before))
                found.append(f"rows of {label} changed: removed {gone}, added {new}")
        created = sorted(p.name for p in self.cwd.iterdir())
        if created:
            found.append(f"files appeared in the working directory: {created}")
        if _file_state(SHELL_TARGET) != self.shell_target_before:
            found.append(f"{SHELL_TARGET} was created or changed (a shell command ran)")
        return found


def make_world(settings, monkeypatch, tmp_path) -> Iterator[World]:
    """The body of each attack module's ``world`` fixture (pytest's settings, monkeypatch and
    tmp_path fixtures in): users with known passwords, CRM rows, canaries, a clean cwd."""
    assert settings.SECRET_KEY.startswith("test-secret-key"), "tests/settings.py not in use"
    settings.SANDBOX_ATTACK_CANARY = SETTING_CANARY
    monkeypatch.setenv("SANDBOX_ATTACK_CANARY", ENV_CANARY)

    root = User.objects.create_superuser("root", "root@example.com", ROOT_PASSWORD)
    alice = User.objects.create_user(
        "alice", "alice@example.com", ALICE_PASSWORD, first_name="Alice", is_staff=True
    )
    acme = Company.objects.create(name="Acme", website="https://acme.example")
    Company.objects.create(name="Globex")
    ada = Contact.objects.create(company=acme, name="Ada", email="ada@example.com")
    Ticket.objects.create(
        title="Printer on fire", status="open", company=acme, contact=ada, assignee=root
    )
    Ticket.objects.create(title="Old", status="resolved", company=acme, assignee=root)

    # The child inherits the working directory and the logging setup of this process.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    os.chmod(cwd, 0o777)  # noqa: S103 - a child dropped to "nobody" must be able to write here
    monkeypatch.chdir(cwd)
    log_file = tmp_path / "snippets.log"
    handler = logging.FileHandler(log_file, delay=True)
    monkeypatch.setattr(logging.getLogger("scheduled_tasks"), "handlers", [handler])

    secrets = [
        django_settings.SECRET_KEY,
        SETTING_CANARY,
        ENV_CANARY,
        ROOT_PASSWORD,
        ALICE_PASSWORD,
    ]
    for user in (root, alice):
        secrets += [user.password, user.password.rsplit("$", 1)[-1]]
    yield World(root, secrets, model_rows(), cwd, _file_state(SHELL_TARGET))
    handler.close()


# --- the checks every attack gets --------------------------------------------------------------

_LINE = re.compile(r"^(KIND|REACHED-DENIED) (\S+) ?(.*)$")


def kind_findings(output: str) -> list[str]:
    found = []
    for line in output.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        tag, label, verdict = match.groups()
        if tag == "REACHED-DENIED":
            found.append(f"{label} was readable ({verdict}); it must be absent or refused")
        elif not verdict.startswith("ok:"):
            found.append(f"{label} is not a vetted object: {verdict}")
        elif verdict.startswith("ok:exc:"):
            name = verdict.removeprefix("ok:exc:")
            if name not in VETTED_EXCEPTIONS:
                found.append(f"{label} is an exception of an unvetted class {name!r}")
    return found


def findings(result, world: World, *, markers: tuple[str, ...] = (HOOK_MARKER,)) -> list[str]:
    """Everything wrong with ``result`` that holds for every attack, as readable lines."""
    found = []
    seen = result.output + result.error
    found += [f"a secret leaked: {s[:14]}..." for s in world.secrets if s and s in seen]
    found += [f"a password hash marker leaked: {m!r}" for m in HASH_MARKERS if m in seen]
    found += [f"internals in the error: {m!r}" for m in DUMP_MARKERS if m in result.error]
    if len(result.error) > MAX_ERROR_CHARS:
        found.append(f"the error is {len(result.error)} characters long")
    found += kind_findings(result.output)
    found += [f"marker {m!r} in the output" for m in markers if m in result.output]
    found += world.side_effects()
    return found


def shown(result) -> str:
    return (
        f"status={result.status}\noutput={result.output[-1500:]!r}\nerror={result.error[-600:]!r}"
    )
