"""Value-family attacks: what goes into the ORM and what comes back out of it.

Going in, whatever a snippet hands the ORM (model constructor, attribute write, ``setattr``,
``create``, ``get_or_create``/``update_or_create`` lookups and defaults, ``update``,
``filter``/``exclude``/``Q`` values) is accepted only as an exact plain value, a plain
list/tuple/dict of those (rebuilt), a proxy where the field is a relation (a proxied queryset or a
list of proxies for ``__in``) or a sandbox helper. Subclasses of plain types (``class MyStr(str)``,
namedtuples...), duck-typed objects (``resolve_expression``, ``as_sql``, ``get_compiler``,
``__html__``, ``prepare_database_save``), generators and iterators are refused with a
``TypeError`` naming the field; a proxy given to a non-relation field is refused;
``get_or_create`` lookups cannot set the primary key.

Coming out, reading a field of a proxied instance gives an exact plain value or a proxy, never a
stored foreign object: today ``Ticket(title=User.objects.first()).title`` is the *real* User
(``.password``), and a namedtuple whose ``resolve_expression`` field defaults to a snippet function
is called back by Django with the real ``Query`` (``.get_compiler(...).connection``: any SQL).

Snippets cannot define classes yet (``class`` fails with a NameError); the subclass and duck-typed
attacks use ``class`` statements anyway — they must be blocked either way — and the same shapes
through ``collections.namedtuple``, which snippets can import today.

Every case gets the checks of ``tests/sandbox_attack_kit.py`` (no secret, no internals, no side
effect, every object reached vetted, no snippet function called back: ``HOOK-CALLED``) plus its
own: a refused write must fail naming the field (and print nothing after it: ``AFTER-REFUSAL``);
a read-back case must complete with only vetted values read. ``LEGIT`` lists what must keep
working.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import User

from scheduled_tasks.sandbox import run_snippet
from tests.sandbox_attack_kit import HOOK_MARKER, World, findings, make_world, shown, with_probe
from ticketproo.crm.models import Company, Ticket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(settings, monkeypatch, tmp_path) -> Iterator[World]:
    yield from make_world(settings, monkeypatch, tmp_path)


AFTER = "AFTER-REFUSAL"
# Refusals of the class-based shapes before the value check sees them: a base that is not the
# snippet's own class or an exception, and method names with underscores (compile time).
# Either blocks the attack; so does the value check.
CLASS_REFUSED = ("cannot derive from", "invalid variable name because it starts with")


@dataclass(frozen=True)
class ValueAttack:
    code: str
    # The run must fail and its error name every fragment (the refused field)...
    refuse: tuple[str, ...] = ()
    # ... as a TypeError ...
    typeerror: bool = False
    # ... unless it names one of these instead (an earlier, broader refusal).
    alt: tuple[str, ...] = ()
    # The run must fail (for any reason).
    fail: bool = False
    # The run must complete (read-back cases).
    complete: bool = False
    # Database checks after the run: a list of problems.
    then: Callable[[], list[str]] | None = None
    markers: tuple[str, ...] = field(default=(HOOK_MARKER, AFTER))


def case(case_id: str, code: str, **kw):
    return pytest.param(ValueAttack(code, **kw), id=case_id)


def refused(case_id: str, code: str, fld: str, *, typeerror: bool = False, **kw):
    """``code`` hands the ORM a forbidden value for ``fld``: the run fails naming ``fld``."""
    return case(case_id, code, refuse=(fld,), typeerror=typeerror, **kw)


# --- database checks ------------------------------------------------------------------------


def tickets_untouched() -> list[str]:
    titles = sorted(Ticket.objects.values_list("title", flat=True))
    descriptions = sorted(Ticket.objects.values_list("description", flat=True))
    problems = []
    if titles != ["Old", "Printer on fire"]:
        problems.append(f"ticket titles changed: {titles}")
    if descriptions != ["", ""]:
        problems.append(f"ticket descriptions changed: {descriptions}")
    return problems


def no_ticket_999() -> list[str]:
    found = list(Ticket.objects.filter(pk=999).values_list("pk", "title"))
    found += list(Company.objects.filter(pk=999).values_list("pk", "name"))
    return [f"a row was created with the primary key the snippet chose: {found}"] if found else []


def old_ticket_kept() -> list[str]:
    problems = tickets_untouched()
    if Ticket.objects.filter(title="Overwritten").exists():
        problems.append("a ticket titled 'Overwritten' exists")
    return problems


def no_new_ticket() -> list[str]:
    return tickets_untouched() + (
        [f"{Ticket.objects.count()} tickets"] if Ticket.objects.count() != 2 else []
    )


# --- snippet pieces -------------------------------------------------------------------------

U = "User.objects.first()"
T = "Ticket.objects.get(title='Old')"
# What an attacker does with a stored foreign object it reads back.
DIG = f"print('{AFTER}')\nprobe('read', v)\nprint('HASH', v.password)\n"
DIG_T = f"print('{AFTER}')\nprobe('read', v)\nprint('HASH', v.assignee.password)\n"
# (snippet text, run -- or refused -- inside the sandbox)
DIG_QS = (
    f"print('{AFTER}')\nprobe('read', v)\n"  # noqa: S608
    "cur = v.query.get_compiler('default').connection.cursor()\n"
    "cur.execute('SELECT password FROM auth_user')\nprint(cur.fetchall())\n"
)
# A namedtuple whose resolve_expression (as_sql, ...) defaults to a snippet function: the
# sandbox rebuilds the tuple from its items (type(value)(gen)) and the default stays.
NT_HOOK = """\
from collections import namedtuple
def hook(*args, **kwargs):
    print('HOOK-CALLED')
    for a in list(args) + list(kwargs.values()):
        probe('hook-arg', a)
    conn = args[0].get_compiler('default').connection
    cur = conn.cursor()
    cur.execute('SELECT password FROM auth_user')
    print(cur.fetchall())
    return 'Old'
X = namedtuple('X', ['a', '{attr}'], defaults=[hook])
"""
# The same with classes (refused today by the class statement; by the value check later).
DUCK = """\
class Evil:
    def {attr}(self, *args, **kwargs):
        print('HOOK-CALLED')
        probe('hook-arg', args[0] if args else None)
        return self
"""
DEEP_LIST = "x = 'Old'\nfor i in range(100000):\n    x = [x]\n"
DEEP_DICT = "x = 'Old'\nfor i in range(100000):\n    x = {'k': x}\n"
TICKET_FIELDS = (
    "['id', 'pk', 'title', 'description', 'status', 'company', 'contact', 'assignee', "
    "'created_at', 'updated_at', 'resolved_at', 'company_id', 'contact_id', 'assignee_id']"
)
READ_ALL = (
    "def read_all(label, obj, names):\n"
    "    for name in names:\n"
    "        probe(label + '.' + name, getattr(obj, name))\n"
    f"TICKET_FIELDS = {TICKET_FIELDS}\n"
)


def nt(attr: str, use: str) -> str:
    return NT_HOOK.format(attr=attr) + use + f"\nprint('{AFTER}')"


def duck(attr: str, use: str) -> str:
    return DUCK.format(attr=attr) + use + f"\nprint('{AFTER}')"


ATTACKS = [
    # --- a proxy stored in a non-relation field, read back -----------------------------------
    refused("constructor-title-user", f"t = Ticket(title={U})\nv = t.title\n" + DIG, "title"),
    refused(
        "constructor-description-ticket",
        f"t = Ticket(title='x', description={T})\nv = t.description\n" + DIG_T,
        "description",
    ),
    refused(
        "assign-title-user",
        f"t = Ticket.objects.get(title='Old')\nt.title = {U}\nv = t.title\n" + DIG,
        "title",
        then=tickets_untouched,
    ),
    refused(
        "setattr-title-user",
        f"t = Ticket.objects.get(title='Old')\nsetattr(t, 'title', {U})\nv = t.title\n" + DIG,
        "title",
    ),
    refused(
        "assign-company-name-user",
        f"c = Company.objects.get(name='Globex')\nc.name = {U}\nv = c.name\n" + DIG,
        "name",
    ),
    refused("list-around-user", f"t = Ticket(title=[{U}])\nv = t.title[0]\n" + DIG, "title"),
    refused("tuple-around-user", f"t = Ticket(title=('a', {U}))\nv = t.title[1]\n" + DIG, "title"),
    refused(
        "nested-list-user",
        f"t = Ticket(title=[['a', [{U}]]])\nv = t.title[0][1][0]\n" + DIG,
        "title",
    ),
    refused(
        "dict-value-user", f"t = Ticket(title={{'u': {U}}})\nv = t.title['u']\n" + DIG, "title"
    ),
    refused(
        "dict-key-user",
        f"t = Ticket(title={{{U}: 1}})\nv = list(t.title)[0]\n" + DIG,
        "title",
    ),
    refused(
        "create-returned-instance-user",
        f"t = Ticket.objects.create(title={U})\nv = t.title\n" + DIG,
        "title",
        then=no_new_ticket,
    ),
    refused(
        "create-choices-field-user",
        f"t = Ticket.objects.create(title='n', status={U})\nv = t.status\n" + DIG,
        "status",
        then=no_new_ticket,
    ),
    refused(
        "create-contact-email-user",
        f"c = Contact.objects.create(company=Company.objects.first(), name='x', email={U})\n"
        "v = c.email\n" + DIG,
        "email",
    ),
    refused(
        "constructor-title-queryset",
        "t = Ticket(title=User.objects.filter(username='root'))\nv = t.title\n" + DIG_QS,
        "title",
    ),
    refused(
        "create-company-name-queryset",
        "c = Company.objects.create(name=Ticket.objects.all())\nv = c.name\n" + DIG_QS,
        "name",
    ),
    refused(
        "get-or-create-lookup-user",
        f"t, created = Ticket.objects.get_or_create(title={U})\nv = t.title\n" + DIG,
        "title",
        then=no_new_ticket,
    ),
    refused(
        "get-or-create-defaults-user",
        "t, created = Ticket.objects.get_or_create(title='Brand new', "
        f"defaults={{'description': {U}}})\nv = t.description\n" + DIG,
        "description",
        then=no_new_ticket,
    ),
    refused(
        "update-or-create-defaults-user",
        "t, created = Ticket.objects.update_or_create(title='Old', "
        f"defaults={{'description': {U}}})\nv = t.description\n" + DIG,
        "description",
        alt=("update_or_create",),
        then=tickets_untouched,
    ),
    refused(
        "update-or-create-lookup-user",
        f"t, created = Ticket.objects.update_or_create(title={U})\nv = t.title\n" + DIG,
        "title",
        alt=("update_or_create",),
        then=no_new_ticket,
    ),
    refused(
        "update-title-user",
        f"print(Ticket.objects.filter(title='Old').update(title={U}))\nprint('{AFTER}')",
        "title",
        then=tickets_untouched,
    ),
    refused(
        "update-description-list-of-users",
        f"print(Ticket.objects.update(description=[{U}, {T}]))\nprint('{AFTER}')",
        "description",
        then=tickets_untouched,
    ),
    refused(
        "filter-title-user",
        f"print(Ticket.objects.filter(title={U}).count())\nprint('{AFTER}')",
        "title",
    ),
    refused(
        "exclude-description-ticket",
        f"print(Ticket.objects.exclude(description={T}).count())\nprint('{AFTER}')",
        "description",
    ),
    refused(
        "q-title-user",
        f"print(Ticket.objects.filter(Q(status='open') | Q(title={U})).count())\nprint('{AFTER}')",
        "title",
    ),
    refused(
        "filter-title-in-users",
        f"print(Ticket.objects.filter(title__in=[{U}]).count())\nprint('{AFTER}')",
        "title",
    ),
    refused(
        "filter-title-in-queryset",
        f"print(Ticket.objects.filter(title__in=User.objects.all()).count())\nprint('{AFTER}')",
        "title",
    ),
    refused(
        "values-then-filter-user",
        f"print(list(Ticket.objects.values('title').filter(title={U})))\nprint('{AFTER}')",
        "title",
    ),
    # --- callables and proxies of the wrong model where the ORM takes values ---------------------
    refused(
        "get-or-create-defaults-callable",
        # Django calls callables in defaults (resolve_callables): a snippet function would run
        # inside the ORM, and its return value would skip every check.
        "def hook():\n    print('HOOK-CALLED')\n    return User.objects.first()\n\n"
        "t, created = Ticket.objects.get_or_create(title='cb', defaults={'description': hook})\n"
        "v = t.description\n" + DIG,
        "description",
        typeerror=True,
        then=no_new_ticket,
    ),
    refused(
        "get-or-create-defaults-proxy-method",
        "t, created = Ticket.objects.get_or_create(title='cb', "
        "defaults={'description': User.objects.first})\nv = t.description\n" + DIG,
        "description",
        typeerror=True,
        then=no_new_ticket,
    ),
    refused(
        "update-or-create-create-defaults-user",
        "t, created = Ticket.objects.update_or_create(title='brand new', "
        f"create_defaults={{'description': {U}}})\nv = t.description\n" + DIG,
        "description",
        alt=("update_or_create", "create_defaults"),
        then=no_new_ticket,
    ),
    refused(
        "update-fk-proxy-of-wrong-model",
        # A proxy, but of User, for the Company foreign key: update() would store the user's id.
        "print(Ticket.objects.filter(title='Old').update(company=User.objects.get(username="
        f"'alice')))\nprint('{AFTER}')",
        "company",
        then=lambda: (
            []
            if Ticket.objects.get(title="Old").company.name == "Acme"
            else [f"Old's company_id is now {Ticket.objects.get(title='Old').company_id}"]
        ),
    ),
    refused(
        "create-fk-proxy-of-wrong-model",
        f"t = Ticket.objects.create(title='wrong', contact=Company.objects.first())\n"
        f"print('{AFTER}')",
        "contact",
        then=no_new_ticket,
    ),
    # --- get_or_create choosing the primary key or a read-only field -----------------------------
    case(
        "get-or-create-sets-pk",
        "t, created = Ticket.objects.get_or_create(pk=999, defaults={'title': 'x'})\n"
        "probe('pk', t.pk)",
        then=no_ticket_999,
    ),
    case(
        "get-or-create-sets-id",
        "t, created = Ticket.objects.get_or_create(id=999, title='x')\nprobe('pk', t.pk)",
        then=no_ticket_999,
    ),
    case(
        "get-or-create-company-sets-id",
        "c, created = Company.objects.get_or_create(id=999, name='Newco')\nprobe('pk', c.pk)",
        then=no_ticket_999,
    ),
    case(
        "get-or-create-pk-collision-overwrites",
        "old = Ticket.objects.get(title='Old')\n"
        "t, created = Ticket.objects.get_or_create(pk=old.pk, title='Overwritten')\n"
        "probe('t', t)",
        then=old_ticket_kept,
    ),
    case(
        "get-or-create-fk-attname",
        "t, created = Ticket.objects.get_or_create(title='x', assignee_id=1)",
        fail=True,
        then=no_new_ticket,
    ),
    case(
        "get-or-create-read-only-user",
        "u, created = User.objects.get_or_create(username='evil', defaults={'is_staff': True})\n"
        "print(created)",
        fail=True,
    ),
    # --- subclasses of plain types (class statements: refused either way) ------------------------
    refused(
        "str-subclass-extra-attribute",
        "class MyStr(str):\n    evil = 'x'\n\n"
        f"t = Ticket(title=MyStr('hello'))\nprint('{AFTER}')\nprint(t.title.evil)",
        "title",
        typeerror=True,
        alt=CLASS_REFUSED,
    ),
    refused(
        "str-subclass-str-override-filter",
        "class MyStr(str):\n    def __str__(self):\n        print('HOOK-CALLED')\n"
        "        return 'Old'\n\n"
        f"print(Ticket.objects.filter(title=MyStr('x')).count())\nprint('{AFTER}')",
        "title",
        typeerror=True,
        alt=CLASS_REFUSED,
    ),
    refused(
        "str-subclass-eq-override-create",
        "class MyStr(str):\n    def __eq__(self, other):\n        print('HOOK-CALLED')\n"
        "        return True\n    def __hash__(self):\n        return 1\n\n"
        f"t = Ticket.objects.create(title=MyStr('x'))\nprint('{AFTER}')",
        "title",
        typeerror=True,
        alt=CLASS_REFUSED,
        then=no_new_ticket,
    ),
    refused(
        "int-subclass-index-override",
        "class MyInt(int):\n    def __index__(self):\n        print('HOOK-CALLED')\n"
        "        return 1\n    def __int__(self):\n        print('HOOK-CALLED')\n"
        f"        return 1\n\nprint(Ticket.objects.filter(id=MyInt(5)).count())\n"
        f"print('{AFTER}')",
        "id",
        typeerror=True,
        alt=CLASS_REFUSED,
    ),
    refused(
        "tuple-subclass-iter-override",
        "class T(tuple):\n    def __iter__(self):\n        print('HOOK-CALLED')\n"
        "        return iter(['Old'])\n\n"
        f"print(Ticket.objects.filter(title__in=T(('x',))).count())\nprint('{AFTER}')",
        "title",
        typeerror=True,
        alt=CLASS_REFUSED,
    ),
    refused(
        "list-subclass-update",
        "class L(list):\n    def __repr__(self):\n        print('HOOK-CALLED')\n"
        f"        return 'x'\n\nprint(Ticket.objects.update(description=L(['a'])))\n"
        f"print('{AFTER}')",
        "description",
        typeerror=True,
        alt=CLASS_REFUSED,
        then=tickets_untouched,
    ),
    refused(
        "dict-subclass-constructor",
        "class D(dict):\n    def items(self):\n        print('HOOK-CALLED')\n"
        f"        return []\n\nt = Ticket(title=D(a=1))\nprint('{AFTER}')",
        "title",
        typeerror=True,
        alt=CLASS_REFUSED,
    ),
    # --- duck-typed objects the ORM would call back (class statements) ---------------------------
    refused(
        "duck-resolve-expression-filter",
        duck("resolve_expression", "print(Ticket.objects.filter(title=Evil()).count())"),
        "title",
        typeerror=True,
        alt=CLASS_REFUSED,
    ),
    refused(
        "duck-as-sql-exclude",
        duck("as_sql", "print(Ticket.objects.exclude(description=Evil()).count())"),
        "description",
        typeerror=True,
        alt=CLASS_REFUSED,
    ),
    refused(
        "duck-get-compiler-q",
        duck("get_compiler", "print(Ticket.objects.filter(Q(title__in=Evil())).count())"),
        "title",
        typeerror=True,
        alt=CLASS_REFUSED,
    ),
    refused(
        "duck-html-create",
        duck("__html__", "Ticket.objects.create(title=Evil())"),
        "title",
        typeerror=True,
        alt=CLASS_REFUSED,
        then=no_new_ticket,
    ),
    refused(
        "duck-html-attribute-filter",
        # The same without a dunder method name: a namespace-less holder of __html__.
        "class Evil:\n    pass\n\ne = Evil()\nsetattr(e, '__html__', lambda: 'Old')\n"
        f"print(Ticket.objects.filter(title=e).count())\nprint('{AFTER}')",
        "title",
        typeerror=True,
        alt=(*CLASS_REFUSED, "__html__"),
    ),
    refused(
        "duck-prepare-database-save-update-fk",
        duck("prepare_database_save", "print(Ticket.objects.update(company=Evil()))"),
        "company",
        alt=CLASS_REFUSED,
    ),
    refused(
        "duck-resolve-expression-values-filter",
        duck(
            "resolve_expression",
            "print(list(Ticket.objects.values('title').filter(status=Evil())))",
        ),
        "status",
        typeerror=True,
        alt=CLASS_REFUSED,
    ),
    # --- the same through namedtuple (works today) -----------------------------------------------
    refused(
        "namedtuple-resolve-expression-filter",
        nt("resolve_expression", "print(Ticket.objects.filter(title=X('a')).count())"),
        "title",
        typeerror=True,
    ),
    refused(
        "namedtuple-resolve-expression-exclude",
        nt("resolve_expression", "print(Ticket.objects.exclude(status=X('a')).count())"),
        "status",
        typeerror=True,
    ),
    refused(
        "namedtuple-resolve-expression-q",
        nt("resolve_expression", "print(Company.objects.filter(Q(name=X('a'))).count())"),
        "name",
        typeerror=True,
    ),
    refused(
        "namedtuple-resolve-expression-in-list",
        nt("resolve_expression", "print(Ticket.objects.filter(title__in=[X('a')]).count())"),
        "title",
        typeerror=True,
    ),
    refused(
        "namedtuple-resolve-expression-create",
        nt("resolve_expression", "Ticket.objects.create(title=X('a'))"),
        "title",
        typeerror=True,
        then=no_new_ticket,
    ),
    refused(
        "namedtuple-resolve-expression-update",
        nt("resolve_expression", "print(Ticket.objects.update(description=X('a')))"),
        "description",
        typeerror=True,
        then=tickets_untouched,
    ),
    refused(
        "namedtuple-resolve-expression-get-or-create-defaults",
        nt(
            "resolve_expression",
            "Ticket.objects.get_or_create(title='nt', defaults={'description': X('a')})",
        ),
        "description",
        typeerror=True,
        then=no_new_ticket,
    ),
    refused(
        "namedtuple-resolve-expression-constructor-save",
        nt("resolve_expression", "t = Ticket(title='nt', description=X('a'))\nt.save()"),
        "description",
        typeerror=True,
        then=no_new_ticket,
    ),
    refused(
        "namedtuple-as-sql-in",
        nt("as_sql", "print(Ticket.objects.filter(title__in=X('a')).count())"),
        "title",
        typeerror=True,
    ),
    refused(
        "namedtuple-get-compiler-in",
        nt("get_compiler", "print(Ticket.objects.filter(id__in=X(1)).count())"),
        "id",
        typeerror=True,
    ),
    refused(
        "namedtuple-prepare-database-save-update",
        nt("prepare_database_save", "print(Ticket.objects.update(title=X('a')))"),
        "title",
        typeerror=True,
        then=tickets_untouched,
    ),
    refused(
        "namedtuple-plain-in",
        "from collections import namedtuple\nP = namedtuple('P', 'a b')\n"
        f"print(Ticket.objects.filter(title__in=P('Old', 'z')).count())\nprint('{AFTER}')",
        "title",
        typeerror=True,
    ),
    refused(
        "namedtuple-plain-constructor",
        "from collections import namedtuple\nP = namedtuple('P', 'a b')\n"
        f"t = Ticket(title=P('a', 'b'))\nprint('{AFTER}')\nprobe('read', t.title)",
        "title",
        typeerror=True,
    ),
    # --- generators and iterators as __in values -------------------------------------------------
    refused(
        "generator-in",
        "def gen():\n    print('HOOK-CALLED')\n    yield 1\n\n"
        f"print(Ticket.objects.filter(id__in=gen()).count())\nprint('{AFTER}')",
        "id",
        typeerror=True,
    ),
    refused(
        "generator-expression-in",
        f"print(Ticket.objects.filter(id__in=(i for i in [1, 2])).count())\nprint('{AFTER}')",
        "id",
        typeerror=True,
    ),
    refused(
        "map-in",
        f"print(Ticket.objects.filter(title__in=map(str, ['Old'])).count())\nprint('{AFTER}')",
        "title",
        typeerror=True,
    ),
    refused(
        "iter-in",
        f"print(Ticket.objects.filter(title__in=iter(['Old'])).count())\nprint('{AFTER}')",
        "title",
        typeerror=True,
    ),
    refused(
        "dict-keys-in",
        f"print(Ticket.objects.filter(title__in={{'Old': 1}}.keys()).count())\nprint('{AFTER}')",
        "title",
        typeerror=True,
    ),
    refused(
        "itertools-chain-in",
        "import itertools\n"
        "print(Ticket.objects.filter(title__in=itertools.chain(['Old'], ['x'])).count())\n"
        f"print('{AFTER}')",
        "title",
        typeerror=True,
    ),
    # --- kwargs with keys that are not plain str ------------------------------------------------
    case("int-key-kwargs", "print(Ticket.objects.filter(**{1: 'x'}).count())", fail=True),
    case(
        "enum-member-key-kwargs",
        "print(Ticket.objects.filter(**{Ticket.Status.OPEN: 'x'}).count())",
        fail=True,
    ),
    case(
        "str-subclass-key-kwargs",
        "class K(str):\n    def split(self, sep=None):\n        print('HOOK-CALLED')\n"
        "        return ['title']\n\n"
        "print(Ticket.objects.filter(**{K('assignee__password__startswith'): 'md5'}).count())",
        fail=True,
    ),
    case("tuple-key-q", "print(Q(**{('title',): 'x'}))", fail=True),
    # --- depth bombs ------------------------------------------------------------------------------
    case(
        "deep-list-filter-in",
        DEEP_LIST + f"print(Ticket.objects.filter(title__in=x).count())\nprint('{AFTER}')",
        fail=True,
    ),
    case(
        "deep-list-constructor",
        DEEP_LIST + f"t = Ticket(title=x)\nprint('{AFTER}')",
        fail=True,
    ),
    case(
        "deep-dict-update",
        DEEP_DICT + f"print(Ticket.objects.update(description=x))\nprint('{AFTER}')",
        fail=True,
        then=tickets_untouched,
    ),
    case(
        "deep-tuple-q",
        "x = ('Old',)\nfor i in range(100000):\n    x = (x,)\n"
        f"print(Ticket.objects.filter(Q(title__in=x)).count())\nprint('{AFTER}')",
        fail=True,
    ),
    # --- read back every field after every write path (plain values: must work) ------------------
    case(
        "readback-constructor-and-save",
        READ_ALL + "t = Ticket(title='T1', description='d', status='open', "
        "company=Company.objects.get(name='Acme'), contact=Contact.objects.first(), "
        "assignee=User.objects.first(), resolved_at=timezone.now())\n"
        "read_all('new', t, TICKET_FIELDS)\nt.save()\nread_all('saved', t, TICKET_FIELDS)\n"
        "read_all('db', Ticket.objects.get(pk=t.pk), TICKET_FIELDS)\n"
        "probe('display', t.get_status_display())",
        complete=True,
    ),
    case(
        "readback-assign-save-refresh",
        READ_ALL + "t = Ticket.objects.get(title='Old')\nt.title = 'Older'\n"
        "t.description = 'x' * 3\nt.status = Ticket.Status.CLOSED\nt.company = None\n"
        "t.assignee = User.objects.get(username='alice')\nt.resolved_at = None\n"
        "read_all('assigned', t, TICKET_FIELDS)\nt.save()\nt.refresh_from_db()\n"
        "read_all('refreshed', t, TICKET_FIELDS)",
        complete=True,
    ),
    case(
        "readback-setattr",
        READ_ALL + "t = Ticket.objects.get(title='Old')\n"
        "for name, value in [('title', 'S'), ('description', 'D'), ('status', 'open'), "
        "('contact', Contact.objects.first()), ('resolved_at', timezone.now())]:\n"
        "    setattr(t, name, value)\nread_all('set', t, TICKET_FIELDS)\nt.save()\n"
        "read_all('db', Ticket.objects.get(pk=t.pk), TICKET_FIELDS)",
        complete=True,
    ),
    case(
        "readback-create-and-get-or-create",
        READ_ALL + "t = Ticket.objects.create(title='C1', company=Company.objects.first())\n"
        "read_all('created', t, TICKET_FIELDS)\n"
        "g, made = Ticket.objects.get_or_create(title='G1', defaults={'description': 'dd', "
        "'assignee': User.objects.first()})\nprobe('made', made)\n"
        "read_all('goc', g, TICKET_FIELDS)\n"
        "g2, made2 = Ticket.objects.get_or_create(title='G1')\nread_all('goc2', g2, TICKET_FIELDS)",
        complete=True,
    ),
    case(
        "readback-odd-plain-values",
        # Plain values that are not strings: kept as given on the instance, plain either way.
        READ_ALL + "import decimal\n"
        "for v in [1, 2.5, True, decimal.Decimal('1.5'), ['a', 1], ('b', 2), {'k': [1]}]:\n"
        "    t = Ticket(title=v, description=v)\n    read_all('odd', t, ['title', 'description'])",
        complete=True,
    ),
    case(
        "readback-update-values-aggregate",
        "n = Ticket.objects.filter(title='Old').update(description='u', status='closed', "
        "resolved_at=timezone.now(), company=Company.objects.get(name='Globex'))\nprobe('n', n)\n"
        "for row in Ticket.objects.values():\n    probe('row', row)\n"
        "for row in Ticket.objects.values_list('title', 'company', 'assignee', 'created_at'):\n"
        "    probe('tuple', row)\n"
        "probe('agg', Ticket.objects.aggregate(n=Count('id'), first=Min('created_at'), "
        "last=Max('resolved_at')))\n"
        "probe('annot', list(Ticket.objects.values('status').annotate(n=Count('id'))))",
        complete=True,
    ),
    case(
        "readback-related-and-other-models",
        "acme = Company.objects.get(name='Acme')\n"
        "for name in ['id', 'name', 'website', 'is_active', 'contract_ends_on', 'created_at', "
        "'contacts', 'tickets']:\n    probe('company.' + name, getattr(acme, name))\n"
        "for t in acme.tickets.all():\n    probe('ticket', t)\n    probe('ticket.company', t.company)\n"
        "c = acme.contacts.first()\n"
        "for name in ['id', 'company', 'name', 'email', 'phone', 'created_at', 'tickets']:\n"
        "    probe('contact.' + name, getattr(c, name))\n"
        "u = User.objects.get(username='root')\n"
        "for name in ['id', 'username', 'first_name', 'last_name', 'email', 'is_active', "
        "'is_staff', 'date_joined']:\n    probe('user.' + name, getattr(u, name))",
        complete=True,
    ),
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_value_attack_is_blocked(attack: ValueAttack, world):
    result = run_snippet(with_probe(attack.code), timeout=10)
    found = findings(result, world, markers=attack.markers)
    if result.status == "timeout":
        found.append("the run timed out")
    if attack.refuse or attack.fail:
        if result.status != "failed":
            found.append(f"the forbidden value was accepted (status {result.status!r})")
        elif "Line " not in result.error:
            found.append("the error names no line")
    if attack.refuse and result.status == "failed":
        # The refusal itself: the error's last line (the lines above echo the snippet's source).
        last = result.error.strip().splitlines()[-1] if result.error.strip() else ""
        wanted = list(attack.refuse) + (["TypeError"] if attack.typeerror else [])
        named = all(w in last for w in wanted)
        if not named and not any(a in last for a in attack.alt):
            found.append(f"the refusal does not name {wanted} (nor any of {list(attack.alt)})")
    if attack.complete and result.status != "completed":
        found.append("a legitimate write/read-back did not complete")
    if attack.then is not None:
        found += attack.then()
    assert not found, "\n".join(found) + "\n" + shown(result)


def test_the_table_is_big_enough():
    assert len(ATTACKS) >= 40
    assert len({p.id for p in ATTACKS}) == len(ATTACKS)


# --- what must keep working -------------------------------------------------------------------


@dataclass(frozen=True)
class Legit:
    code: str
    output: str
    then: Callable[[], None] | None = None


def legit(case_id: str, code: str, output: str, **kw):
    return pytest.param(Legit(code, output, **kw), id=case_id)


def _old_moved_to_globex() -> None:
    assert Ticket.objects.get(title="Old").company.name == "Globex"


def _weekly_created() -> None:
    weekly = Ticket.objects.get(title="Weekly")
    assert (weekly.description, weekly.company.name, weekly.assignee.username) == (
        "auto",
        "Acme",
        "alice",
    )


def _old_deleted() -> None:
    assert not Ticket.objects.filter(title="Old").exists()
    assert Ticket.objects.count() == 1


def _old_closed() -> None:
    assert Ticket.objects.get(title="Old").status == "closed"


LEGIT = [
    legit(
        "sorted-key-over-queryset",
        "print([t.title for t in sorted(Ticket.objects.all(), key=lambda t: t.title)])\n"
        "print([c.name for c in sorted(Company.objects.all(), key=lambda c: c.name, "
        "reverse=True)])",
        "['Old', 'Printer on fire']\n['Globex', 'Acme']\n",
    ),
    legit(
        "min-max-key-over-queryset",
        "print(min(Ticket.objects.all(), key=lambda t: t.title).title, "
        "max(Company.objects.all(), key=lambda c: c.name).name)",
        "Old Globex\n",
    ),
    legit(
        "namedtuple-of-plain-values",
        "from collections import namedtuple\nRow = namedtuple('Row', 'title status')\n"
        "rows = [Row(t.title, t.status) for t in Ticket.objects.order_by('title')]\n"
        "print(rows)\nprint(rows[0].title, rows[1][1], len(rows))",
        "[Row(title='Old', status='resolved'), Row(title='Printer on fire', status='open')]\n"
        "Old open 2\n",
    ),
    legit(
        "counter-of-plain-values",
        "from collections import Counter\n"
        "c = Counter(Ticket.objects.values_list('status', flat=True))\n"
        "print(sorted(c.items()), c['open'], c.most_common(1)[0][1])",
        "[('open', 1), ('resolved', 1)] 1 1\n",
    ),
    legit(
        "list-of-proxies-in",
        "acme = Company.objects.get(name='Acme')\nroot = User.objects.get(username='root')\n"
        "print(Ticket.objects.filter(company__in=[acme]).count(), "
        "Ticket.objects.filter(assignee__in=[root]).count(), "
        "Ticket.objects.filter(company__in=Company.objects.filter(name='Acme')).count(), "
        "Ticket.objects.filter(Q(company__in=[acme]) & Q(status='open')).count())",
        "2 2 2 1\n",
    ),
    legit(
        "plain-lists-and-tuples-in",
        "print(Ticket.objects.filter(status__in=['open', 'closed']).count(), "
        "Ticket.objects.filter(status__in=('resolved',)).count(), "
        "Ticket.objects.exclude(title__in=['Old']).count())",
        "1 1 1\n",
    ),
    legit(
        "fk-assignment",
        "t = Ticket.objects.get(title='Old')\nt.company = Company.objects.get(name='Globex')\n"
        "t.save()\nprint(t.company.name, Ticket.objects.get(title='Old').company.name)",
        "Globex Globex\n",
        then=_old_moved_to_globex,
    ),
    legit(
        "get-or-create-defaults",
        "t, created = Ticket.objects.get_or_create(title='Weekly', defaults={'description': "
        "'auto', 'company': Company.objects.get(name='Acme'), "
        "'assignee': User.objects.get(username='alice')})\n"
        "print(created, t.description, t.company.name, t.assignee.username)\n"
        "again, created2 = Ticket.objects.get_or_create(title='Weekly', "
        "defaults={'description': 'other'})\nprint(created2, again.description, again.pk == t.pk)",
        "True auto Acme alice\nFalse auto True\n",
        then=_weekly_created,
    ),
    legit(
        "logger-percent-arguments",
        "logger.info('%s tickets, %d open, first %s', Ticket.objects.count(), "
        "Ticket.objects.filter(status='open').count(), Ticket.objects.get(title='Old'))\n"
        "logger.warning('%(n)s companies', {'n': Company.objects.count()})",
        "[INFO] 2 tickets, 1 open, first Old\n[WARNING] 2 companies\n",
    ),
    legit(
        "queryset-delete-returns-django-shape",
        "print(Ticket.objects.filter(status='resolved').delete())",
        "(1, {'crm.Ticket': 1})\n",
        then=_old_deleted,
    ),
    legit(
        "instance-delete-returns-django-shape",
        "n, per_model = Ticket.objects.get(title='Old').delete()\nprint(n, per_model)",
        "1 {'crm.Ticket': 1}\n",
        then=_old_deleted,
    ),
    legit(
        "status-choice-assignment",
        "t = Ticket.objects.get(title='Old')\nt.status = Ticket.Status.CLOSED\nt.save()\n"
        "print(t.status, Ticket.objects.get(title='Old').status)",
        "closed closed\n",
        then=_old_closed,
    ),
    legit(
        "create-and-read-back",
        "t = Ticket.objects.create(title='New', company=Company.objects.get(name='Acme'))\n"
        "print(t.title, t.company.name, t.status, t.pk == Ticket.objects.get(title='New').pk)",
        "New Acme open True\n",
    ),
    legit(
        "date-update-and-read-back",
        "d = datetime(2030, 1, 31).date()\n"
        "print(Company.objects.filter(name='Acme').update(contract_ends_on=d))\n"
        "print(Company.objects.get(name='Acme').contract_ends_on)",
        "1\n2030-01-31\n",
    ),
]


@pytest.mark.parametrize("case", LEGIT)
def test_legitimate_value_use_works(case: Legit, world):
    result = run_snippet(case.code, timeout=10)
    assert (result.status, result.error) == ("completed", ""), shown(result)
    assert result.output == case.output
    assert not findings(result, world), shown(result)
    if case.then is not None:
        case.then()


def test_world_users_are_untouched_by_legit_writes(world):
    # The read-only model stays read-only for the legit paths too.
    result = run_snippet(
        "t = Ticket.objects.get(title='Old')\nt.assignee = User.objects.get(username='alice')\n"
        "t.save()\nprint(t.assignee.username)",
        timeout=10,
    )
    assert (result.status, result.output) == ("completed", "alice\n"), shown(result)
    assert User.objects.get(username="alice").is_superuser is False
    assert not findings(result, world)
