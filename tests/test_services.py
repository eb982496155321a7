"""The task service (scheduled_tasks/services.py): the one way a task is written.

Three parts: the service's own behaviour (time injected); every way of writing a task gives the
same result for the same input (page toggle, admin action, import); and nothing but the service
writes a task, apart from the runner's bookkeeping columns.
"""

from __future__ import annotations

import ast
import io
import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.db.models.sql import compiler
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scheduled_tasks import claims, import_export, services
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.services import RUNNER_FIELDS, CannotActivate
from tests.factories import T0, make_execution, make_task, make_user, task_form_data

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def state(task: ScheduledTask) -> tuple[bool, datetime | None]:
    task.refresh_from_db()
    return task.is_active, task.next_run_at


# --- the service ---------------------------------------------------------------------------------


def test_save_task_puts_a_new_task_on_its_grid_from_now(now: datetime) -> None:
    editor = make_user("ed")
    task = ScheduledTask(name="hourly", code="print(1)", every=1, unit="hours", anchor=T0)
    services.save_task(task, now=now + timedelta(minutes=30), user=editor)
    task.refresh_from_db()
    assert task.next_run_at == T0 + timedelta(hours=1)
    assert task.created_by == task.updated_by == editor


def test_save_task_leaves_the_runners_columns_alone(now: datetime) -> None:
    task = make_task(name="edited")
    stale = ScheduledTask.objects.get(pk=task.pk)  # read before a run was claimed
    run = make_execution(task, status="failed")
    ScheduledTask.objects.filter(pk=task.pk).update(
        last_execution=run, last_run_at=now, last_failed=True
    )
    stale.description = "edited while a run was claimed and failed"
    services.save_task(stale, now=now)
    task.refresh_from_db()
    assert (task.last_execution_id, task.last_status, task.last_run_at) == (run.pk, "failed", now)
    assert task.description == "edited while a run was claimed and failed"


def test_save_task_keeps_the_creator_of_an_existing_task(now: datetime) -> None:
    creator, editor = make_user("creator"), make_user("editor")
    task = ScheduledTask(name="t", code="print(1)", anchor=T0)
    services.save_task(task, now=now, user=creator)
    services.save_task(task, now=now, user=editor)
    task.refresh_from_db()
    assert (task.created_by, task.updated_by) == (creator, editor)


def test_save_task_refuses_an_active_past_one_off_and_saves_nothing(now: datetime) -> None:
    task = ScheduledTask(name="late", code="print(1)", schedule_kind="once", run_at=now, anchor=T0)
    with pytest.raises(CannotActivate, match=r"one-off whose time .* has passed"):
        services.save_task(task, now=now + timedelta(seconds=1))
    assert task.pk is None
    assert not ScheduledTask.objects.exists()


def test_save_task_keeps_an_inactive_past_one_off_without_a_next_run(now: datetime) -> None:
    task = ScheduledTask(
        name="ran", code="print(1)", schedule_kind="once", run_at=now, anchor=T0, is_active=False
    )
    services.save_task(task, now=now + timedelta(days=1))
    assert state(task) == (False, None)


def test_an_invalid_stored_schedule_cannot_be_active(now: datetime) -> None:
    task = ScheduledTask(name="bad", code="print(1)", time_zone="Mars/Olympus", anchor=T0)
    with pytest.raises(CannotActivate, match="its schedule is invalid"):
        services.save_task(task, now=now)


def test_set_active_activates_on_the_grid_and_deactivates(now: datetime) -> None:
    task = make_task(name="t", is_active=False, next_run_at=None)
    assert services.set_active(task, True, now=now + timedelta(minutes=1)) is True
    assert state(task) == (True, T0 + timedelta(hours=1))
    assert services.set_active(task, False, now=now) is True
    assert state(task) == (False, None)


def test_set_active_to_the_current_state_writes_nothing(
    now: datetime, django_assert_num_queries: Any
) -> None:
    task = make_task(name="t")
    with django_assert_num_queries(0):
        assert services.set_active(task, True, now=now) is False


def test_set_active_refuses_a_past_one_off_and_leaves_it_as_it_was(now: datetime) -> None:
    task = make_task(
        name="done", schedule_kind="once", run_at=T0, is_active=False, next_run_at=None
    )
    with pytest.raises(CannotActivate) as refused:
        services.set_active(task, True, now=T0 + timedelta(hours=1))
    assert "Task “done” was not activated" in str(refused.value)
    assert "2026-01-05 09:00 UTC" in str(refused.value)
    assert (task.is_active, task.next_run_at) == (False, None)  # in memory too
    assert state(task) == (False, None)


def test_set_active_repairs_an_active_task_left_without_a_next_run(now: datetime) -> None:
    task = make_task(name="stuck", next_run_at=None)  # what the old admin action left
    assert services.set_active(task, True, now=now) is True
    assert state(task) == (True, T0)


def test_set_active_many_reports_each_refusal(now: datetime) -> None:
    ok = make_task(name="ok", is_active=False, next_run_at=None)
    late = make_task(
        name="late", schedule_kind="once", run_at=T0, is_active=False, next_run_at=None
    )
    result = services.set_active_many([ok, late], True, now=now + timedelta(minutes=1))
    assert result.changed == [ok]
    assert [(r.task, type(r)) for r in result.refused] == [(late, CannotActivate)]
    assert state(late) == (False, None)


def test_delete_task_and_delete_tasks_take_the_executions_along(now: datetime) -> None:
    one, two, three = (make_task(name=n) for n in ("one", "two", "three"))
    for task in (one, two, three):
        make_execution(task)
    services.delete_task(one)
    assert services.delete_tasks(ScheduledTask.objects.filter(name__in=["two", "x"])) == 1
    assert list(ScheduledTask.objects.values_list("name", flat=True)) == ["three"]
    assert Execution.objects.count() == 1


def test_effective_timeout_is_the_tasks_own_or_the_default(settings: Any) -> None:
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "DEFAULT_TIMEOUT_SECONDS": 42}
    assert services.effective_timeout(ScheduledTask(timeout_seconds=7)) == 7
    assert services.effective_timeout(ScheduledTask(timeout_seconds=None)) == 42
    assert services.effective_timeout(None) == 42


# --- every way of writing a task: the same input, the same result --------------------------------


@pytest.fixture
def superuser() -> User:
    return User.objects.create_superuser("root", "root@example.com", "pw-12345-secret")


def _messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def activate_on_page(client: Client, task: ScheduledTask) -> list[str]:
    return _messages(client.post(reverse("scheduled_tasks:task_toggle", args=[task.pk])))


def activate_in_admin(client: Client, task: ScheduledTask) -> list[str]:
    url = reverse("admin:scheduled_tasks_scheduledtask_changelist")
    response = client.post(url, {"action": "activate_tasks", "_selected_action": [task.pk]})
    return _messages(response)


def activate_by_import(client: Client, task: ScheduledTask) -> list[str]:
    entry = import_export.export_task(task)
    entry["active"] = True
    try:
        import_export.import_tasks([entry], now=timezone.now())
    except import_export.ImportValidationError as exc:
        return [str(problem) for problem in exc.problems]
    return []


WAYS: dict[str, Callable[[Client, ScheduledTask], list[str]]] = {
    "page toggle": activate_on_page,
    "admin action": activate_in_admin,
    "import": activate_by_import,
}


@pytest.mark.parametrize("way", WAYS)
def test_activating_a_past_one_off_is_refused_every_way(
    client: Client, superuser: User, way: str
) -> None:
    client.force_login(superuser)
    past = timezone.now() - timedelta(days=1)
    task = make_task(
        name="done", schedule_kind="once", run_at=past, is_active=False, next_run_at=None
    )
    messages = WAYS[way](client, task)
    assert state(task) == (False, None)
    refusals = [m for m in messages if "done" in m and ("has passed" in m or "in the past" in m)]
    assert refusals, messages


@pytest.mark.parametrize("way", WAYS)
def test_activating_a_future_one_off_schedules_it_every_way(
    client: Client, superuser: User, way: str
) -> None:
    client.force_login(superuser)
    soon = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    task = make_task(
        name="soon", schedule_kind="once", run_at=soon, is_active=False, next_run_at=None
    )
    WAYS[way](client, task)
    assert state(task) == (True, soon)


@pytest.mark.parametrize("way", WAYS)
def test_activating_an_interval_task_puts_it_on_its_grid_every_way(
    client: Client, superuser: User, way: str
) -> None:
    client.force_login(superuser)
    task = make_task(name="hourly", anchor=T0, is_active=False, next_run_at=None)
    before = timezone.now()
    WAYS[way](client, task)
    after = timezone.now()
    active, next_run_at = state(task)
    assert active is True
    assert next_run_at in {task.first_run_after(before), task.first_run_after(after)}


def test_admin_bulk_activate_refuses_per_task_and_activates_the_rest(
    client: Client, superuser: User
) -> None:
    client.force_login(superuser)
    past = timezone.now() - timedelta(days=1)
    late = [
        make_task(name=n, schedule_kind="once", run_at=past, is_active=False, next_run_at=None)
        for n in ("late one", "late two")
    ]
    fine = make_task(name="fine", is_active=False, next_run_at=None)
    url = reverse("admin:scheduled_tasks_scheduledtask_changelist")
    ids = [t.pk for t in (*late, fine)]
    messages = _messages(client.post(url, {"action": "activate_tasks", "_selected_action": ids}))
    assert sum("“late one” was not activated" in m for m in messages) == 1
    assert sum("“late two” was not activated" in m for m in messages) == 1
    assert "Activated 1 task." in messages
    assert [state(t) for t in late] == [(False, None), (False, None)]
    assert state(fine)[0] is True


def test_admin_form_refuses_what_the_service_refuses(client: Client, superuser: User) -> None:
    client.force_login(superuser)
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        reverse("admin:scheduled_tasks_scheduledtask_add"),
        task_form_data(name="late", schedule_kind="once", run_at=past),
    )
    assert response.status_code == 200  # the form again, with the error
    assert "in the past" in response.content.decode()
    assert not ScheduledTask.objects.exists()


# --- nothing else writes a task ------------------------------------------------------------------
#
# The rule: a task's definition (what a person sets: name, code, schedule, settings, active)
# is written only by scheduled_tasks/services.py. The runner keeps five bookkeeping columns
# (RUNNER_FIELDS: next_run_at, is_active, last_run_at, last_execution, last_failed) current when
# it claims work, in claims.py (a claim moves next_run_at, ends a one-off and points the task at
# its new record), and last_outcome.py marks a task failing when its latest run ends failed (a
# run's result is otherwise written to the execution alone): those two may write those columns
# and nothing else, and no other module writes a task.
# Checked twice: statically over the source, and at run time over every caller's path.

SERVICE = "scheduled_tasks/services.py"
BOOKKEEPING = frozenset({"scheduled_tasks/claims.py", "scheduled_tasks/last_outcome.py"})
# The sandbox's model proxies write only models of the snippet namespace (checked below).
SANDBOX = "scheduled_tasks/sandbox/"
WRITE_METHODS = frozenset({
    "save", "delete", "update", "create", "get_or_create", "update_or_create", "bulk_create",
    "bulk_update", "save_model", "delete_model", "delete_queryset", "save_base",
})  # fmt: skip
OTHER_MODELS = frozenset(
    {"Execution", "ExecutionLogLine", "SchedulerLease", "User", "Ticket", "Company", "Contact",
     "Alert", "AlertNotification", "RunnerHeartbeat", "ChartSnapshot"}
)  # fmt: skip
# The API's task serializer (shared by import): its save() calls services.save_task, and its
# own module is scanned like any other.
VIA_SERVICE = frozenset({"serializer"})


def _project_modules() -> Iterator[tuple[str, ast.Module]]:
    for package in ("scheduled_tasks", "ticketproo"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path))


def _root(node: ast.expr) -> ast.expr:
    """The innermost object of ``a.b(...).c[...]``: ``a``."""
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def _bindings(scope: ast.AST) -> dict[str, list[ast.expr]]:
    """What each local name of a function (or module) is bound to: assigned values and
    parameter annotations (a tuple target binds the value to each of its names)."""
    bound: dict[str, list[ast.expr]] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = list(node.targets) if isinstance(node, ast.Assign) else [node.target]
            while targets:
                target = targets.pop()
                if isinstance(target, ast.Name):
                    bound.setdefault(target.id, []).append(node.value)
                elif isinstance(target, ast.Tuple | ast.List):
                    targets.extend(target.elts)
        elif isinstance(node, ast.arg) and node.annotation is not None:
            bound.setdefault(node.arg, []).append(node.annotation)
    return bound


def _not_a_task(receiver: ast.expr, bound: dict[str, list[ast.expr]]) -> bool:
    """True when the receiver is plainly something else: another model, or a local name bound
    only to another model's rows or to a dict/set/list."""
    root = _root(receiver)
    if isinstance(root, ast.Name) and root.id in OTHER_MODELS:
        return True
    if not isinstance(root, ast.Name) or root.id not in bound:
        return False
    for value in bound[root.id]:
        if "ScheduledTask" in ast.unparse(value):
            return False
        inner = _root(value)
        plain = isinstance(value, ast.Dict | ast.Set | ast.List | ast.DictComp | ast.SetComp)
        other = isinstance(inner, ast.Name) and inner.id in OTHER_MODELS
        if not (plain or other or any(model in ast.unparse(value) for model in OTHER_MODELS)):
            return False
    return True


def _task_writes() -> Iterator[tuple[str, int, str, ast.Call]]:
    """Every call that may write a task, outside the service: (module, line, text, call)."""
    for module, tree in _project_modules():
        if module == SERVICE or module.startswith(SANDBOX):
            continue
        scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        for scope in [tree, *scopes]:
            bound = _bindings(scope)
            body = scope.body if scope is not tree else [
                n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.ClassDef)
            ]  # fmt: skip
            for node in (n for stmt in body for n in ast.walk(stmt)):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in WRITE_METHODS
                ):
                    continue
                if node.func.attr == "update" and node.args and not node.keywords:
                    continue  # dict.update / set.update: QuerySet.update takes keywords only
                if _not_a_task(node.func.value, bound):
                    continue
                if isinstance(node.func.value, ast.Name) and node.func.value.id in VIA_SERVICE:
                    continue
                yield module, node.lineno, ast.unparse(node.func), node


def test_nothing_but_the_service_writes_a_task_definition() -> None:
    found = sorted({
        (module, line, text)
        for module, line, text, call in _task_writes()
        if not (
            module in BOOKKEEPING
            and call.func.attr == "update"  # type: ignore[attr-defined]
            and "ScheduledTask" in text
            and {kw.arg for kw in call.keywords} <= RUNNER_FIELDS
        )
    })  # fmt: skip
    assert found == [], "write tasks through scheduled_tasks.services:\n" + "\n".join(
        f"  {module}:{line}: {text}(...)" for module, line, text in found
    )


def test_the_scan_would_catch_a_task_write() -> None:
    tree = ast.parse(
        "def f(task: ScheduledTask, form, queryset: QuerySet[ScheduledTask], stats):\n"
        "    task.save()\n"
        "    form.save()\n"
        "    queryset.update(is_active=False)\n"
        "    ScheduledTask.objects.create(name='x')\n"
        "    obj = ScheduledTask(name='y'); obj.save()\n"
        "    stats.update({'a': 1})\n"
        "    Execution.objects.filter(task=task).delete()\n"
    )
    function = tree.body[0]
    bound = _bindings(function)
    calls = [
        n
        for n in ast.walk(function)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in WRITE_METHODS
        and not (n.func.attr == "update" and n.args and not n.keywords)
    ]
    flagged = [ast.unparse(c.func) for c in calls if not _not_a_task(c.func.value, bound)]
    assert sorted(flagged) == sorted([
        "task.save", "form.save", "queryset.update", "ScheduledTask.objects.create", "obj.save"
    ])  # fmt: skip


def test_the_claim_writes_only_the_runners_columns() -> None:
    # _save_claimed writes these with one executemany UPDATE (not visible to the scan).
    assert set(claims._CLAIMED_FIELDS) <= RUNNER_FIELDS


def test_snippets_cannot_reach_the_task_model() -> None:
    from scheduled_tasks import conf

    models = [value["model"] for value in conf.get("NAMESPACE").values() if isinstance(value, dict)]
    assert models and not any(m.startswith("scheduled_tasks.") for m in models)


# At run time: every INSERT, UPDATE and DELETE of a task row is traced to the innermost
# project module on the stack, while each way of writing a task is exercised end to end.

_PROJECT_DIRS = tuple(str(ROOT / package) + "/" for package in ("scheduled_tasks", "ticketproo"))


@pytest.fixture
def task_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, frozenset[str]]]:
    """Records (module, kind, columns) for every write of a ScheduledTask row."""
    writes: list[tuple[str, str, frozenset[str]]] = []

    def writer() -> str:
        frame = sys._getframe(2)
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename.startswith(_PROJECT_DIRS):
                return Path(filename).relative_to(ROOT).as_posix()
            frame = frame.f_back  # type: ignore[assignment]
        return "tests"

    for name, kind in (
        ("SQLInsertCompiler", "insert"),
        ("SQLUpdateCompiler", "update"),
        ("SQLDeleteCompiler", "delete"),
    ):
        cls = getattr(compiler, name)
        original = cls.execute_sql

        def traced(self: Any, *args: Any, _original: Any = original, _kind: str = kind) -> Any:
            if self.query.model is ScheduledTask:
                columns = frozenset(
                    f.name for f, *_ in getattr(self.query, "values", ()) if f is not None
                )
                writes.append((writer(), _kind, columns))
            return _original(self, *args)

        monkeypatch.setattr(cls, "execute_sql", traced)
    return writes


def test_every_caller_writes_tasks_through_the_service(
    client: Client,
    superuser: User,
    task_writes: list[tuple[str, str, frozenset[str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client.force_login(superuser)
    # The pages: create, edit, deactivate, activate.
    client.post(reverse("scheduled_tasks:task_create"), task_form_data(name="page"))
    page = ScheduledTask.objects.get(name="page")
    client.post(
        reverse("scheduled_tasks:task_edit", args=[page.pk]),
        task_form_data(name="page", description="edited"),
    )
    for _ in range(2):
        client.post(reverse("scheduled_tasks:task_toggle", args=[page.pk]))
    # The admin: add, change, both bulk actions, delete one, delete selected.
    client.post(reverse("admin:scheduled_tasks_scheduledtask_add"), task_form_data(name="admin"))
    admin_task = ScheduledTask.objects.get(name="admin")
    client.post(
        reverse("admin:scheduled_tasks_scheduledtask_change", args=[admin_task.pk]),
        task_form_data(name="admin", description="changed"),
    )
    changelist = reverse("admin:scheduled_tasks_scheduledtask_changelist")
    for action in ("deactivate_tasks", "activate_tasks"):
        client.post(changelist, {"action": action, "_selected_action": [admin_task.pk]})
    # Import (the command), the built-in jobs and the demo data (their commands).
    entries = import_export.export_tasks(ScheduledTask.objects.all())
    entries.append({**entries[0], "name": "imported"})
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(entries)))
    call_command("import_scheduled_tasks", "-", stdout=io.StringIO())
    call_command("install_builtin_tasks", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    # Deleting, last.
    client.post(
        reverse("admin:scheduled_tasks_scheduledtask_delete", args=[page.pk]), {"post": "yes"}
    )
    client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [admin_task.pk], "post": "yes"},
    )

    assert not ScheduledTask.objects.filter(pk__in=[page.pk, admin_task.pk]).exists()
    assert ScheduledTask.objects.filter(name="imported").exists()
    ours = [write for write in task_writes if write[0] != "tests"]  # not the test's own rows
    assert {module for module, _, _ in ours} == {SERVICE}, ours
    kinds = {kind for _, kind, _ in ours}
    assert kinds == {"insert", "update", "delete"}


def test_the_runner_writes_only_its_own_columns(
    client: Client, superuser: User, task_writes: list[tuple[str, str, frozenset[str]]]
) -> None:
    from scheduled_tasks import runner

    task = make_task(name="due", code="print('ran')", next_run_at=T0)
    runner.tick(timezone.now())
    task.refresh_from_db()
    assert task.last_status == "completed"
    client.force_login(superuser)
    client.post(reverse("scheduled_tasks:task_run", args=[task.pk]))  # queues a manual run
    runner.tick(timezone.now())  # which a runner starts (claims.claim_pending) and records
    assert task.executions.filter(trigger="manual", status="completed").exists()
    ours = [write for write in task_writes if write[0] != "tests"]  # not make_task's insert
    assert ours, "the runner wrote nothing?"
    for module, kind, columns in ours:
        assert module in BOOKKEEPING, (module, kind, columns)
        assert kind == "update" and columns <= RUNNER_FIELDS, (module, kind, columns)
