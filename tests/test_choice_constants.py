"""No raw status, trigger or catch-up strings in the scheduler's code and templates.

A status written as ``"pending"`` is invisible to a rename and to grep for the constant; the
code says ``Execution.Status.PENDING``, templates compare against ``Status`` passed in the
context. The scan looks for a choice value used *as* a choice: compared with ``==``/``in``,
passed or assigned to a ``status``/``trigger``/``catch_up`` name or lookup, or given as a
dict value under such a key. The same words as JSON keys or option names are left alone.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from scheduled_tasks.choices import CatchUp
from scheduled_tasks.models import Execution

APP = Path(__file__).resolve().parent.parent / "scheduled_tasks"
VALUES = {str(c.value) for enum in (Execution.Status, Execution.Trigger, CatchUp) for c in enum}
FIELDS = {"status", "last_status", "trigger", "catch_up"}

# Not scanned: migrations freeze the values as they were; the sandbox's "completed" / "failed"
# / "timeout" are its own result protocol, not the model's choices.
SKIPPED_DIRS = {APP / "migrations", APP / "sandbox"}
# (file, line text) pairs allowed to keep a literal, each with its reason.
ALLOWED = {
    # In ``Meta`` the enclosing class's ``Trigger`` is not in scope.
    ("executions.py", 'condition=models.Q(trigger="schedule"),'),
}


def _names_a_field(name: str | None) -> bool:
    # Any step of a lookup path: ``status__in``, ``last_execution__status``.
    return name is not None and any(part in FIELDS for part in name.split("__"))


def _literals(node: ast.AST | None) -> list[ast.Constant]:
    """The choice-valued string constants ``node`` is, or holds as a tuple/list/set element."""
    if isinstance(node, ast.Constant) and node.value in VALUES:
        return [node]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [c for elt in node.elts for c in _literals(elt)]
    return []


def _target_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_choices_class(node: ast.ClassDef) -> bool:
    return any(_target_name(base) in {"TextChoices", "IntegerChoices"} for base in node.bases)


def raw_choice_literals(source: str) -> list[int]:
    """Line numbers where a choice value is written as a raw string and used as a choice."""
    tree = ast.parse(source)
    found: list[ast.Constant] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, ast.Eq | ast.NotEq | ast.Is | ast.IsNot):
                    found += _literals(node.left) + _literals(right)
                elif isinstance(op, ast.In | ast.NotIn):
                    found += _literals(right)
        elif isinstance(node, ast.keyword) and _names_a_field(node.arg):
            found += _literals(node.value)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and _names_a_field(str(key.value)):
                    found += _literals(value)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_names_a_field(_target_name(t)) for t in targets):
                found += _literals(node.value)
        elif isinstance(node, ast.arguments):
            params = [*node.posonlyargs, *node.args]
            for param, default in zip(
                params[len(params) - len(node.defaults) :], node.defaults, strict=True
            ):
                if _names_a_field(param.arg):
                    found += _literals(default)
            for param, default in zip(node.kwonlyargs, node.kw_defaults, strict=True):
                if _names_a_field(param.arg):
                    found += _literals(default)
    # The choices' own declarations (``PENDING = "pending", "Pending"``) are the one place.
    declared = {
        id(const)
        for cls in ast.walk(tree)
        if isinstance(cls, ast.ClassDef) and _is_choices_class(cls)
        for const in ast.walk(cls)
    }
    return sorted({c.lineno for c in found if id(c) not in declared})


def _python_files() -> list[Path]:
    return sorted(
        path
        for path in APP.rglob("*.py")
        if not any(skipped in path.parents for skipped in SKIPPED_DIRS)
    )


def _templates() -> list[Path]:
    return sorted((APP / "templates").rglob("*.html"))


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(APP)))
def test_python_code_uses_choice_constants(path: Path) -> None:
    lines = path.read_text().splitlines()
    raw = [
        f"{path.name}:{n}: {lines[n - 1].strip()}"
        for n in raw_choice_literals(path.read_text())
        if (path.name, lines[n - 1].strip()) not in ALLOWED
    ]
    assert raw == [], "use Execution.Status / Execution.Trigger / CatchUp, not raw strings"


TEMPLATE_TAG = re.compile(r"{%.*?%}|{{.*?}}", re.S)
QUOTED = re.compile(r"""(["'])(\w+)\1""")


@pytest.mark.parametrize("path", _templates(), ids=lambda p: p.name)
def test_templates_compare_against_constants(path: Path) -> None:
    raw = [
        f"{path.name}: {tag.group()}"
        for tag in TEMPLATE_TAG.finditer(path.read_text())
        if any(m.group(2) in VALUES for m in QUOTED.finditer(tag.group()))
    ]
    assert raw == [], "compare with Status.PENDING (passed in the context), not 'pending'"


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ('if execution.status == "pending": pass', [1]),
        ('qs.filter(status__in=["pending", Status.RUNNING])', [1]),
        ('run(task, trigger="manual")', [1]),
        ('values = {"status": "failed"}', [1]),
        ('execution.status = "skipped"', [1]),
        ('def f(trigger="retry"): pass', [1]),
        ('if task.catch_up in ("skip",): pass', [1]),
        ('class S(models.TextChoices):\n    PENDING = "pending", "Pending"', []),
        ('REQUIRED = ("name", "schedule")', []),
        ('options["timeout"]', []),
        ('if "schedule" not in raw: pass', []),
        ('run(timeout=3, label="test")', []),
    ],
)
def test_the_scan_finds_choice_literals_used_as_choices(source: str, flagged: list[int]) -> None:
    assert raw_choice_literals(source) == flagged
