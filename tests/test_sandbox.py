"""The sandbox's basics: what runs, what is refused, and the limits (issue #3 scope)."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from scheduled_tasks.sandbox import check_code, run_snippet
from tests.conftest import run_manage
from tests.factories import make_ticket

# Every snippet's process opens (and confines) its own database connection before it runs.
pytestmark = pytest.mark.django_db


def run(code: str, **kwargs):
    return run_snippet(code, timeout=kwargs.pop("timeout", 10), **kwargs)


def test_print_is_captured_and_status_completed():
    result = run("print('hello', 42)\nprint('second')")
    assert result.status == "completed"
    assert result.output == "hello 42\nsecond\n"
    assert result.error == ""
    assert result.duration > 0


def test_logger_lines_are_part_of_the_output():
    result = run("logger.info('done %s', 3)\nlogger.warning('careful')")
    assert result.output == "[INFO] done 3\n[WARNING] careful\n"


def test_error_points_at_the_snippets_own_line():
    result = run("a = 1\nb = 0\n\nc = a / b\n")
    assert result.status == "failed"
    assert "Line 4" in result.error
    assert "c = a / b" in result.error
    assert result.error.endswith("ZeroDivisionError: division by zero")
    # Never a dump of the sandbox's internals.
    assert "scheduled_tasks" not in result.error
    assert "site-packages" not in result.error


def test_error_inside_a_function_names_both_lines():
    result = run("def f(x):\n    return x[5]\n\nf([1])\n")
    assert "Line 4, in snippet" in result.error
    assert "Line 2, in f" in result.error
    assert "IndexError" in result.error


def test_output_before_an_error_is_kept():
    result = run("print('before')\nraise RuntimeError('stop')")
    assert result.status == "failed"
    assert result.output == "before\n"


@pytest.mark.parametrize(
    "code",
    [
        "open('/etc/passwd').read()",
        "import os",
        "import subprocess",
        "from os import path",
        "x = ().__class__",
        "getattr((), '__class__')",
        "eval('1')",
        "exec('x = 1')",
        "compile('1', 'f', 'eval')",
        "globals()",
        "vars()",
        "'{0.__class__}'.format(1)",
        "__import__('os')",
    ],
)
def test_forbidden_things_are_refused(code: str):
    result = run(code)
    assert result.status == "failed", result
    assert result.error


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("import os", "Line 1"),
        ("x = 1\ny = x._private", "Line 2"),
        ("a = 1\nb = (\n", "Line 2"),
        ("try:\n    pass\nexcept* ValueError:\n    pass", "except*"),
    ],
)
def test_check_code_reports_compile_problems_with_lines(code: str, fragment: str):
    problems = [str(p) for p in check_code(code)]
    assert problems
    assert fragment in " ".join(problems)


@pytest.mark.parametrize(
    "code",
    ["import os", "import json, sys", "from os import path", "from . import x", "import os.path"],
)
def test_disallowed_imports_are_refused_when_the_code_is_checked(code: str):
    problems = [str(p) for p in check_code(code)]
    assert problems and problems[0].startswith("Line 1:")


def test_allowed_imports_work_through_vetted_proxies():
    code = (
        "import math, json\n"
        "from collections import Counter\n"
        "print(math.floor(2.7), json.dumps({'a': 1}), Counter('aab')['a'])\n"
    )
    result = run(code)
    assert result.status == "completed", result.error
    assert result.output == '2 {"a": 1} 2\n'


def test_datetime_formatting_works_although_it_imports_internally():
    result = run("print(datetime(2024, 1, 2).strftime('%Y-%m-%d'), f'{timedelta(hours=1)}')")
    assert result.status == "completed", result.error
    assert result.output == "2024-01-02 1:00:00\n"


def test_timeout_kills_the_snippet_and_keeps_output_so_far():
    result = run("print('started')\nwhile True:\n    pass", timeout=1)
    assert result.status == "timeout"
    assert result.output == "started\n"
    assert "timed out after 1 s" in result.error


def test_memory_bomb_fails_with_a_clear_message():
    result = run("x = 'a' * (10 ** 10)")
    assert result.status == "failed"
    assert "memory limit exceeded" in result.error


def test_output_is_capped_and_flagged(settings):
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "MAX_OUTPUT_BYTES": 100}
    result = run("for i in range(1000):\n    print('0123456789')")
    assert result.status == "completed"
    assert len(result.output.encode()) == 100
    assert result.output_truncated is True


def test_secret_key_is_not_reachable():
    result = run("print(timezone.now)\nprint(User)\nprint(Ticket.objects)")
    assert settings.SECRET_KEY not in result.output + result.error


@pytest.mark.django_db(transaction=True)
def test_snippet_uses_the_orm_in_its_own_process():
    make_ticket(title="Old", status="resolved")
    make_ticket(title="New", status="open")
    code = (
        "n = Ticket.objects.filter(status='resolved').update(status='closed')\n"
        "print(n, Ticket.objects.filter(status='closed').count())\n"
    )
    result = run(code)
    assert result.status == "completed", result.error
    assert result.output == "1 1\n"


@pytest.mark.django_db(transaction=True)
def test_user_password_is_never_readable():
    from django.contrib.auth.models import User

    User.objects.create_user("someone", password="hunter2-secret")
    for code in [
        "print(User.objects.values('password'))",
        "print(User.objects.first().password)",
        "print(User.objects.filter(password__startswith='md5').count())",
        "print(Ticket.objects.values('assignee__password'))",
    ]:
        result = run(code)
        assert result.status == "failed", code
        assert "password" in result.error
        assert "md5" not in result.output


@pytest.mark.django_db(transaction=True)
def test_run_snippet_command_json_and_exit_status(tmp_path):
    good = tmp_path / "good.py"
    good.write_text("print('from file')\n")
    proc = run_manage("run_snippet", str(good), "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert set(payload) == {"status", "output", "error", "duration"}
    assert payload["status"] == "completed"
    assert payload["output"] == "from file\n"

    proc = run_manage("run_snippet", "-", input="x = 1\nraise ValueError('nope')\n")
    assert proc.returncode == 1
    assert "Line 2" in proc.stderr
    assert "ValueError: nope" in proc.stderr

    proc = run_manage("run_snippet", str(tmp_path / "missing.py"))
    assert proc.returncode == 2
    assert "no such file" in proc.stderr


@pytest.mark.django_db(transaction=True)
def test_parent_connection_survives_children_that_use_the_database():
    # The child inherits the parent's socket; closing it there would end the parent's session
    # (PostgreSQL Terminate). Run several ORM snippets, then keep using the parent connection.
    from django.db import connection

    make_ticket(title="Keep me")
    connection.ensure_connection()
    backend_before = connection.connection
    for _ in range(3):
        result = run("print(Ticket.objects.count())")
        assert result.output == "1\n", result.error
    assert connection.connection is backend_before
    assert connection.is_usable()
    from ticketproo.crm.models import Ticket

    assert Ticket.objects.filter(title="Keep me").exists()
