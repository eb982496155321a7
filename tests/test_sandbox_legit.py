"""What staff legitimately write in snippets keeps working inside the sandbox.

Each snippet runs through ``run_snippet`` in its own process against committed data and must
complete with exactly the expected output (and, for writes, the expected rows). The attack
suite (test_sandbox_attacks.py) checks that the sandbox refuses; this one checks that it does
not refuse too much. Cases with ``bug=`` found a sandbox defect that was then fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User

from scheduled_tasks.sandbox import check_code, run_snippet
from ticketproo.crm.models import Company, Contact, Ticket

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class Legit:
    code: str
    output: str
    # Checks the database (in the test process) after the snippet ran.
    then: Callable[[], None] | None = None


def legit(case_id: str, code: str, output: str, *, bug: str | None = None, **kw):
    # ``bug`` documents a bug this case found and that was then fixed (a regression test).
    return pytest.param(Legit(code, output, **kw), id=case_id)


def _statuses() -> dict[str, str]:
    return dict(Ticket.objects.values_list("title", "status"))


def _closed_old_invoice() -> None:
    assert _statuses()["Old invoice"] == "closed"
    assert _statuses()["Printer on fire"] == "open"


def _created_ticket() -> None:
    ticket = Ticket.objects.get(title="Call back Ada")
    assert ticket.company.name == "Acme"
    assert ticket.contact.name == "Ada"
    assert ticket.assignee.username == "alice"
    assert ticket.status == "open"


def _one_weekly_report() -> None:
    assert Ticket.objects.filter(title="Weekly report").count() == 1


def _vpn_resolved() -> None:
    ticket = Ticket.objects.get(title="VPN down")
    assert ticket.status == "resolved"
    assert ticket.resolved_at is not None


def _archived_deleted() -> None:
    assert not Ticket.objects.filter(status="closed").exists()
    assert Ticket.objects.count() == 3


LEGIT = [
    # --- plain Python --------------------------------------------------------------------------
    legit(
        "for-loop-and-augmented-assignment",
        "total = 0\nfor i in range(5):\n    total += i\nprint(total)",
        "10\n",
    ),
    legit(
        "while-break-continue",
        "n = 0\nodd = []\nwhile True:\n    n += 1\n    if n > 9:\n        break\n"
        "    if n % 2 == 0:\n        continue\n    odd.append(n)\nprint(odd)",
        "[1, 3, 5, 7, 9]\n",
    ),
    legit(
        "comprehensions",
        "squares = [x * x for x in range(5) if x % 2 == 0]\n"
        "lengths = {w: len(w) for w in ['ab', 'cde']}\n"
        "letters = sorted({c for c in 'banana'})\n"
        "pairs = [(a, b) for a in range(2) for b in 'xy']\n"
        "print(squares, lengths, letters, pairs)",
        "[0, 4, 16] {'ab': 2, 'cde': 3} ['a', 'b', 'n'] [(0, 'x'), (0, 'y'), (1, 'x'), (1, 'y')]\n",
    ),
    legit(
        "functions-defaults-args-kwargs",
        "def describe(name, *tags, sep=', ', **extra):\n"
        "    return name + ': ' + sep.join(tags) + ' ' + str(sorted(extra.items()))\n\n"
        "print(describe('t1', 'a', 'b', prio=1))\n"
        "args = ['t2', 'x']\nopts = {'sep': '|', 'due': 2}\nprint(describe(*args, **opts))",
        "t1: a, b [('prio', 1)]\nt2: x [('due', 2)]\n",
    ),
    legit(
        "closures-and-global",
        "counter = 0\n\ndef bump(step=1):\n    global counter\n    counter += step\n\n"
        "def make_adder(n):\n    def add(x):\n        return x + n\n    return add\n\n"
        "bump()\nbump(5)\nprint(counter, make_adder(10)(5))",
        "6 15\n",
    ),
    legit(
        "lambda-map-filter",
        "double = lambda x: x * 2\n"
        "print(list(map(double, [1, 2, 3])), list(filter(lambda x: x > 1, [0, 1, 2, 3])))",
        "[2, 4, 6] [2, 3]\n",
    ),
    legit(
        "generators-plain-iteration",
        "def squares(n):\n    for i in range(n):\n        yield i * i\n\n"
        "g = squares(4)\nfirst = next(g)\nrest = [x for x in g]\n"
        "print(first, rest, sum(squares(4)), sum(x for x in range(4)))",
        "0 [1, 4, 9] 14 6\n",
    ),
    legit(
        "sorted-min-max-sum",
        "people = [('bob', 31), ('ada', 36), ('cy', 25)]\n"
        "print(sorted(people, key=lambda p: p[1]))\n"
        "print(sorted([3, 1, 2], reverse=True), min(people, key=lambda p: p[1])[0], "
        "max(4, 9, 2), sum([1, 2, 3], 10))",
        "[('cy', 25), ('bob', 31), ('ada', 36)]\n[3, 2, 1] cy 9 16\n",
    ),
    legit(
        "zip-enumerate-reversed",
        "names = ['a', 'b', 'c']\nfor i, (n, m) in enumerate(zip(names, reversed(names)), 1):\n"
        "    print(i, n, m)",
        "1 a c\n2 b b\n3 c a\n",
    ),
    legit(
        "unpacking",
        "a, (b, c) = 1, (2, 3)\nfirst, *rest = [1, 2, 3, 4]\nx, y = y, x = 5, 6\n"
        "print(a + b + c, first, rest, x, y)",
        "6 1 [2, 3, 4] 5 6\n",
    ),
    legit(
        "dict-and-set-operations",
        "d = {'a': 1}\nd['b'] = 2\nd.update(c=3)\ndel d['a']\n"
        "print(sorted(d.items()), d.get('z', 0), 'b' in d)\n"
        "s = {1, 2, 3}\ns.add(4)\nprint(sorted(s & {2, 4, 6}), sorted(s | {9}), sorted(s - {1}))",
        "[('b', 2), ('c', 3)] 0 True\n[2, 4] [1, 2, 3, 4, 9] [2, 3, 4]\n",
    ),
    legit(
        "list-mutation-and-slices",
        "items = [5, 3, 8]\nitems.append(1)\nitems.sort()\nitems[0] = 0\nitems[1:3] = [7]\n"
        "print(items, items[::-1], items[-1], len(items))",
        "[0, 7, 8] [8, 7, 0] 8 3\n",
    ),
    legit(
        "string-methods",
        "s = '  Hello, World  '\n"
        "print(s.strip().upper(), s.strip().lower().replace('world', 'there'), "
        "'a,b,c'.split(','), '-'.join(['x', 'y']), 'ticket'.startswith('tick'), "
        "'7'.zfill(3), 'hello world'.title(), 'abc'.find('c'))",
        "HELLO, WORLD hello, there ['a', 'b', 'c'] x-y True 007 Hello World 2\n",
    ),
    legit(
        "f-strings",
        "name = 'Ada'\nx = 3.14159\nn = 42\nitems = [1, 2]\n"
        "print(f'{name!r} {x:.2f} {n:05d} {n:>5} {len(items)} {items[0] + 1} {x=:.1f}')",
        "'Ada' 3.14 00042    42 2 2 x=3.1\n",
    ),
    legit(
        "percent-format-and-format-builtin",
        "print('%s has %d tickets (%.1f%%)' % ('Acme', 3, 42.56), format(1234.5, ',.2f'))",
        "Acme has 3 tickets (42.6%) 1,234.50\n",
    ),
    legit(
        "try-except-else-finally",
        "def safe_div(a, b):\n    try:\n        result = a / b\n    except ZeroDivisionError:\n"
        "        return 'div by zero'\n    else:\n        return result\n    finally:\n"
        "        print('checked', a, b)\n\nprint(safe_div(6, 3))\nprint(safe_div(1, 0))",
        "checked 6 3\n2.0\nchecked 1 0\ndiv by zero\n",
    ),
    legit(
        "raise-and-catch-custom-message",
        "def check(v):\n    if v < 0:\n        raise ValueError(f'negative value: {v}')\n"
        "    return v\n\ntry:\n    check(-3)\nexcept ValueError as e:\n"
        "    print('caught:', e, e.args)\nexcept (KeyError, IndexError):\n    print('other')",
        "caught: negative value: -3 ('negative value: -3',)\n",
    ),
    legit(
        "assert-and-conditional-expression",
        "n = 7\nassert n > 0, 'must be positive'\nprint('odd' if n % 2 else 'even')",
        "odd\n",
    ),
    legit(
        "builtins-conversions",
        "print(int('12') + 1, float('1.5'), str(3), bool([]), abs(-2), round(2.675, 1), "
        "divmod(7, 2), pow(2, 5), hex(255), chr(65), ord('a'), isinstance(3, int), "
        "len({'a': 1}), any([0, 1]), all([1, 0]))",
        "13 1.5 3 False 2 2.7 (3, 1) 32 0xff A 97 True 1 True False\n",
    ),
    legit(
        "print-sep-end",
        "print('a', 'b', 'c', sep='-', end='!\\n')\nprint('no newline', end='')\nprint(' then', 1)",
        "a-b-c!\nno newline then 1\n",
    ),
    legit(
        "logger-levels-with-args",
        "logger.info('found %d tickets for %s', 3, 'Acme')\nlogger.warning('careful')\n"
        "logger.error('failed: %s', 'x')\nlogger.debug('details %r', [1])",
        "[INFO] found 3 tickets for Acme\n[WARNING] careful\n[ERROR] failed: x\n[DEBUG] details [1]\n",
    ),
    legit(
        "logger-mapping-argument",
        "logger.info('%(n)d tickets for %(who)s', {'n': 2, 'who': 'Acme'})",
        "[INFO] 2 tickets for Acme\n",
        bug="SnippetLogger formats with str(msg) % args, args being a tuple; the standard "
        "logging module passes a single mapping argument as the mapping, so this stdlib-valid "
        "call fails with 'TypeError: format requires a mapping'.",
    ),
    legit(
        "getattr-hasattr-on-allowed-names",
        "t = Ticket.objects.get(title='VPN down')\n"
        "print(getattr(t, 'title'), hasattr(t, 'status'), hasattr(t, 'password'), "
        "getattr('abc', 'upper')())",
        "VPN down True False ABC\n",
    ),
    legit(
        "missing-attribute-raises-attributeerror",
        "try:\n    'abc'.uper()\nexcept AttributeError:\n    print('no such method')",
        "no such method\n",
        bug="guarded_getattr calls RestrictedPython's safer_getattr with default=None, so a "
        "missing attribute evaluates to None instead of raising AttributeError: 'abc'.uper is "
        "None, 'abc'.uper() fails with \"'NoneType' object is not callable\" and a typo such as "
        "ticket.titel silently yields None. Pass safer_getattr's raise_ sentinel (or use "
        "safer_getattr_raise) for attribute reads.",
    ),
    # --- allowed imports -----------------------------------------------------------------------
    legit(
        "import-math",
        "import math\nfrom math import sqrt\n"
        "print(math.floor(2.7), sqrt(16), round(math.pi, 3), math.ceil(1.1), math.isclose(0.1 + 0.2, 0.3))",
        "2 4.0 3.142 2 True\n",
    ),
    legit(
        "import-json",
        'import json\ndata = json.loads(\'{"b": [1, 2], "a": null}\')\n'
        "print(data['b'], json.dumps(data, sort_keys=True))\n"
        "try:\n    json.loads('{bad')\nexcept json.JSONDecodeError:\n    print('bad json')",
        '[1, 2] {"a": null, "b": [1, 2]}\nbad json\n',
    ),
    legit(
        "import-re",
        "import re\nprint(re.findall(r'\\d+', 'a1b22c333'), re.sub(r'\\s+', ' ', 'a   b\\tc'))\n"
        "m = re.match(r'(?P<key>\\w+)=(\\d+)', 'prio=3')\nprint(m.group('key'), int(m.group(2)))\n"
        "p = re.compile('ticket', re.IGNORECASE)\nprint(bool(p.search('A TICKET')))",
        "['1', '22', '333'] a b c\nprio 3\nTrue\n",
    ),
    legit(
        "import-decimal",
        "from decimal import Decimal, ROUND_HALF_UP\n"
        "total = Decimal('19.99') * 3\n"
        "print(total, total.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP), Decimal('1') / 4)",
        "59.97 60.0 0.25\n",
    ),
    legit(
        "import-statistics",
        "import statistics\nvalues = [1, 2, 3, 4, 10]\n"
        "print(statistics.mean(values), statistics.median(values), statistics.mode([1, 1, 2]))",
        "4 3 1\n",
    ),
    legit(
        "import-itertools",
        "import itertools\n"
        "print(list(itertools.chain([1], [2, 3])), list(itertools.islice(itertools.count(5), 3)))\n"
        "print([''.join(c) for c in itertools.combinations('abc', 2)])\n"
        "for key, group in itertools.groupby(sorted('aabcc')):\n    print(key, len(list(group)))",
        "[1, 2, 3] [5, 6, 7]\n['ab', 'ac', 'bc']\na 2\nb 1\nc 2\n",
    ),
    legit(
        "import-collections",
        "from collections import Counter, defaultdict, namedtuple, deque, OrderedDict\n"
        "c = Counter(['open', 'open', 'closed'])\nprint(c.most_common(1), c['open'])\n"
        "groups = defaultdict(list)\ngroups['x'].append(1)\nprint(dict(groups))\n"
        "Point = namedtuple('Point', 'x y')\np = Point(1, 2)\nprint(p.x + p.y, p)\n"
        "q = deque([1, 2], maxlen=2)\nq.append(3)\nprint(list(q), list(OrderedDict(a=1)))",
        "[('open', 2)] 2\n{'x': [1]}\n3 Point(x=1, y=2)\n[2, 3] ['a']\n",
    ),
    legit(
        "import-string-and-random",
        "import string, random\n"
        "print(string.ascii_lowercase[:5], string.capwords('hello there'), "
        "random.choice(['only']), random.randint(4, 4), len(random.sample(range(10), 3)), "
        "0 <= random.random() < 1)",
        "abcde Hello There only 4 3 True\n",
    ),
    # --- dates and times -----------------------------------------------------------------------
    legit(
        "datetime-arithmetic",
        "d = datetime(2024, 1, 31, 12, 0) + timedelta(days=1, hours=2)\n"
        "span = datetime(2024, 3, 1) - datetime(2024, 2, 1)\n"
        "print(d, span.days, span.total_seconds(), d.weekday(), d.date(), d > datetime(2024, 1, 1))",
        "2024-02-01 14:00:00 29 2505600.0 3 2024-02-01 True\n",
    ),
    legit(
        "datetime-strftime-strptime-isoformat",
        "d = datetime(2024, 5, 6, 7, 8)\n"
        "print(d.strftime('%Y-%m-%d %H:%M'), d.strftime('%A %d %B'), d.isoformat())\n"
        "print(datetime.strptime('2024-02-29', '%Y-%m-%d').date())",
        "2024-05-06 07:08 Monday 06 May 2024-05-06T07:08:00\n2024-02-29\n",
    ),
    legit(
        "datetime-module-import",
        "from datetime import date, timedelta as td, timezone as tzmod\n"
        "import datetime as dt\n"
        "print(date(2024, 2, 28) + td(days=1), dt.datetime(2024, 1, 1, tzinfo=tzmod.utc).isoformat())",
        "2024-02-29 2024-01-01T00:00:00+00:00\n",
    ),
    legit(
        "timezone-now",
        "now = timezone.now()\nlater = now + timedelta(minutes=90)\n"
        "print(timezone.is_aware(now), (later - now).total_seconds(), now.year >= 2024, "
        "timezone.is_naive(timezone.make_naive(now)))",
        "True 5400.0 True True\n",
    ),
    legit(
        "timezone-make-aware",
        "naive = datetime(2024, 6, 1, 12, 0)\n"
        "aware = timezone.make_aware(naive, timezone.utc)\nprint(aware.isoformat())",
        "2024-06-01T12:00:00+00:00\n",
    ),
    # --- the ORM on Ticket and its relations ---------------------------------------------------
    legit(
        "orm-filter-exclude-count",
        "print(Ticket.objects.count(), Ticket.objects.filter(status='open').count(), "
        "Ticket.objects.exclude(status=Ticket.Status.CLOSED).count(), "
        "Ticket.objects.filter(company__name='Acme', assignee__username='alice').count(), "
        "Ticket.objects.filter(title__icontains='VPN').exists())",
        "4 1 3 2 True\n",
    ),
    legit(
        "orm-update",
        "n = Ticket.objects.filter(status=Ticket.Status.RESOLVED).update("
        "status=Ticket.Status.CLOSED)\n"
        "print(n, Ticket.objects.filter(status='closed').count())",
        "1 2\n",
        then=_closed_old_invoice,
    ),
    legit(
        "orm-create-with-relations",
        "acme = Company.objects.get(name='Acme')\n"
        "t = Ticket.objects.create(title='Call back Ada', status=Ticket.Status.OPEN, company=acme, "
        "contact=Contact.objects.get(name='Ada'), assignee=User.objects.get(username='alice'))\n"
        "print(t.title, t.company.name, t.pk is not None, Ticket.objects.count())",
        "Call back Ada Acme True 5\n",
        then=_created_ticket,
    ),
    legit(
        "orm-get-or-create",
        "t, created = Ticket.objects.get_or_create(title='Weekly report', "
        "defaults={'status': 'open'})\n"
        "again, created_again = Ticket.objects.get_or_create(title='Weekly report')\n"
        "print(created, created_again, t.pk == again.pk, again.status)",
        "True False True open\n",
        then=_one_weekly_report,
    ),
    legit(
        "orm-values-values-list-order-by",
        "print(list(Ticket.objects.order_by('title').values_list('title', flat=True)))\n"
        "print(Ticket.objects.filter(status='open').values('title', 'company__name')[0])\n"
        "print(list(Ticket.objects.order_by('-title').values_list('title', 'status')[:2]))",
        "['Archived', 'Old invoice', 'Printer on fire', 'VPN down']\n"
        "{'title': 'Printer on fire', 'company__name': 'Acme'}\n"
        "[('VPN down', 'in_progress'), ('Printer on fire', 'open')]\n",
    ),
    legit(
        "orm-aggregate-count",
        "print(Ticket.objects.aggregate(n=Count('id')), "
        "Ticket.objects.filter(company__name='Acme').aggregate(Count('id')))\n"
        "agg = Ticket.objects.aggregate(first=Min('created_at'), last=Max('created_at'))\n"
        "print(agg['first'] <= agg['last'])",
        "{'n': 4} {'id__count': 2}\nTrue\n",
    ),
    legit(
        "orm-values-annotate",
        "rows = Ticket.objects.values('status').annotate(n=Count('id')).order_by('status')\n"
        "print([(r['status'], r['n']) for r in rows])\n"
        "per_company = Ticket.objects.filter(company__isnull=False).values('company__name')"
        ".annotate(n=Count('id')).order_by('company__name')\n"
        "print([(r['company__name'], r['n']) for r in per_company])",
        "[('closed', 1), ('in_progress', 1), ('open', 1), ('resolved', 1)]\n"
        "[('Acme', 2), ('Globex', 1)]\n",
    ),
    legit(
        "orm-q-objects",
        "active = Q(status='open') | Q(status='in_progress')\n"
        "print(Ticket.objects.filter(active).count(), Ticket.objects.filter(~active).count(), "
        "Ticket.objects.filter(active & Q(title__startswith='VPN')).count(), "
        "Ticket.objects.filter(Q(company__name='Globex'), status='resolved').count())",
        "2 2 1 1\n",
    ),
    legit(
        "orm-relations-forward",
        "t = Ticket.objects.get(title='Printer on fire')\n"
        "print(t.company.name, t.contact.name, t.contact.email, t.assignee.username, "
        "t.assignee.first_name, t.assignee.is_staff, t.company_id == t.company.pk)\n"
        "print(Ticket.objects.get(title='Archived').company)",
        "Acme Ada ada@example.com alice Alice True True\nNone\n",
    ),
    legit(
        "orm-relations-reverse",
        "acme = Company.objects.get(name='Acme')\n"
        "print(acme.tickets.count(), acme.contacts.first().name, "
        "[t.title for t in acme.tickets.order_by('title')], "
        "Contact.objects.get(name='Ada').tickets.count())",
        "2 Ada ['Printer on fire', 'VPN down'] 1\n",
    ),
    legit(
        "class-own-exception-raise-from",
        "class QuotaExceeded(Exception):\n    pass\n"
        "try:\n    try:\n        raise ValueError('inner')\n"
        "    except ValueError as err:\n        raise QuotaExceeded('over quota') from err\n"
        "except QuotaExceeded as e:\n    print('caught:', e)",
        "caught: over quota\n",
    ),
    legit(
        "class-methods-attributes-and-instance-writes",
        "class Tally:\n    runs = 0\n"
        "    def __init__(self, start):\n        self.count = start\n"
        "    def add(self, n):\n        self.count = self.count + n\n"
        "        Tally.runs = Tally.runs + 1\n        return self.count\n"
        "t = Tally(1)\nt.add(2)\nt.add(3)\nt.label = 'done'\nprint(t.count, Tally.runs, t.label)",
        "6 2 done\n",
    ),
    legit(
        "class-inheritance-eq-lt-and-sorting",
        "class Item:\n    def __init__(self, name, weight):\n"
        "        self.name = name\n        self.weight = weight\n"
        "    def __lt__(self, other):\n        return self.weight < other.weight\n"
        "    def __eq__(self, other):\n        return self.weight == other.weight\n"
        "class Heavy(Item):\n    def describe(self):\n        return 'heavy ' + self.name\n"
        "items = [Heavy('b', 3), Item('a', 1), Item('c', 2)]\n"
        "print([i.name for i in sorted(items)], items[0].describe(), Item('x', 1) == Item('y', 1))",
        "['a', 'c', 'b'] heavy b True\n",
    ),
    legit(
        "class-exceptions-of-the-sandbox-and-models",
        "class NotReady(ValidationError):\n    pass\n"
        "class NoTicket(Ticket.DoesNotExist):\n    pass\n"
        "try:\n    raise NotReady('not yet')\nexcept ValidationError as e:\n    print(e.messages)\n"
        "try:\n    raise NoTicket('none')\nexcept ObjectDoesNotExist as e:\n    print('missing:', e)",
        "['not yet']\nmissing: none\n",
    ),
    legit(
        "class-helper-with-the-orm",
        "class Report:\n    def __init__(self, status):\n        self.status = status\n"
        "    def count(self):\n        return Ticket.objects.filter(status=self.status).count()\n"
        "print(Report('open').count(), Report(Ticket.Status.CLOSED).count())",
        "1 1\n",
    ),
    legit(
        "orm-status-choices",
        "print(Ticket.Status.CLOSED, Ticket.Status.CLOSED.label, Ticket.Status.CLOSED == 'closed', "
        "[value for value, label in Ticket.Status.choices])\n"
        "print(Ticket.objects.get(title='VPN down').get_status_display())",
        "closed Closed True ['open', 'in_progress', 'resolved', 'closed']\nIn progress\n",
    ),
    legit(
        "orm-instance-assign-and-save",
        "t = Ticket.objects.get(title='VPN down')\nt.status = Ticket.Status.RESOLVED\n"
        "t.resolved_at = timezone.now()\nt.save()\n"
        "print(Ticket.objects.get(pk=t.pk).status, Ticket.objects.filter(resolved_at__isnull=False).count())",
        "resolved 1\n",
        then=_vpn_resolved,
    ),
    legit(
        "orm-iterate-slice-len-bool",
        "qs = Ticket.objects.filter(company__name='Acme').order_by('title')\n"
        "for t in qs:\n    print(t.title, t.status, t.assignee)\n"
        "print(len(qs), bool(qs), [t.title for t in qs[:1]], bool(Ticket.objects.none()), "
        "Ticket.objects.order_by('title').first().title, Ticket.objects.order_by('title').last().title)",
        "Printer on fire open alice\nVPN down in_progress alice\n2 True ['Printer on fire'] "
        "False Archived VPN down\n",
    ),
    legit(
        "orm-date-lookups",
        "recent = Ticket.objects.filter(created_at__gte=timezone.now() - timedelta(days=1))\n"
        "print(recent.count(), Ticket.objects.filter(created_at__year__gte=2000).count(), "
        "Ticket.objects.filter(created_at__gt=timezone.now() + timedelta(days=1)).count())",
        "4 4 0\n",
    ),
    legit(
        "orm-does-not-exist",
        "try:\n    Ticket.objects.get(title='nope')\nexcept Ticket.DoesNotExist:\n    print('missing')\n"
        "print(Ticket.objects.filter(title='nope').first())",
        "missing\nNone\n",
    ),
    legit(
        "orm-delete",
        # Django's own shape: (rows deleted, {model label: rows}).
        "n = Ticket.objects.filter(status='closed').delete()\nprint(n, Ticket.objects.count())",
        "(1, {'crm.Ticket': 1}) 3\n",
        then=_archived_deleted,
    ),
    legit(
        "orm-user-read-only-fields",
        "u = User.objects.get(username='alice')\n"
        "print(u.username, u.first_name, u.last_name, u.email, u.is_active, u.is_staff, "
        "u.date_joined is not None)\n"
        "print(list(User.objects.values_list('username', flat=True)), "
        "Ticket.objects.filter(assignee=u).count())",
        "alice Alice Liddell alice@example.com True True True\n['alice'] 2\n",
    ),
]


@pytest.fixture
def crm_data() -> None:
    alice = User.objects.create_user(
        "alice",
        "alice@example.com",
        "alice-password",
        first_name="Alice",
        last_name="Liddell",
        is_staff=True,
    )
    acme = Company.objects.create(name="Acme")
    globex = Company.objects.create(name="Globex")
    ada = Contact.objects.create(company=acme, name="Ada", email="ada@example.com")
    Ticket.objects.create(
        title="Printer on fire", status="open", company=acme, contact=ada, assignee=alice
    )
    Ticket.objects.create(title="VPN down", status="in_progress", company=acme, assignee=alice)
    Ticket.objects.create(title="Old invoice", status="resolved", company=globex)
    Ticket.objects.create(title="Archived", status="closed")


@pytest.mark.parametrize("case", LEGIT)
def test_legitimate_snippet_works(case: Legit, crm_data):
    assert check_code(case.code) == []
    result = run_snippet(case.code, timeout=10)
    assert (result.status, result.error) == ("completed", "")
    assert result.output == case.output
    assert result.output_truncated is False
    if case.then is not None:
        case.then()


def test_the_table_is_big_enough():
    assert len(LEGIT) >= 30
    assert len({p.id for p in LEGIT}) == len(LEGIT)
