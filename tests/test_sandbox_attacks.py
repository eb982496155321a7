"""Escape attempts against the snippet sandbox: every one of them must end blocked.

Blocked means a compile-time refusal (``check_code`` reports a problem) or a run that ends
``failed`` / ``timeout``. For every attack we also check that

* no secret reaches the output or the error: the test ``SECRET_KEY``, a canary setting, a canary
  environment variable, and the superuser's password hash;
* the error is not a dump of Python internals (no ``File "..."`` frames, no site-packages or
  sandbox source paths), and a refused snippet is told which line was refused;
* nothing happened on the side: every row of every model that snippets may not write
  (everything but Ticket, Company and Contact) is unchanged, no file appeared in the working
  directory, and the scheduler's log did not grow past a few times the output cap.

The shapes come from RestrictedPython's published advisories (generator ``gi_frame`` walks,
CVE-2023-37271; ``format``/``format_map``/``string.Formatter`` field traversal, CVE-2023-41039
and GHSA-hp3v-5vw7-fx9w; ``try/except*`` type confusion, CVE-2025-22153; guard shadowing through
positional-only parameters, GHSA-ffg3-p8fm-mjx2; builtins that iterate in C, issue #335), from
classic Python jail escapes (subclass walks, ``__globals__``, traceback frames, decorators,
coding cookies, pickle/codecs/operator), and from the Django ORM's escape hatches.

Cases with ``hole=``/``bug=`` found a real escape or defect when this suite was written; the
sandbox was fixed and they stay as regression tests. A new escape must never be "fixed" here by
weakening a check.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.auth.models import User

from scheduled_tasks import conf
from scheduled_tasks.sandbox import check_code, run_snippet
from ticketproo.crm.models import Company, Contact, Ticket

pytestmark = pytest.mark.django_db(transaction=True)

SETTING_CANARY = "canary-setting-3f7a91c2-sandbox-must-not-see-me"
ENV_CANARY = "canary-env-b82d44e0-sandbox-must-not-see-me"
ROOT_PASSWORD = "root-password-9c1e-never-leak"
# Models snippets may change; every other table must come out of an attack untouched.
WRITABLE_MODELS = {"crm.Ticket", "crm.Company", "crm.Contact"}
BLOCKED = {"failed", "timeout"}
DUMP_MARKERS = ('File "', "site-packages", "scheduled_tasks/", "Traceback (most recent call")
MAX_ERROR_CHARS = 8000


@dataclass(frozen=True)
class Attack:
    code: str
    # The policy must refuse it at compile time (check_code reports a problem).
    compile_time: bool = False
    # A fragment the error (or the compile problems) must contain: what was refused.
    expect: str | None = None
    timeout: float = 5
    # Resource exhaustion: the error names the limit, not a snippet line.
    resource: bool = False
    check: Callable[[Any, list[str], World], None] | None = None


def attack(
    attack_id: str, code: str, *, hole: str | None = None, bug: str | None = None, **kw: Any
):
    # ``hole``/``bug`` document an escape or bug this case found and that was then fixed: the
    # case stays as its regression test.
    return pytest.param(Attack(code, **kw), id=attack_id)


# --- extra checks ----------------------------------------------------------------------------


def output_capped(result, problems, world) -> None:
    assert len(result.output.encode()) <= conf.get("MAX_OUTPUT_BYTES")


def output_capped_and_flagged(result, problems, world) -> None:
    output_capped(result, problems, world)
    assert result.output_truncated is True


def output_cut_cleanly(result, problems, world) -> None:
    output_capped_and_flagged(result, problems, world)
    assert "\ufffd" not in result.output


def error_capped(result, problems, world) -> None:
    assert len(result.error) <= MAX_ERROR_CHARS


def timed_out(result, problems, world) -> None:
    assert result.status == "timeout"
    assert result.duration < 10


def hook_never_called(result, problems, world) -> None:
    assert "CALLED" not in result.output, "the sandbox called a method of the snippet's object"


def check_code_refuses(result, problems, world) -> None:
    assert problems, "check_code() must report the problem (it is what the forms call)"


# --- the attacks -----------------------------------------------------------------------------

# The real model class, reached through the functools.partial that Django's get_FOO_display is.
REAL_MODEL = "M = Ticket.objects.first().get_status_display.keywords['field'].model\n"
# The real model instance, reached through AttributeError.obj (Python 3.10+).
REAL_INSTANCE = (
    "try:\n"
    "    Ticket.objects.first().get_title_display\n"
    "except AttributeError as e:\n"
    "    real = e.obj\n"
)
# A snippet's text, not a query of ours: it runs (or not) inside the sandbox.
RAW_SQL_WRITE = (
    'rows = M.objects.raw("UPDATE auth_user SET is_superuser = 1, first_name = '
    "'pwned' RETURNING id, first_name AS title\")\nprint([r.title for r in rows])"
)
PARTIAL_HOLE = (
    "InstanceProxy.__sandbox_getattr__ returns getattr(obj, 'get_<field>_display') as is: "
    "Django makes it a functools.partial whose public .keywords['field'] is the real Field, "
    "and Field.model is the real model class (objects.raw(), related_model, connection...). "
    "orm.py must wrap the method (call it and return the string) instead of handing it out."
)
ATTRIBUTE_ERROR_OBJ_HOLE = (
    "for a field without choices, InstanceProxy.__sandbox_getattr__('get_title_display') lets "
    "the real getattr() raise; Python 3.10+ sets AttributeError.obj to the real model "
    "instance, which the snippet catches (real.assignee.password, .set_password(), .save()). "
    "orm.py must raise its own error (raise ... from None, obj unset) and the guard should "
    "refuse .obj on exceptions."
)
LOG_HOLE = (
    "SnippetLogger writes every line to the scheduler's log file as well as to the capped "
    "output, with no budget: a loop of logger.info() fills the disk (3 MB from 300 calls here; 20 MB in 40 ms from 2000). "
    "The log copy needs the same byte cap as the output (or RLIMIT_FSIZE in the child)."
)
CHECK_CODE_DEPTH_BUG = (
    "check_code() (run in the web/form process) lets {exc} out of the parser / "
    "RestrictingNodeTransformer for a deeply nested expression of < MAX_CODE_BYTES, instead "
    "of returning a CodeProblem; compile_snippet must catch RecursionError/MemoryError."
)

ATTACKS = [
    # --- subclass walks and dunders ----------------------------------------------------------
    attack(
        "subclass-walk-literal",
        "x = ().__class__.__bases__[0].__subclasses__()",
        compile_time=True,
        expect="__class__",
    ),
    attack(
        "subclass-walk-catch-warnings",
        "[c for c in ''.__class__.__mro__[1].__subclasses__() if c.__name__ == "
        "'catch_warnings'][0]()._module.__builtins__['__import__']('os').system('id')",
        compile_time=True,
    ),
    attack(
        "subclass-walk-dynamic-getattr",
        "cls = getattr((), '__cla' + 'ss__')\nprint(getattr(cls, '__ba' + 'ses__'))",
        expect="__class__",
    ),
    attack(
        "subclass-walk-chr-built-name",
        "name = chr(95) * 2 + 'class' + chr(95) * 2\nprint(getattr(1, name))",
        expect="__class__",
    ),
    attack("mro-attribute", "print(str.mro())", compile_time=True, expect="mro"),
    attack("mro-dynamic-getattr", "print(getattr(int, 'm' + 'ro')())", expect="mro"),
    attack("object-builtin", "print(object.__subclasses__())", compile_time=True),
    attack("type-builtin-makes-classes", "X = type('X', (), {})\nprint(X)", expect="type"),
    attack("vars-of-model", "print(vars(Ticket))", expect="vars"),
    attack("dict-of-model", "print(Ticket.__dict__)", compile_time=True),
    attack(
        "class-getitem",
        "print(getattr(list, '__class_getitem__')(int))",
        expect="__class_getitem__",
    ),
    # --- function globals / code objects -----------------------------------------------------
    attack(
        "lambda-globals",
        "print((lambda: 0).__globals__['__builtins__'])",
        compile_time=True,
        expect="__globals__",
    ),
    attack(
        "function-globals-dynamic",
        "def f():\n    pass\n\nprint(getattr(f, '__glo' + 'bals__'))",
        expect="__globals__",
    ),
    attack(
        "namespace-function-globals",
        "print(timezone.now.__globals__['settings'].SECRET_KEY)",
        compile_time=True,
    ),
    attack(
        "namespace-function-globals-dynamic",
        "g = getattr(timezone.now, '__globals__')\nprint(g['settings'].SECRET_KEY)",
        expect="__globals__",
    ),
    attack(
        "py2-func-globals",
        "def f():\n    pass\n\nprint(f.func_globals)",
        compile_time=True,
        expect="func_globals",
    ),
    attack(
        "py2-func-globals-dynamic",
        "def f():\n    pass\n\nprint(getattr(f, 'func_' + 'globals'))",
        expect="func_globals",
    ),
    attack(
        "code-object-consts",
        "def f():\n    return 'x'\n\nprint(f.__code__.co_consts)",
        compile_time=True,
    ),
    attack("logger-internals", "print(getattr(logger, '_logger').manager)", expect="_logger"),
    attack(
        "module-proxy-internals",
        "import math\nprint(getattr(math, '_members'))",
        expect="_members",
    ),
    attack("printer-internals", "p = printed\nprint(getattr(p, '_sink'))", expect="_sink"),
    # --- format strings (CVE-2023-41039, GHSA-hp3v-5vw7-fx9w) -------------------------------
    attack(
        "str-format-traversal",
        "print('{0.__class__.__mro__}'.format(1))",
        expect="format",
    ),
    attack(
        "str-format-map-traversal",
        "def f():\n    pass\n\nprint('{f.__globals__}'.format_map({'f': f}))",
        compile_time=True,
        expect="format_map",
    ),
    attack("str-format-unbound", "print(str.format('{0.__class__}', 1))", expect="format"),
    attack(
        "str-format-dynamic-getattr",
        "fmt = getattr('{0.__class__}', 'for' + 'mat')\nprint(fmt(1))",
        expect="format",
    ),
    attack(
        "str-subclass-format",
        "print(Ticket.Status.OPEN.format('{0.__class__}'))",
        expect="format",
    ),
    attack(
        "string-formatter-import",
        "from string import Formatter\nf = Formatter()\nprint(f.parse)",
        expect="Formatter",
    ),
    attack(
        "string-formatter-vformat",
        "import string\nprint(string.Formatter().vformat('{0.__class__}', [1], {}))",
        compile_time=True,
        expect="vformat",
    ),
    attack(
        "string-formatter-attribute",
        "import string\nf = string.Formatter()\nprint(f.parse('{0.__class__}'))",
        expect="Formatter",
    ),
    attack("string-template", "from string import Template", expect="Template"),
    attack("format-builtin-spec", "print(format(1, '{0.__class__}'))"),
    attack("fstring-dunder", "print(f'{(1).__class__.__bases__}')", compile_time=True),
    # --- generator / coroutine / async-generator frames (CVE-2023-37271) --------------------
    attack(
        "generator-gi-frame",
        "def g():\n    yield 1\n\nprint(g().gi_frame.f_back.f_globals)",
        compile_time=True,
        expect="gi_frame",
    ),
    attack(
        "generator-gi-frame-dynamic",
        "def g():\n    yield 1\n\nprint(getattr(g(), 'gi_' + 'frame'))",
        expect="gi_frame",
    ),
    attack(
        "genexp-gi-code",
        "x = (i for i in [1])\nprint(getattr(x, 'gi_code'))",
        expect="gi_code",
    ),
    attack(
        "queryset-generator-frame",
        # QuerySetProxy.__iter__ is a generator of the sandbox: its frame holds the real queryset.
        "g = iter(Ticket.objects.all())\nframe = getattr(g, 'gi_frame')\nprint(frame)",
        expect="gi_frame",
    ),
    attack(
        "generator-yieldfrom",
        "def inner():\n    yield 1\n\ndef outer():\n    yield from inner()\n\n"
        "o = outer()\nnext(o)\nprint(getattr(o, 'gi_yieldfrom'))",
        expect="gi_yieldfrom",
    ),
    attack(
        "coroutine-cr-frame",
        "async def f():\n    pass\n\nprint(f().cr_frame.f_globals)",
        compile_time=True,
    ),
    attack(
        "async-generator-ag-frame",
        "async def g():\n    yield 1\n\nprint(g().ag_frame.f_globals)",
        compile_time=True,
    ),
    attack(
        "await-in-genexp",
        "x = [await y for y in []]",
        compile_time=True,
    ),
    # --- tracebacks and exceptions -----------------------------------------------------------
    attack(
        "traceback-frame",
        "try:\n    1 / 0\nexcept Exception as e:\n"
        "    print(e.__traceback__.tb_frame.f_back.f_globals)",
        compile_time=True,
    ),
    attack(
        "traceback-dynamic",
        "try:\n    1 / 0\nexcept Exception as e:\n    print(getattr(e, '__traceback__'))",
        expect="__traceback__",
    ),
    attack(
        "exception-context",
        "try:\n    Ticket.objects.get(pk=-1)\nexcept Exception as e:\n"
        "    print(getattr(e, '__context__'))",
        expect="__context__",
    ),
    attack(
        "with-traceback",
        "try:\n    1 / 0\nexcept Exception as e:\n    e.with_traceback(None)",
        compile_time=True,
        expect="with_traceback",
    ),
    attack(
        "generator-throw-traceback",
        "g = iter(Ticket.objects.all())\ntry:\n    g.throw(ValueError('x'))\n"
        "except ValueError as e:\n    print(getattr(e, '__traceback__'))",
        # Refused one step earlier since the iterator became a firewalled proxy.
        expect="throw",
    ),
    attack(
        "snippet-generator-throw-traceback",
        "def gen():\n    yield 1\ng = gen()\ntry:\n    g.throw(ValueError('x'))\n"
        "except ValueError as e:\n    print(getattr(e, '__traceback__'))",
        expect="__traceback__",
    ),
    # --- try/except* (CVE-2025-22153) and match ----------------------------------------------
    attack(
        "try-except-star",
        "try:\n    raise ValueError(1)\nexcept* ValueError as eg:\n    print(eg.exceptions[0])",
        compile_time=True,
        expect="except*",
    ),
    attack(
        "exception-group-builtin",
        "raise ExceptionGroup('x', [ValueError()])",
        expect="ExceptionGroup",
    ),
    attack(
        "match-class-pattern",
        "match 1:\n    case int(real=r):\n        print(r)",
        compile_time=True,
        expect="match",
    ),
    # --- decorators and class tricks ---------------------------------------------------------
    attack("decorator-eval", "@eval\ndef f():\n    pass", expect="eval"),
    attack("decorator-exec-input", "@exec\n@input\ndef f():\n    pass", expect="exec"),
    # Class statements work since #11 (the snippet's own classes); these are the doors they
    # could open. A class derives only from the snippet's own classes and exceptions.
    attack(
        "class-init-subclass",
        "class X:\n    def __init_subclass__(cls, **kw):\n        pass",
        compile_time=True,
        expect="__init_subclass__",
    ),
    attack(
        "class-class-getitem",
        "class X:\n    def __class_getitem__(cls, item):\n        return item",
        compile_time=True,
        expect="__class_getitem__",
    ),
    attack("class-derive-from-type", "class M(type):\n    pass", expect="type"),
    attack(
        "class-derive-from-a-vetted-value-class", "class D(datetime):\n    pass", expect="datetime"
    ),
    attack("class-derive-from-a-model-proxy", "class X(Ticket):\n    pass", expect="ModelProxy"),
    attack("class-derive-from-q", "class X(Q):\n    pass", expect="derive"),
    attack(
        "class-derive-from-str-with-hooks",
        "class S(str):\n    def resolve_expression(self, *a):\n        print('CALLED')\n"
        "Ticket.objects.filter(title=S('x')).count()",
        expect="derive",
        check=hook_never_called,
    ),
    attack("class-derive-from-dict", "class D(dict):\n    pass", expect="derive"),
    attack(
        "class-derive-from-own-namedtuple-with-hooks",
        "import collections\nP = collections.namedtuple('P', 'a')\n"
        "class X(P):\n    def resolve_expression(self, *a):\n        print('CALLED')\n"
        "    def as_sql(self, *a):\n        print('CALLED')\n"
        "Ticket.objects.filter(title=X(1)).count()",
        expect="TypeError",
        check=hook_never_called,
    ),
    attack(
        "class-instance-with-hooks-into-create",
        "class E:\n    def resolve_expression(self, *a):\n        print('CALLED')\n"
        "Ticket.objects.create(title=E())",
        expect="TypeError",
        check=hook_never_called,
    ),
    attack(
        "class-instance-with-hooks-into-update",
        "class E:\n    def resolve_expression(self, *a):\n        print('CALLED')\n"
        "Ticket.objects.update(title=E())",
        expect="TypeError",
        check=hook_never_called,
    ),
    attack(
        "class-instance-with-eq-into-in-lookup",
        "class E:\n    def __eq__(self, other):\n        print('CALLED')\n        return True\n"
        "print(Ticket.objects.filter(title__in=[E()]).count())",
        expect="TypeError",
        check=hook_never_called,
    ),
    attack(
        "class-method-writes-a-proxy",
        "class W:\n    def poke(self, row):\n        row.secret = 1\n"
        "W().poke(Company.objects.first())",
        expect="secret",
    ),
    attack(
        "class-method-writes-a-module",
        "import math\nclass W:\n    def poke(self):\n        setattr(math, 'pi', 3)\nW().poke()",
        expect="cannot be changed",
    ),
    attack(
        "class-instance-dunder-class",
        "class X:\n    pass\nprint(getattr(X(), '__class__'))",
        expect="__class__",
    ),
    attack(
        "class-body-shadows-a-guard",
        "class X:\n    _getattr_ = None",
        compile_time=True,
        expect="_getattr_",
    ),
    attack(
        "class-exception-is-systemexit",
        "class Stop(SystemExit):\n    pass\nraise Stop(0)",
        expect="Stop",
    ),
    attack("class-decorated-by-eval", "@eval\nclass X:\n    pass", expect="eval"),
    attack(
        "class-metaclass-keyword",
        "class X(metaclass=type):\n    pass",
        compile_time=True,
        expect="metaclass",
    ),
    attack(
        "class-getattribute-override",
        "class X:\n    def __getattribute__(self, name):\n        return name\n\nprint(X())",
    ),
    # --- guard shadowing (GHSA-ffg3-p8fm-mjx2) -----------------------------------------------
    attack(
        "shadow-guard-positional-only",
        "def f(_getattr_=getattr, /):\n    return ().__class__\n\nf()",
        compile_time=True,
        expect="_getattr_",
    ),
    attack(
        "shadow-guard-lambda-positional-only",
        "f = lambda _write_=None, /: 0\nf()",
        compile_time=True,
        expect="_write_",
    ),
    attack("shadow-guard-walrus", "(_getattr_ := getattr)", compile_time=True),
    attack(
        "shadow-guard-global",
        "def f():\n    global _getiter_\n    _getiter_ = iter\n\nf()",
        compile_time=True,
    ),
    attack(
        "shadow-guard-except-name",
        "try:\n    1 / 0\nexcept Exception as _getattr_:\n    pass",
        compile_time=True,
    ),
    attack("shadow-guard-import-as", "import math as _getattr_", compile_time=True),
    attack("builtins-name", "print(__builtins__['open'])", compile_time=True),
    # --- dynamic getattr and writes through builtins -----------------------------------------
    attack(
        "map-getattr",
        "print(list(map(getattr, [()], ['__class__'])))",
        expect="__class__",
    ),
    attack(
        "sorted-key-getattr",
        "print(sorted([()], key=lambda x: getattr(x, '__class__')))",
        expect="__class__",
    ),
    attack(
        "c-iteration-builtins",
        # RestrictedPython #335: tuple/zip/sorted iterate in C, past _getiter_.
        "print([u.password for u in tuple(User.objects.all())])",
        expect="password",
    ),
    attack("setattr-module-proxy", "import math\nsetattr(math, 'pi', 3)\nprint(math.pi)"),
    attack("monkeypatch-module-proxy", "import json\njson.dumps = print"),
    attack("delete-manager", "del Ticket.objects"),
    attack("eval-by-name", "e = eval\nprint(e('1 + 1'))", expect="eval"),
    attack("breakpoint", "breakpoint()", compile_time=True, expect="breakpoint"),
    attack(
        "open-file-for-writing",
        "f = open('pwned.txt', 'w')\nf.write('pwned')",
        expect="open",
    ),
    # --- imports: pickle / codecs / operator / os ... ----------------------------------------
    attack("import-dunder-call", "__import__('os').system('id')", compile_time=True),
    attack("import-pickle", "import pickle\nprint(pickle.loads)", expect="pickle"),
    attack("import-codecs", "import codecs\nprint(codecs.open)", expect="codecs"),
    attack(
        "import-operator-attrgetter",
        "from operator import attrgetter\nprint(attrgetter('__class__')(1))",
        expect="operator",
    ),
    attack("import-builtins", "import builtins\nprint(builtins.open)", expect="builtins"),
    attack("import-sys-modules", "import sys\nprint(sys.modules['os'])", expect="sys"),
    attack("import-importlib", "import importlib\nimportlib.import_module('os')"),
    attack("import-ctypes", "import ctypes", expect="ctypes"),
    attack("import-submodule-of-allowed", "import json.decoder", expect="json.decoder"),
    attack(
        "import-from-allowed-module-internals",
        "from datetime import sys",
        expect="sys",
    ),
    attack("relative-import", "from . import conf", compile_time=True),
    attack(
        "django-settings-import",
        "from django.conf import settings\nprint(settings.SANDBOX_ATTACK_CANARY)",
        expect="django.conf",
    ),
    attack(
        "django-connection-import",
        "from django.db import connection\nprint(connection.cursor())",
        expect="django.db",
    ),
    attack(
        "settings-through-timezone-proxy",
        "print(timezone.settings.SANDBOX_ATTACK_CANARY)",
        expect="settings",
    ),
    attack(
        "coding-cookie-utf7",
        # A coding cookie that would turn "+AAo-" into a newline if the source were bytes.
        "# -*- coding: utf-7 -*-\nx = 1 +AAo-import os",
        compile_time=True,
    ),
    attack("reduce-ex-pickle", "print((1).__reduce_ex__(2))", compile_time=True),
    attack("reduce-ex-dynamic", "print(getattr(1, '__reduce_ex__')(2))", expect="__reduce_ex__"),
    # --- ORM hatches: raw SQL, internals, other databases ------------------------------------
    attack(
        "orm-raw",
        "print(list(Ticket.objects.raw('SELECT id, password AS title FROM auth_user')))",
        expect="raw",
    ),
    attack(
        "orm-extra",
        "print(Ticket.objects.extra(select={'p': 'SELECT password FROM auth_user'}).first())",
        expect="extra",
    ),
    attack("orm-query-internals", "print(Ticket.objects.all().query.where)", expect="query"),
    attack("orm-meta", "print(Ticket._meta.get_fields())", compile_time=True, expect="_meta"),
    attack("orm-meta-dynamic", "print(getattr(Ticket, '_meta'))", expect="_meta"),
    attack("orm-using", "print(Ticket.objects.using('other').count())", expect="using"),
    attack("orm-model-attribute", "print(Ticket.objects.model)", expect="model"),
    attack("orm-descriptor-on-model", "print(Ticket.assignee.field)", expect="assignee"),
    attack("orm-proxy-internals", "print(getattr(Ticket.objects, '_qs'))", expect="_qs"),
    attack(
        "orm-instance-internals",
        "t = Ticket.objects.first()\nprint(getattr(t, '_obj').assignee.password)",
        expect="_obj",
    ),
    attack("orm-q-internals", "print(getattr(Q(title='x'), '_q'))", expect="_q"),
    attack(
        "orm-rawsql-import",
        "from django.db.models.expressions import RawSQL\n"
        "print(Ticket.objects.filter(id__in=RawSQL('SELECT 1', [])).count())",
        expect="django.db.models.expressions",
    ),
    attack(
        "orm-expression-as-value",
        "print(Ticket.objects.filter(title=Count('id')).count())",
        expect="Count",
    ),
    attack(
        "orm-func-template",
        # The real aggregate class behind the Count proxy, with a raw SQL template.
        "Agg = Count.function\nagg = Agg('id')\nagg.template = '(SELECT password FROM auth_user)'\n"
        "print(Ticket.objects.aggregate(x=agg))",
    ),
    attack(
        "orm-real-aggregate-class",
        "print(Ticket.objects.aggregate(x=Count.function('id')))",
        expect="aggregate",
    ),
    attack(
        "orm-annotate-model-rows",
        "print(Ticket.objects.annotate(n=Count('id')).first())",
        expect="annotate",
    ),
    # --- ORM hatches: lookup paths into the user's password ----------------------------------
    attack(
        "orm-values-list-password-via-fk",
        "print(list(Ticket.objects.values_list('assignee__password', flat=True)))",
        expect="password",
    ),
    attack(
        "orm-filter-password-oracle-via-fk",
        "print(Ticket.objects.filter(assignee__password__startswith='md5$').count())",
        expect="password",
    ),
    attack(
        "orm-filter-password-kwargs-splat",
        "print(Ticket.objects.filter(**{'assignee__password__contains': '$'}).count())",
        expect="password",
    ),
    attack(
        "orm-order-by-password",
        "print([t.title for t in Ticket.objects.order_by('-assignee__password')])",
        expect="password",
    ),
    attack(
        "orm-aggregate-password",
        "print(Ticket.objects.aggregate(p=Max('assignee__password')))",
        expect="password",
    ),
    attack(
        "orm-annotate-password",
        "print(list(User.objects.values('id').annotate(p=Min('password'))))",
        expect="password",
    ),
    attack(
        "orm-q-password",
        "q = Q(assignee__password__startswith='md5') | Q(title='x')\n"
        "print(Ticket.objects.filter(q).count())",
        expect="password",
    ),
    attack(
        "orm-q-negated-password",
        "print(Ticket.objects.exclude(~Q(assignee__password__gt='')).count())",
        expect="password",
    ),
    attack(
        "orm-q-private-keyword",
        "print(Ticket.objects.filter(Q(_connector='OR', title='x')).count())",
    ),
    attack(
        "orm-reverse-chain-password",
        "print(list(Company.objects.values('tickets__assignee__password')))",
        expect="password",
    ),
    attack(
        "orm-subquery-password",
        "print(Ticket.objects.filter(title__in=User.objects.values('password')).count())",
        expect="password",
    ),
    attack(
        "orm-lookup-not-allowed",
        "print(Ticket.objects.filter(title__regex='.*').count())",
        expect="regex",
    ),
    attack(
        "orm-instance-password",
        "u = Ticket.objects.first().assignee\nprint(getattr(u, 'password'))",
        expect="password",
    ),
    # --- ORM hatches: relations into models that are not whitelisted -------------------------
    attack(
        "orm-user-groups",
        "print(list(Ticket.objects.first().assignee.groups.all()))",
        expect="groups",
    ),
    attack(
        "orm-user-permissions-lookup",
        "print(Ticket.objects.filter(assignee__user_permissions__codename='x').count())",
        expect="user_permissions",
    ),
    attack(
        "orm-user-superuser-flag",
        "print(User.objects.filter(is_superuser=True).count())",
        expect="is_superuser",
    ),
    attack(
        "orm-user-method",
        "print(Ticket.objects.first().assignee.get_session_auth_hash())",
        expect="get_session_auth_hash",
    ),
    # --- ORM hatches: writes to the read-only user -------------------------------------------
    attack(
        "orm-user-update",
        "print(User.objects.filter(username='root').update(first_name='pwned'))",
        expect="read-only",
    ),
    attack(
        "orm-user-create",
        "User.objects.create(username='evil', is_superuser=True, is_staff=True)",
        expect="read-only",
    ),
    attack(
        "orm-user-get-or-create",
        "User.objects.get_or_create(username='evil', defaults={'is_staff': True})",
        expect="read-only",
    ),
    attack(
        "orm-user-instance-assign",
        "u = Ticket.objects.first().assignee\nu.is_staff = False\nu.save()",
        expect="read-only",
    ),
    attack(
        "orm-user-setattr-password",
        "u = User.objects.get(username='root')\nsetattr(u, 'password', 'x')\nu.save()",
    ),
    attack(
        "orm-user-delete",
        "print(User.objects.all().delete())",
        expect="read-only",
    ),
    attack(
        "orm-user-instance-delete",
        "Ticket.objects.first().assignee.delete()",
        expect="read-only",
    ),
    attack(
        "orm-user-constructor-save",
        "u = User(username='evil')\nu.save()",
        expect="read-only",
    ),
    attack(
        "orm-fk-attname-write",
        "print(Ticket.objects.update(assignee_id=None))",
        expect="assignee_id",
    ),
    attack(
        "orm-primary-key-write",
        "t = Ticket.objects.first()\nt.id = 999\nt.save()",
        expect="id",
    ),
    # --- ORM holes (real objects escape the proxies) -----------------------------------------
    attack(
        "orm-get-display-partial-password-leak",
        REAL_MODEL + "U = M.assignee.field.related_model\n"
        "print([u.password for u in U.objects.all()])",
        hole=PARTIAL_HOLE,
    ),
    attack(
        "orm-get-display-partial-raw-sql-write",
        REAL_MODEL + RAW_SQL_WRITE,
        hole=PARTIAL_HOLE,
    ),
    attack(
        "orm-get-display-partial-create-superuser",
        REAL_MODEL + "U = M.assignee.field.related_model\n"
        "U.objects.create_superuser('evil', 'evil@example.com', 'evil-pw')\nprint('ok')",
        hole=PARTIAL_HOLE,
    ),
    attack(
        "orm-get-display-partial-file-write",
        # The database wrapper's DB-API module (sqlite3) creates files anywhere.
        REAL_MODEL + "conn = M.objects.all().query.get_compiler('default').connection\n"
        "db = conn.Database.connect('pwned.sqlite3')\ndb.execute('CREATE TABLE pwned (x)')\n"
        "print('ok')",
        hole=PARTIAL_HOLE,
    ),
    attack(
        "orm-attributeerror-obj-password-leak",
        REAL_INSTANCE + "print(real.assignee.password)",
        hole=ATTRIBUTE_ERROR_OBJ_HOLE,
    ),
    attack(
        "orm-attributeerror-obj-set-password",
        REAL_INSTANCE + "u = real.assignee\nu.set_password('owned')\nu.save()\nprint('ok')",
        hole=ATTRIBUTE_ERROR_OBJ_HOLE,
    ),
    attack(
        "orm-attributeerror-obj-via-fk-display",
        # Any allowlisted field works as the trigger, here a foreign key.
        "try:\n    Ticket.objects.first().get_company_display\nexcept AttributeError as e:\n"
        "    print(e.obj.assignee.password)",
        hole=ATTRIBUTE_ERROR_OBJ_HOLE,
    ),
    attack(
        "orm-real-expression-class",
        # _Aggregate.function is a public class attribute holding the real Django class.
        "agg = Count.function('id')\n"
        "print(agg.identity, agg.output_field.formfield().widget.render('x', 1))",
        hole="orm._Aggregate keeps the real django.db.models aggregate class in the public "
        "class attribute 'function', so Count.function('id') is a live Django expression and "
        "its output_field a real Field (formfield(), widgets, the form template engine). No "
        "way to put it into a query was found (the proxies refuse it), but it is a real object "
        "graph past the proxies; rename it to _function.",
    ),
    # --- resource bombs ----------------------------------------------------------------------
    attack("memory-list", "x = [0] * (10 ** 9)", resource=True, expect="memory"),
    attack(
        "memory-growth-loop",
        "x = []\nwhile True:\n    x.append('a' * 10 ** 6)",
        resource=True,
        expect="memory",
    ),
    attack("memory-big-int", "x = 2 ** (10 ** 10)", resource=True, expect="memory", timeout=10),
    attack("memory-str-center", "x = 'x'.center(10 ** 10)", resource=True, expect="memory"),
    attack(
        "memory-itertools-count",
        "import itertools\nx = list(itertools.count())",
        resource=True,
        expect="memory",
    ),
    attack(
        "memory-itertools-product",
        "import itertools\nx = list(itertools.product(range(100), repeat=6))",
        resource=True,
        expect="memory",
    ),
    attack(
        "cpu-factorial",
        "import math\nmath.factorial(10 ** 8)",
        resource=True,
        timeout=1.5,
        check=timed_out,
    ),
    attack(
        "cpu-redos",
        "import re\nre.match('(a+)+$', 'a' * 40 + 'b')",
        resource=True,
        timeout=1.5,
        check=timed_out,
    ),
    attack(
        "cpu-endless-iterator",
        "import itertools\nfor i in itertools.count():\n    pass",
        resource=True,
        timeout=1.5,
        check=timed_out,
    ),
    attack("recursion-bomb", "def f():\n    return f()\n\nf()", check=error_capped),
    attack(
        "recursion-bomb-error-names-the-problem",
        "def f():\n    return f()\n\nf()",
        expect="RecursionError",
        check=error_capped,
        bug="format_snippet_error lists all ~1000 'Line 2, in f' frames and the child cuts "
        "the error to its first 8000 characters, so the last line 'RecursionError: maximum "
        "recursion depth exceeded' is lost: the author is never told what went wrong. "
        "Collapse repeated frames (CPython's 'Previous line repeated N more times') and keep "
        "the tail when cutting.",
    ),
    attack(
        "deep-nesting-repr",
        "x = []\nfor i in range(200000):\n    x = [x]\nprint(x)",
        expect="RecursionError",
    ),
    attack(
        "deep-nesting-json",
        "import json\nx = json.loads('[' * 100000 + ']' * 100000)",
        expect="RecursionError",
    ),
    attack(
        "c-stack-overflow-map-chain",
        # A million nested map() iterators recurse in C past the recursion limit: SIGSEGV.
        "x = [1]\nfor i in range(1000000):\n    x = map(abs, x)\nprint(list(x))",
        resource=True,
    ),
    attack(
        "exception-whose-str-raises",
        # str() of the exception fails while the sandbox formats the error.
        "t = Ticket(title=None)\nraise ValueError(t)",
        bug="format_snippet_error calls str(exc) unguarded; when that raises (here Ticket.__str__ "
        "returns None) the child reports 'sandbox error: TypeError: __str__ returned "
        "non-string' with no line: the author is not told where. Guard str(exc) and fall back "
        "to the exception type.",
    ),
    attack("system-exit", "raise SystemExit(0)", expect="SystemExit"),
    attack("keyboard-interrupt", "raise KeyboardInterrupt", expect="KeyboardInterrupt"),
    attack(
        "error-flood",
        "raise ValueError('A' * 10 ** 6)",
        expect="ValueError",
        check=error_capped,
    ),
    attack(
        "compile-depth-binop-chain",
        "x = " + "+".join(["1"] * 30000),
        resource=True,
        check=check_code_refuses,
        bug=CHECK_CODE_DEPTH_BUG.format(exc="RecursionError"),
    ),
    attack(
        "compile-depth-attribute-chain",
        "x = y" + ".a" * 20000,
        resource=True,
        check=check_code_refuses,
        bug=CHECK_CODE_DEPTH_BUG.format(exc="RecursionError"),
    ),
    attack(
        "compile-depth-unary-chain",
        "x = " + "-" * 30000 + "1",
        resource=True,
        check=check_code_refuses,
        bug=CHECK_CODE_DEPTH_BUG.format(exc="MemoryError"),
    ),
    # --- output floods -----------------------------------------------------------------------
    attack(
        "output-flood-endless",
        "while True:\n    print('x' * 1000)",
        resource=True,
        timeout=1.5,
        check=output_capped,
    ),
    attack(
        "output-flood-endless-is-flagged",
        "while True:\n    print('x' * 1000)",
        resource=True,
        timeout=1.5,
        check=output_capped_and_flagged,
        bug="on a timeout the child never sends its result frame and the parent drops nothing "
        "(the child already stopped at the cap), so output_truncated stays False although the "
        "output was cut at MAX_OUTPUT_BYTES; the reader must flag truncation when it has "
        "received MAX_OUTPUT_BYTES (or the child must send an 'output truncated' frame).",
    ),
    attack(
        "output-flood-one-huge-write",
        "print('x' * 10 ** 7)\nraise RuntimeError('flood done')",
        check=output_capped_and_flagged,
    ),
    attack(
        "output-flood-multibyte-cut",
        "print('\u20ac' * 10 ** 6)\nraise RuntimeError('flood done')",
        check=output_cut_cleanly,
        bug="OutputChannel.write cuts the UTF-8 bytes at MAX_OUTPUT_BYTES in the middle of a "
        "character; the parent decodes with errors='replace', so the output ends in U+FFFD and "
        "is 2 bytes over the cap once encoded again. Cut on a character boundary.",
    ),
    attack(
        "output-flood-print-end",
        "print('a', end='b' * 10 ** 7)\nraise RuntimeError('flood done')",
        check=output_capped_and_flagged,
    ),
    attack(
        "logger-flood-fills-log-file",
        "for i in range(300):\n    logger.info('x' * 10000)\nraise RuntimeError('flood done')",
        check=output_capped_and_flagged,
        hole=LOG_HOLE,
    ),
]


# --- fixtures --------------------------------------------------------------------------------


def _model_rows() -> dict[str, list[str]]:
    """Every row of every model snippets may not write, as comparable text."""
    rows = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.label in WRITABLE_MODELS or meta.proxy or not meta.managed:
            continue
        rows[meta.label] = sorted(repr(r) for r in model._base_manager.values_list())
    return rows


@dataclass
class World:
    root: User
    secrets: list[str]
    rows_before: dict[str, list[str]]
    cwd: Path
    log_file: Path

    def side_effects(self) -> list[str]:
        found = []
        after = _model_rows()
        for label, before in self.rows_before.items():
            now = after.get(label, [])
            if now != before:
                gone = sorted(set(before) - set(now))
                new = sorted(set(now) - set(before))
                found.append(f"rows of {label} changed: removed {gone}, added {new}")
        created = sorted(p.name for p in self.cwd.iterdir())
        if created:
            found.append(f"files appeared in the working directory: {created}")
        log_bytes = self.log_file.stat().st_size if self.log_file.exists() else 0
        if log_bytes > 4 * conf.get("MAX_OUTPUT_BYTES"):
            found.append(f"the scheduler log grew by {log_bytes} bytes")
        return found


@pytest.fixture
def world(settings, monkeypatch, tmp_path) -> Iterator[World]:
    assert settings.SECRET_KEY.startswith("test-secret-key"), "tests/settings.py not in use"
    settings.SANDBOX_ATTACK_CANARY = SETTING_CANARY
    monkeypatch.setenv("SANDBOX_ATTACK_CANARY", ENV_CANARY)

    root = User.objects.create_superuser("root", "root@example.com", ROOT_PASSWORD)
    acme = Company.objects.create(name="Acme", website="https://acme.example")
    ada = Contact.objects.create(company=acme, name="Ada", email="ada@example.com")
    Ticket.objects.create(
        title="Printer on fire", status="open", company=acme, contact=ada, assignee=root
    )
    Ticket.objects.create(title="Old", status="resolved", company=acme, assignee=root)

    # The child inherits the working directory and the logging setup of this process.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    log_file = log_dir / "snippets.log"
    handler = logging.FileHandler(log_file, delay=True)
    monkeypatch.setattr(logging.getLogger("scheduled_tasks"), "handlers", [handler])

    password_hash = root.password
    secrets = [
        django_settings.SECRET_KEY,
        SETTING_CANARY,
        ENV_CANARY,
        ROOT_PASSWORD,
        password_hash,
        password_hash.rsplit("$", 1)[-1],
    ]
    yield World(root, secrets, _model_rows(), cwd, log_file)
    handler.close()


# --- the test --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ATTACKS)
def test_attack_is_blocked(case: Attack, world: World):
    try:
        problems = [str(p) for p in check_code(case.code)]
    except BaseException as exc:  # check_code must never raise
        pytest.fail(f"check_code() raised {type(exc).__name__}: {exc}"[:500])
    result = run_snippet(case.code, timeout=case.timeout)

    # Every finding is collected, so a hole's report says all it did (ran, leaked, wrote).
    findings = []
    if case.compile_time and not problems:
        findings.append("the policy should refuse this at compile time")

    # Blocked: refused at compile time, or the run failed / was killed.
    if result.status not in BLOCKED:
        findings.append(f"the attack ran to completion (status {result.status!r})")

    # No secret anywhere in what the snippet's author gets to see.
    seen = result.output + result.error + "\n".join(problems)
    findings += [f"a secret leaked: {s[:12]}..." for s in world.secrets if s in seen]

    # A clear refusal, never a dump of Python internals.
    told = result.error + "\n".join(problems)
    findings += [f"internals in the error: {m!r}" for m in DUMP_MARKERS if m in told]
    if not case.resource and result.status == "failed" and not re.search(r"Line \d+", told):
        findings.append("the error names no line")
    if case.expect and case.expect not in told:
        findings.append(f"the error does not name {case.expect!r}")

    # Nothing happened on the side.
    findings += world.side_effects()
    if case.check is not None:
        try:
            case.check(result, problems, world)
        except AssertionError as exc:
            findings.append(f"{case.check.__name__}: {exc}")

    shown = (
        f"status={result.status} truncated={result.output_truncated}\n"
        f"output={result.output[:300]!r}\nerror={result.error[-300:]!r}\nproblems={problems}"
    )
    assert not findings, "\n".join(findings) + "\n" + shown


def test_the_table_is_big_enough():
    assert len(ATTACKS) >= 60
    assert len({p.id for p in ATTACKS}) == len(ATTACKS)
