"""Exception-family attacks: no exception object made outside the snippet may reach it.

An error raised inside a proxied ORM call must reach the snippet as a *fresh* exception of a
vetted class with the same name, carrying message strings only: ``args`` is a tuple of ``str``;
``params``, ``error_list``, ``error_dict``, ``code``, ``obj``, ``__cause__``, ``__context__`` and
``__traceback__`` are absent or refused. Django's own ``ValidationError`` keeps the offending
value, *unwrapped from its proxy*, in ``params`` (and in ``args[2]``): the exploit below reads the
real ``User`` there, then its password hash, a raw database connection and a shell.

Every case provokes one error the allowlisted methods can raise (proxies, lists of proxies, nested
values, ``defaults=``, ``update()``, every field type of the CRM models, get with none/many rows,
bad lookups, integrity errors, invalid values) and hands the caught exception to the snippet-side
``inspect_exc`` battery of ``tests/sandbox_attack_kit.py``; some go further the way an attacker
would. The run may end ``completed`` or ``failed`` (a refusal); what is checked is the outcome:
no secret, no internals, no side effect, every object the snippet reached is vetted, no denied
attribute was readable. ``LEGIT`` lists what must keep working: catching ``Ticket.DoesNotExist``,
printing a ``ValidationError``'s messages, catching ``IntegrityError`` and going on.

Black box: the tests run snippets through ``run_snippet`` and look at outcomes only.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.core.management import call_command

from scheduled_tasks.sandbox import run_snippet
from tests.sandbox_attack_kit import World, findings, make_world, shown, with_probe
from ticketproo.crm.models import Company, Ticket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(settings, monkeypatch, tmp_path) -> Iterator[World]:
    yield from make_world(settings, monkeypatch, tmp_path)


# The probe verbatim: a Django ValidationError carries the unwrapped User instance.
EXPLOIT = """\
def leak(p):
    try:
        Company.objects.filter(is_active=p).count()
    except Exception as e:
        return e.params['value']      # the ValidationError holds the *unwrapped* User instance
u = leak(User.objects.first())
print(u.password)                     # the password hash
conn = u.logentry_set.all().query.get_compiler('default').connection
conn.cursor().execute("SELECT password FROM auth_user")   # any SQL: sessions, ATTACH DATABASE '/any/path'
conn.client.runshell([".shell id > /tmp/x"])              # a shell command as the runner's user
"""


@dataclass(frozen=True)
class ExcAttack:
    code: str


def caught(stmt: str, then: str = "") -> str:
    """``stmt`` in a try block; the caught exception goes through the battery, then ``then``."""
    body = "\n".join("    " + line for line in stmt.splitlines())
    after = "".join("    " + line + "\n" for line in then.splitlines())
    return (
        f"try:\n{body}\n    print('NO-ERROR')\nexcept Exception as e:\n    inspect_exc(e)\n{after}"
    )


def case(case_id: str, code: str):
    return pytest.param(ExcAttack(code), id=case_id)


def exc(case_id: str, stmt: str, then: str = ""):
    return case(case_id, caught(stmt, then))


U = "User.objects.first()"
T = "Ticket.objects.first()"
C = "Contact.objects.first()"
# What an attacker does with the offending value once it is out: read the hash, reach the DB.
DIG_PARAMS = (
    "v = e.params['value']\nprobe('params.value', v)\nprint('HASH', v.password)\n"
    "probe('connection', v.logentry_set.all().query.get_compiler('default').connection)"
)
DIG_ARGS = (
    "v = e.args[2]['value']\nprobe('args2.value', v)\nprint('HASH', v.password)\n"
    "probe('connection', v.logentry_set.all().query.get_compiler('default').connection)"
)
DIG_ERROR_LIST = (
    "inner = e.error_list[0]\ninspect_exc(inner, 'inner')\nv = inner.params['value']\n"
    "print('HASH', v.password)"
)
DIG_TICKET = (
    "v = e.params['value']\nprobe('ticket', v)\nprint('HASH', v.assignee.password)\n"
    "probe('model', v.assignee.field.related_model)"
)
DIG_CAUSE = (
    "for name in ('__cause__', '__context__', '__traceback__'):\n"
    "    try:\n"
    "        inner = getattr(e, name)\n"
    "    except Exception:\n"
    "        continue\n"
    "    print('REACHED-DENIED', name, verdict(inner))\n"
)

ATTACKS = [
    # --- the exploit, verbatim ------------------------------------------------------------------
    case("exploit-validationerror-params-user", EXPLOIT),
    # --- ValidationError holding an unwrapped proxy: every field type, every entry point --------
    exc("bool-filter-user", f"Company.objects.filter(is_active={U}).count()", DIG_PARAMS),
    exc("bool-filter-user-via-args", f"Company.objects.filter(is_active={U}).count()", DIG_ARGS),
    exc(
        "bool-filter-user-via-error-list",
        f"Company.objects.filter(is_active={U}).count()",
        DIG_ERROR_LIST,
    ),
    exc("bool-filter-ticket", f"Company.objects.filter(is_active={T}).count()", DIG_TICKET),
    exc("bool-exclude-user", f"Company.objects.exclude(is_active={U}).count()", DIG_PARAMS),
    exc("bool-q-user", f"Company.objects.filter(Q(is_active={U})).count()", DIG_PARAMS),
    exc(
        "bool-q-or-negated-user",
        f"Company.objects.filter(Q(name='x') | ~Q(is_active={U})).count()",
        DIG_PARAMS,
    ),
    exc("bool-get-contact", f"Company.objects.get(is_active={C})"),
    exc("bool-in-list-of-proxies", f"Company.objects.filter(is_active__in=[{U}]).count()"),
    exc(
        "bool-in-nested-list",
        f"Company.objects.filter(is_active__in=[[{U}, [{T}]]]).count()",
        "print('HASH', e.params['value'][0].password)",
    ),
    exc(
        "bool-tuple-of-proxies",
        f"Company.objects.filter(is_active=({U}, {T})).count()",
        "print('HASH', e.params['value'][0].password)",
    ),
    exc("bool-user-field-ticket", f"User.objects.filter(is_staff={T}).count()", DIG_TICKET),
    exc("date-filter-user", f"Company.objects.filter(contract_ends_on={U}).count()", DIG_PARAMS),
    exc("date-gte-ticket", f"Company.objects.filter(contract_ends_on__gte={T}).count()"),
    exc("datetime-filter-user", f"Ticket.objects.filter(created_at={U}).count()", DIG_PARAMS),
    exc(
        "datetime-date-transform-user",
        f"Ticket.objects.filter(resolved_at__date={U}).count()",
        DIG_PARAMS,
    ),
    exc(
        "datetime-range-users",
        f"Ticket.objects.filter(created_at__range=({U}, {U})).count()",
        DIG_PARAMS,
    ),
    exc(
        "datetime-user-date-joined-ticket",
        f"User.objects.filter(date_joined={T}).count()",
        DIG_TICKET,
    ),
    exc(
        "get-or-create-lookup-user",
        f"Company.objects.get_or_create(name='Acme', is_active={U})",
        DIG_PARAMS,
    ),
    exc(
        "get-or-create-defaults-bool-user",
        f"Company.objects.get_or_create(name='Newco', defaults={{'is_active': {U}}})",
        DIG_PARAMS,
    ),
    exc(
        "get-or-create-defaults-date-user",
        f"Company.objects.get_or_create(name='Newco', defaults={{'contract_ends_on': {U}}})",
        DIG_PARAMS,
    ),
    exc("create-bool-user", f"Company.objects.create(name='Newco', is_active={U})", DIG_PARAMS),
    exc(
        "create-datetime-user",
        f"Ticket.objects.create(title='n', resolved_at={U})",
        DIG_PARAMS,
    ),
    exc(
        "update-bool-user",
        f"Company.objects.filter(name='Acme').update(is_active={U})",
        DIG_PARAMS,
    ),
    exc("update-date-user", f"Company.objects.update(contract_ends_on={U})", DIG_PARAMS),
    exc("update-datetime-ticket", f"Ticket.objects.update(resolved_at={T})", DIG_TICKET),
    exc(
        "assign-then-save-user",
        f"t = Ticket.objects.get(title='Old')\nt.resolved_at = {U}\nt.save()",
        DIG_PARAMS,
    ),
    exc(
        "constructor-then-save-user",
        f"Company(name='Newco', contract_ends_on={U}).save()",
        DIG_PARAMS,
    ),
    exc(
        "setattr-then-save-user",
        f"c = Company.objects.get(name='Globex')\nsetattr(c, 'is_active', {U})\nc.save()",
        DIG_PARAMS,
    ),
    exc("bool-queryset-subquery", "Company.objects.filter(is_active=User.objects.all()).count()"),
    # --- raw Django ValidationErrors from plain invalid values -----------------------------------
    exc("bool-garbage", "Company.objects.filter(is_active='maybe').count()"),
    exc("date-garbage", "Company.objects.filter(contract_ends_on='2020-13-45').count()"),
    exc("datetime-garbage", "Ticket.objects.filter(created_at='yesterday').count()"),
    exc("datetime-impossible-date", "Ticket.objects.filter(created_at__date='2021-02-30').count()"),
    exc("create-datetime-garbage", "Ticket.objects.create(title='n', resolved_at='soon')"),
    exc("update-date-garbage", "Company.objects.update(contract_ends_on='never')"),
    exc("get-or-create-bool-garbage", "Company.objects.get_or_create(name='Acme', is_active='?')"),
    # --- ValueError / TypeError from field preparation -------------------------------------------
    exc("int-pk-garbage", "Ticket.objects.filter(id='abc').count()"),
    exc("int-pk-user", f"Ticket.objects.filter(id={U}).count()"),
    exc("int-pk-in-mixed", f"Ticket.objects.filter(pk__in=[{U}, 'x', [1]]).count()"),
    exc("int-year-transform-user", f"Ticket.objects.filter(created_at__year={U}).count()"),
    exc("int-pk-get-dict", "Ticket.objects.get(pk={'a': 1})"),
    exc("fk-wrong-model", f"Ticket.objects.filter(company={U}).count()"),
    exc("fk-in-wrong-model", f"Ticket.objects.filter(company__in=[{T}]).count()"),
    exc("fk-assign-wrong-model", f"t = Ticket.objects.get(title='Old')\nt.company = {U}"),
    exc("fk-create-wrong-model", f"Ticket.objects.create(title='n', company={C})"),
    exc("fk-get-or-create-wrong-model", f"Ticket.objects.get_or_create(title='Old', company={C})"),
    exc("isnull-non-bool", "Ticket.objects.filter(resolved_at__isnull='yes').count()"),
    exc("isnull-proxy", f"Ticket.objects.filter(resolved_at__isnull={U}).count()"),
    exc("negative-index", "Ticket.objects.all()[-1]"),
    exc("index-out-of-range", "Ticket.objects.order_by('title')[99]"),
    exc("index-of-none", "Ticket.objects.none()[0]"),
    exc("slice-then-filter", "Ticket.objects.all()[:1].filter(title='x')"),
    exc("slice-then-update", "Ticket.objects.all()[:1].update(title='x')"),
    exc("slice-then-delete", "Ticket.objects.all()[:1].delete()"),
    exc("values-then-delete", "Ticket.objects.values('title').delete()"),
    exc("values-list-flat-two-fields", "Ticket.objects.values_list('title', 'status', flat=True)"),
    exc(
        "annotate-name-conflict",
        "list(Ticket.objects.values('title').annotate(title=Count('id')))",
    ),
    # A step slice turns the queryset into a list of real model instances inside the proxy: the
    # AttributeError then has .obj = that list.
    exc("step-slice-attributeerror", "Ticket.objects.all()[::2].filter(title='x')"),
    exc("step-slice-first", "Ticket.objects.all()[::2].first()"),
    exc("keyerror-values-row", "Ticket.objects.values('title')[0]['password']"),
    # --- DoesNotExist / MultipleObjectsReturned --------------------------------------------------
    exc("get-none-pk", "Ticket.objects.get(pk=-1)"),
    exc("get-none-text", "Ticket.objects.get(description='nothing like this')"),
    exc("get-none-email", "Contact.objects.get(email='none@example.com')"),
    exc("get-none-user", "User.objects.get(username='nobody')"),
    exc("get-none-huge-pk", "Ticket.objects.get(id=2 ** 70)"),
    exc("get-many", "Ticket.objects.get()"),
    exc("get-many-fk", "Ticket.objects.get(company=Company.objects.get(name='Acme'))"),
    exc("get-many-choices", "Ticket.objects.get(status__in=['open', 'resolved'])"),
    exc("get-many-bool", "Company.objects.get(is_active=True)"),
    exc(
        "get-or-create-many",
        "Ticket.objects.get_or_create(company=Company.objects.get(name='Acme'))",
    ),
    exc("related-object-does-not-exist", "Contact(name='x').company.name"),
    exc(
        "refresh-deleted-row",
        "t = Ticket.objects.get(title='Old')\nTicket.objects.filter(title='Old').delete()\n"
        "t.refresh_from_db()",
    ),
    exc("does-not-exist-class-attributes", "raise Ticket.DoesNotExist('mine')"),
    # --- FieldError ------------------------------------------------------------------------------
    exc("fielderror-char-year", "Ticket.objects.filter(title__year=2020).count()"),
    exc("fielderror-bool-hour", "Company.objects.filter(is_active__hour=1).count()"),
    exc("fielderror-fk-year", "Ticket.objects.filter(company__year=1).count()"),
    exc("fielderror-values-lookup", "list(Ticket.objects.values('title__contains'))"),
    exc("fielderror-isnull-chain", "Ticket.objects.filter(title__isnull__exact=True).count()"),
    # --- IntegrityError / DatabaseError ----------------------------------------------------------
    exc("integrity-unique-create", "Company.objects.create(name='Acme')", DIG_CAUSE),
    exc("integrity-not-null-create", "Ticket.objects.create(title=None)", DIG_CAUSE),
    exc("integrity-not-null-fk", "Contact.objects.create(name='orphan')"),
    exc("integrity-unique-update", "Company.objects.update(name='Same')"),
    exc(
        "integrity-unique-save",
        "c = Company.objects.get(name='Globex')\nc.name = 'Acme'\nc.save()",
    ),
    exc(
        "integrity-get-or-create-race",
        "Company.objects.get_or_create(name__iexact='no-such', defaults={'name': 'Acme'})",
    ),
    exc("integrity-not-null-update", "Ticket.objects.update(title=None)"),
    # PostgreSQL: DataError (value too long); SQLite stores it.
    exc("dataerror-too-long", "Ticket.objects.create(title='x' * 300)"),
    # SQLite: OverflowError from the driver; PostgreSQL: a DB error or an empty result.
    exc("overflow-in-list", "Ticket.objects.filter(id__in=[2 ** 70]).count()"),
    # PostgreSQL: no sum(varchar) (ProgrammingError); SQLite sums it.
    exc("sum-of-text", "Ticket.objects.aggregate(Sum('title'))"),
    # PostgreSQL: varchar IN (bigint subquery) (ProgrammingError); SQLite compares.
    exc("subquery-type-mismatch", "Ticket.objects.filter(status__in=Ticket.objects.all()).count()"),
    # Errors raised while a queryset is *evaluated* (iteration, len, bool, indexing), after the
    # proxied call that built it has returned.
    exc(
        "lazy-iteration-db-error",
        "for t in Ticket.objects.filter(status__in=Ticket.objects.all()):\n    probe('row', t)",
    ),
    exc(
        "lazy-sorted-overflow",
        "sorted(Ticket.objects.filter(id__in=[2 ** 70]), key=lambda t: t.title)",
    ),
    exc("lazy-len-overflow", "len(Ticket.objects.filter(id__in=[2 ** 70]))"),
    exc("lazy-bool-db-error", "bool(Ticket.objects.filter(status__in=Ticket.objects.all()))"),
    exc("lazy-index-overflow", "Ticket.objects.filter(id__in=[2 ** 70])[0]"),
    # --- reading the exception every way -------------------------------------------------------
    exc(
        "getattr-dunders-on-integrityerror",
        "Company.objects.create(name='Acme')",
        DIG_CAUSE + "print(getattr(e, 'args')[0])",
    ),
    exc(
        "getattr-dunders-on-validationerror",
        f"Company.objects.filter(is_active={U}).count()",
        DIG_CAUSE,
    ),
    exc(
        "iterate-validationerror",
        f"Company.objects.filter(is_active={U}).count()",
        "for item in e:\n    probe('item', item)\nprint(list(e), [a for a in e.args])",
    ),
    exc(
        "format-and-fstrings",
        f"Company.objects.filter(contract_ends_on={U}).count()",
        "print(format(e), f'{e!r}', f'{e}', str(e), repr(e), '%s %r' % (e, e))",
    ),
    exc(
        "index-args-every-way",
        f"Company.objects.filter(is_active={U}).count()",
        "for i in range(len(e.args)):\n    probe('arg' + str(i), e.args[i])\n"
        "probe('last', e.args[-1])\nprobe('slice', e.args[1:])",
    ),
    exc(
        "message-attributes",
        f"Company.objects.filter(is_active={U}).count()",
        "for name in ('message', 'messages', 'message_dict', 'code', 'params'):\n"
        "    if hasattr(e, name):\n        probe(name, getattr(e, name))",
    ),
    exc(
        "dig-params-on-does-not-exist",
        "Ticket.objects.get(pk=-1)",
        "deny('e', e, 'params')\ndeny('e', e, 'obj')\nprint(e.args)",
    ),
    exc(
        "dig-attributeerror-name-obj",
        "Ticket.objects.all()[::2].exists()",
        "probe('name', e.name)\ndeny('e', e, 'obj')",
    ),
    case(
        "exception-kept-and-reraised",
        f"kept = []\ntry:\n    Company.objects.filter(is_active={U}).count()\n"
        "except Exception as e:\n    kept.append(e)\n"
        "try:\n    raise kept[0]\nexcept Exception as again:\n    inspect_exc(again, 'again')\n"
        "    print('HASH', again.params['value'].password)",
    ),
    case(
        "exception-uncaught-error-text",
        # Not caught: the run's error text is built from it; no secret, no internals in there.
        f"Company.objects.filter(is_active={U}).count()",
    ),
    case(
        "exception-in-comprehension",
        "out = []\nfor v in ['maybe', 'x', 7]:\n    try:\n"
        "        Company.objects.filter(is_active=v).count()\n    except Exception as e:\n"
        "        out.append(e)\nfor i, e in enumerate(out):\n    inspect_exc(e, 'e' + str(i))",
    ),
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_exception_attack_is_harmless(attack: ExcAttack, world):
    result = run_snippet(with_probe(attack.code), timeout=10)
    found = findings(result, world)
    if result.status == "timeout":
        found.append("the run timed out")
    assert not found, "\n".join(found) + "\n" + shown(result)


def test_the_exploit_is_in_the_table_verbatim():
    codes = [p.values[0].code for p in ATTACKS]
    assert EXPLOIT in codes
    assert "e.params['value']" in EXPLOIT and "conn.client.runshell" in EXPLOIT


def test_the_table_is_big_enough():
    assert len(ATTACKS) >= 60
    assert len({p.id for p in ATTACKS}) == len(ATTACKS)


# --- messages must not carry data the allowlist hides ------------------------------------------

HIDDEN_CANARY = "hidden-description-canary-41c7"
HIDDEN_FIELD_SNIPPETS = [
    pytest.param(
        "try:\n    Ticket.objects.update(title=None)\nexcept Exception as e:\n    print(e)",
        id="update-not-null-caught",
    ),
    pytest.param("Ticket.objects.filter(title='Old').update(title=None)", id="update-not-null"),
    pytest.param(
        "t = Ticket.objects.get(title='Old')\nt.title = None\nt.save()", id="save-not-null"
    ),
    pytest.param(
        "try:\n    Ticket.objects.filter(title='Old').update(title=None)\n"
        "except Exception as e:\n    print(e.args, e.messages if hasattr(e, 'messages') else '')",
        id="update-not-null-args",
    ),
]


def _sync_sandbox_role(settings) -> None:
    """PostgreSQL runs connect snippets as a role synced to the NAMESPACE; re-sync it."""
    role = getattr(settings, "SANDBOX_TEST_ROLE", None)
    if role is not None:
        call_command(
            "sync_sandbox_role",
            role=role,
            password=settings.SANDBOX_TEST_PASSWORD,
            stdout=io.StringIO(),
        )


@pytest.mark.parametrize("connection", ["default-connection", "synced-role"])
@pytest.mark.parametrize("code", HIDDEN_FIELD_SNIPPETS)
def test_error_messages_do_not_carry_hidden_columns(code: str, connection: str, world, settings):
    """A deployment may hide fields (NAMESPACE ``fields``). PostgreSQL's NOT NULL / CHECK errors
    say "DETAIL: Failing row contains (...)" with every column of the row the connection may
    read: hidden ones too on the application's connection (SANDBOX_DATABASE_URL None, the
    default), not on a role synced to the NAMESPACE (``sync_sandbox_role``)."""
    from scheduled_tasks import conf

    original = conf.get("NAMESPACE")
    namespace = dict(original)
    namespace["Ticket"] = {"model": "crm.Ticket", "fields": ["id", "title", "status", "company"]}
    tasks = {**settings.SCHEDULED_TASKS, "NAMESPACE": namespace}
    if connection == "default-connection":
        tasks["SANDBOX_DATABASE_URL"] = None
    settings.SCHEDULED_TASKS = tasks
    Ticket.objects.update(description=HIDDEN_CANARY)
    if connection == "synced-role":
        _sync_sandbox_role(settings)
    try:
        refused = run_snippet("print(Ticket.objects.get(title='Old').description)", timeout=10)
        result = run_snippet(code, timeout=10)
    finally:
        if connection == "synced-role":
            settings.SCHEDULED_TASKS = {**tasks, "NAMESPACE": original}
            _sync_sandbox_role(settings)

    assert refused.status == "failed" and HIDDEN_CANARY not in refused.output + refused.error
    found = findings(result, world)
    if HIDDEN_CANARY in result.output + result.error:
        found.append("the message carries the value of a field the allowlist hides")
    assert not found, "\n".join(found) + "\n" + shown(result)


# --- what must keep working -------------------------------------------------------------------


@dataclass(frozen=True)
class Legit:
    code: str
    output: str


def legit(case_id: str, code: str, output: str):
    return pytest.param(Legit(code, output), id=case_id)


LEGIT = [
    legit(
        "catch-ticket-does-not-exist",
        "try:\n    Ticket.objects.get(title='nope')\nexcept Ticket.DoesNotExist:\n"
        "    print('missing')",
        "missing\n",
    ),
    legit(
        "print-does-not-exist-message",
        "try:\n    Ticket.objects.get(pk=-1)\nexcept Ticket.DoesNotExist as e:\n"
        "    print(e, e.args)",
        "Ticket matching query does not exist. ('Ticket matching query does not exist.',)\n",
    ),
    legit(
        "catch-object-does-not-exist-name",
        "try:\n    Company.objects.get(name='nope')\nexcept ObjectDoesNotExist:\n    print('none')",
        "none\n",
    ),
    legit(
        "catch-multiple-objects-returned",
        "try:\n    Ticket.objects.get()\nexcept Ticket.MultipleObjectsReturned as e:\n"
        "    print('many:', e)",
        "many: get() returned more than one Ticket -- it returned 2!\n",
    ),
    legit(
        "catch-multiple-objects-returned-name",
        "try:\n    Company.objects.get(is_active=True)\nexcept MultipleObjectsReturned:\n"
        "    print('many')",
        "many\n",
    ),
    legit(
        # type() is not a snippet builtin; repr() names the class.
        "repr-of-caught-exception",
        "try:\n    Ticket.objects.get(pk=-1)\nexcept Exception as e:\n    print(repr(e))",
        "DoesNotExist('Ticket matching query does not exist.')\n",
    ),
    legit(
        "validationerror-messages",
        "try:\n    Company.objects.filter(is_active='maybe').count()\nexcept ValidationError as e:\n"
        "    print(e.messages)\n    print('either True or False' in str(e))",
        "['“maybe” value must be either True or False.']\nTrue\n",
    ),
    legit(
        "validationerror-caught-as-exception",
        "try:\n    Ticket.objects.filter(created_at='yesterday').count()\nexcept Exception as e:\n"
        "    print(e.messages[0])",
        "“yesterday” value has an invalid format. It must be in YYYY-MM-DD HH:MM[:ss[.uuuuuu]]"
        "[TZ] format.\n",
    ),
    legit(
        "catch-integrity-error-and-go-on",
        "try:\n    Company.objects.create(name='Acme')\nexcept IntegrityError:\n"
        "    print('duplicate')\nCompany.objects.create(name='Initech')\n"
        "print(Company.objects.count())",
        "duplicate\n3\n",
    ),
    legit(
        "integrity-error-is-a-database-error",
        "try:\n    Ticket.objects.create(title=None)\nexcept DatabaseError:\n    print('db error')\n"
        "print(Ticket.objects.count())",
        "db error\n2\n",
    ),
    legit(
        "catch-field-error",
        "try:\n    Ticket.objects.filter(title__year=2020).count()\nexcept FieldError:\n"
        "    print('bad lookup')",
        "bad lookup\n",
    ),
    legit(
        "catch-value-error-message",
        "try:\n    Ticket.objects.filter(id='abc').count()\nexcept ValueError as e:\n    print(e)",
        "Field 'id' expected a number but got 'abc'.\n",
    ),
    legit(
        "catch-index-error",
        "try:\n    Ticket.objects.order_by('title')[99]\nexcept IndexError:\n    print('no row 99')",
        "no row 99\n",
    ),
    legit(
        "catch-tuple-of-classes",
        "for v in ['maybe', True]:\n    try:\n"
        "        print(Company.objects.filter(is_active=v).count())\n"
        "    except (ValidationError, ValueError, TypeError) as e:\n        print('invalid:', v)",
        "invalid: maybe\n2\n",
    ),
    legit(
        "args-are-message-strings",
        "try:\n    Company.objects.create(name='Acme')\nexcept IntegrityError as e:\n"
        "    print(len(e.args) >= 1, all([isinstance(a, str) for a in e.args]))",
        "True True\n",
    ),
    legit(
        "snippet-own-exceptions-untouched",
        "class_free = ValueError('mine', 42)\ntry:\n    raise class_free\nexcept ValueError as e:\n"
        "    print(e.args)",
        "('mine', 42)\n",
    ),
]


@pytest.mark.parametrize("case", LEGIT)
def test_legitimate_exception_handling_works(case: Legit, world):
    result = run_snippet(case.code, timeout=10)
    assert (result.status, result.error) == ("completed", ""), shown(result)
    assert result.output == case.output
    assert not findings(result, world), shown(result)
    assert Company.objects.filter(name="Acme").count() == 1
    assert Ticket.objects.filter(title="Old").exists()
