"""What a snippet may say and do: RestrictedPython's compiler, its guards, our builtins.

The compile step (``compile_snippet``) refuses forbidden syntax with the snippet's line number.
The runtime guards (``restricted_globals``) are what RestrictedPython's rewritten code calls for
every attribute read, item read, iteration, write and print.
"""

from __future__ import annotations

import ast
import builtins
import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType
from typing import Any

from RestrictedPython import RestrictingNodeTransformer, compile_restricted_exec
from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    raise_,
    safe_builtins,
    safer_getattr,
)
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from scheduled_tasks.sandbox import vetting
from scheduled_tasks.sandbox.errors import SandboxViolation

SNIPPET_FILENAME = vetting.SNIPPET_FILENAME

# Attributes that lead from a harmless object to interpreter internals (frames, code objects,
# globals) without a leading underscore, so the underscore rule alone does not stop them.
FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "gi_frame", "gi_code", "gi_yieldfrom", "gi_running", "gi_suspended",
        "cr_frame", "cr_code", "cr_await", "cr_origin", "cr_running", "cr_suspended",
        "ag_frame", "ag_code", "ag_await", "ag_running",
        "tb_frame", "tb_next", "tb_lasti", "tb_lineno",
        "f_back", "f_builtins", "f_code", "f_globals", "f_locals", "f_trace", "f_lasti",
        "co_code", "co_consts", "co_names",
        "func_globals", "func_code", "im_func", "im_self", "mro",
        "format", "format_map", "vformat", "get_field", "get_value",
        "with_traceback",
    }
)  # fmt: skip


# Modules a snippet may import; each is handed over as a vetted proxy (see namespace.py).
ALLOWED_IMPORTS = (
    "collections", "datetime", "decimal", "itertools", "json", "math", "random", "re",
    "statistics", "string",
)  # fmt: skip

_COMPILE_TIME_REFUSED = FORBIDDEN_ATTRIBUTES - INSPECT_ATTRIBUTES - {"format"}


@dataclass(frozen=True)
class CodeProblem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"Line {self.line}: {self.message}" if self.line else self.message


class SnippetPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, tightened further."""

    def visit_TryStar(self, node: ast.AST) -> Any:
        # except* has corrupted frames on some 3.11 builds under RestrictedPython.
        self.error(node, "try/except* is not allowed in snippets.")

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        # RestrictedPython rebuilds the class statement from a template parsed at line 1:
        # give it (and its metaclass keyword) the snippet's position, for error line numbers.
        new = super().visit_ClassDef(node)
        for target in (new, *(keyword.value for keyword in new.keywords), *new.keywords):
            ast.copy_location(target, node)
        return new

    def visit_Match(self, node: ast.AST) -> Any:
        # Class patterns read attributes without going through _getattr_.
        self.error(node, "match statements are not allowed in snippets.")

    def _check_module(self, node: ast.AST, name: str | None) -> None:
        if name not in ALLOWED_IMPORTS:
            allowed = ", ".join(ALLOWED_IMPORTS)
            self.error(node, f"import of {name!r} is not allowed (allowed: {allowed}).")

    def visit_Import(self, node: ast.Import) -> Any:
        for alias in node.names:
            self._check_module(node, alias.name)
        return super().visit_Import(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        if node.level:
            self.error(node, "relative imports are not allowed in snippets.")
        else:
            self._check_module(node, node.module)
        return super().visit_ImportFrom(node)

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        # (RestrictedPython already reports its own INSPECT_ATTRIBUTES; don't say it twice.)
        if node.attr in _COMPILE_TIME_REFUSED:
            self.error(node, f'"{node.attr}" is a restricted attribute.')
        return super().visit_Attribute(node)


def _problem_from_message(message: str) -> CodeProblem:
    # RestrictedPython reports "Line N: text"; split it so forms can show both parts.
    if message.startswith("Line "):
        head, _, text = message.partition(":")
        number = head.removeprefix("Line ").strip()
        if number.isdigit():
            return CodeProblem(int(number), text.strip())
    return CodeProblem(None, message)


def compile_snippet(code: str) -> tuple[CodeType | None, list[CodeProblem]]:
    """Compile ``code`` under the sandbox policy: (code object, []) or (None, problems).

    Cached by the code's text (code objects are immutable): a task's snippet is compiled once
    per process, before the fork, not once per run.
    """
    compiled, problems = _compile_cached(code)
    return compiled, list(problems)


@functools.lru_cache(maxsize=256)
def _compile_cached(code: str) -> tuple[CodeType | None, tuple[CodeProblem, ...]]:
    compiled, problems = _compile(code)
    return compiled, tuple(problems)


def _compile(code: str) -> tuple[CodeType | None, list[CodeProblem]]:
    if "\x00" in code:
        return None, [CodeProblem(None, "The code contains a NUL character.")]
    try:
        result = compile_restricted_exec(code, filename=SNIPPET_FILENAME, policy=SnippetPolicy)
    except (RecursionError, MemoryError):
        return None, [CodeProblem(None, "The code is nested too deeply to compile.")]
    problems = [_problem_from_message(m) for m in result.errors]
    if problems or result.code is None:
        return None, problems or [CodeProblem(None, "The code could not be compiled.")]
    return result.code, []


def check_code(code: str) -> list[CodeProblem]:
    """The problems that stop ``code`` from running in the sandbox (empty when it compiles)."""
    return compile_snippet(code)[1]


# --- runtime guards --------------------------------------------------------------------------


def _refused(obj: Any) -> SandboxViolation:
    return SandboxViolation(f"{type(obj).__name__} objects cannot be used in snippets")


def guarded_getattr(obj: Any, name: str) -> Any:
    """Attribute reads, denied by default: only on vetted objects (see vetting.py), never to
    names starting with ``_`` or to our list of internals-reaching attributes."""
    if type(name) is not str:
        raise TypeError("attribute names must be plain strings")
    if name in FORBIDDEN_ATTRIBUTES:
        if name in ("format", "format_map") and type(obj) is str:
            raise SandboxViolation("str.format() is not allowed in snippets; use an f-string")
        raise SandboxViolation(f'access to "{name}" is not allowed in snippets')
    if name == "obj" and isinstance(obj, BaseException):
        # AttributeError.obj is the object whose attribute was missing.
        raise SandboxViolation('access to "obj" of an exception is not allowed in snippets')
    if vetting.is_proxy(obj) and not vetting.is_open_proxy(obj):
        if name.startswith("_"):
            raise SandboxViolation(f'"{name}" is not available in snippets')
        # Proxies (models, modules) decide for themselves which names they expose.
        return type(obj).__sandbox_getattr__(obj, name)
    if not vetting.allows_attributes(obj):
        raise _refused(obj)
    # RestrictedPython's default would turn a missing attribute into None; raise instead.
    return safer_getattr(obj, name, raise_)


def guarded_getattr_builtin(obj: Any, name: str, *default: Any) -> Any:
    """The ``getattr`` builtin offered to snippets: same rules as ``obj.name``."""
    if not isinstance(name, str):
        raise TypeError("getattr(): attribute name must be a string")
    try:
        return guarded_getattr(obj, name)
    except AttributeError:
        if default:
            return default[0]
        raise


def guarded_hasattr(obj: Any, name: str) -> bool:
    try:
        guarded_getattr_builtin(obj, name)
    except (AttributeError, SandboxViolation, NotImplementedError):
        return False
    return True


def guarded_getitem(obj: Any, key: Any) -> Any:
    if not vetting.allows_items(obj):
        raise _refused(obj)
    return obj[key]


def guarded_getiter(obj: Any) -> Any:
    if not vetting.allows_items(obj):
        raise _refused(obj)
    return iter(obj)


class _ProxyWriter:
    """What ``_write_`` hands back for a proxy: writes go through its own guard."""

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)

    def __setattr__(self, name: str, value: Any) -> None:
        guard = getattr(type(self._target), "__guarded_setattr__", None)
        if guard is None or type(name) is not str or name.startswith("_"):
            raise SandboxViolation(f"{type(self._target).__name__} objects cannot be changed")
        guard(self._target, name, value)

    def __delattr__(self, name: str) -> None:
        raise SandboxViolation("attributes cannot be deleted here")

    def __setitem__(self, key: Any, value: Any) -> None:
        raise SandboxViolation("items cannot be set here")

    def __delitem__(self, key: Any) -> None:
        raise SandboxViolation("items cannot be deleted here")


def guarded_write(obj: Any) -> Any:
    """``_write_``: attribute and item writes, denied by default like reads."""
    if vetting.allows_item_writes(obj) or vetting.allows_attribute_writes(obj):
        return obj
    if vetting.is_proxy(obj):
        return _ProxyWriter(obj)
    raise SandboxViolation(f"{type(obj).__name__} objects cannot be changed in snippets")


def guarded_setattr_builtin(obj: Any, name: Any, value: Any) -> None:
    """The ``setattr`` builtin offered to snippets: same rules as ``obj.name = value``."""
    if type(name) is not str or name.startswith("_"):
        raise SandboxViolation(f"setattr() of {name!r} is not allowed in snippets")
    setattr(guarded_write(obj), name, value)


def guarded_delattr_builtin(obj: Any, name: Any) -> None:
    if type(name) is not str or name.startswith("_"):
        raise SandboxViolation(f"delattr() of {name!r} is not allowed in snippets")
    delattr(guarded_write(obj), name)


_INPLACE = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "^=": operator.ixor,
    "|=": operator.ior,
    "@=": operator.imatmul,
}


def inplacevar(op: str, target: Any, value: Any) -> Any:
    try:
        return _INPLACE[op](target, value)
    except KeyError:
        raise SandboxViolation(f"operator {op} is not allowed") from None


def guarded_apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


class SandboxPrinter:
    """Replaces ``print`` in snippets: writes through ``sink`` (the captured output)."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        self._sink = sink

    def __call__(self, _getattr_: Any = None) -> SandboxPrinter:
        # RestrictedPython calls _print_(_getattr_) once per scope.
        return self

    def _call_print(self, *objects: Any, sep: Any = " ", end: Any = "\n", **kwargs: Any) -> None:
        if kwargs.get("file") is not None:
            raise SandboxViolation("print(file=...) is not allowed in snippets")
        sep = " " if sep is None else str(sep)
        end = "\n" if end is None else str(end)
        self._sink(sep.join(str(o) for o in objects) + end)

    def write(self, text: str) -> None:  # pragma: no cover - RestrictedPython API parity
        self._sink(str(text))


# Harmless builtins RestrictedPython 8+ leaves out because they iterate in C past _getiter_;
# our _getiter_ is not a security boundary (proxies guard their own iteration), so they are safe.
_EXTRA_BUILTINS: dict[str, Any] = {
    name: getattr(builtins, name)
    for name in (
        "all", "any", "bin", "dict", "enumerate", "filter", "format", "frozenset", "list",
        "map", "max", "min", "next", "reversed", "set", "sorted", "sum", "tuple", "zip",
    )
}  # fmt: skip
_REMOVED_BUILTINS = {"id", "hash", "__build_class__"}


def _allowed_base(base: Any) -> bool:
    # The snippet's own classes, and exception classes (a snippet's own errors derive from
    # Exception or a sandbox exception). Not proxies, not built-in types, not type itself.
    return isinstance(base, type) and (
        vetting.is_snippet_class(base)
        or (issubclass(base, BaseException) and vetting.vetted_class(base))
    )


def guarded_build_class(func: Any, name: Any, *bases: Any, **keywords: Any) -> type:
    """``__build_class__`` for snippets: class statements with vetted bases only.

    RestrictedPython passes ``metaclass=__metaclass__`` (our ``type``) to every class
    statement; any other keyword (a metaclass of the snippet's, ``__init_subclass__``
    arguments) is refused, and so is a base that is not the snippet's own class or an
    exception class. The class is registered as the snippet's: its instances take attribute
    writes (``self.count = 0``), nothing else of the sandbox's does.
    """
    if set(keywords) != {"metaclass"} or keywords["metaclass"] is not type:
        raise SandboxViolation("class keywords (metaclass=...) are not allowed in snippets")
    if type(name) is not str or not vetting.is_snippet_code(getattr(func, "__code__", None)):
        raise SandboxViolation("classes are made by class statements only")
    for base in bases:
        if not _allowed_base(base):
            what = base.__name__ if isinstance(base, type) else type(base).__name__
            raise SandboxViolation(
                f"class {name} cannot derive from {what}: snippet classes derive from their "
                "own classes and from exceptions only"
            )
    return vetting.register_snippet_class(builtins.__build_class__(func, name, *bases))


def snippet_builtins(*, import_hook: Callable[..., Any], printer: SandboxPrinter) -> dict[str, Any]:
    names = {k: v for k, v in safe_builtins.items() if k not in _REMOVED_BUILTINS}
    names.update(_EXTRA_BUILTINS)
    names.update(
        {
            "__import__": import_hook,
            "__build_class__": guarded_build_class,
            "getattr": guarded_getattr_builtin,
            "hasattr": guarded_hasattr,
            "iter": guarded_getiter,
            "setattr": guarded_setattr_builtin,
            "delattr": guarded_delattr_builtin,
            "_getattr_": guarded_getattr,
        }
    )
    return names


def restricted_globals(
    namespace: dict[str, Any],
    *,
    import_hook: Callable[..., Any],
    sink: Callable[[str], None],
) -> dict[str, Any]:
    """The globals a compiled snippet runs with."""
    printer = SandboxPrinter(sink)
    glb: dict[str, Any] = {
        "__builtins__": snippet_builtins(import_hook=import_hook, printer=printer),
        "__name__": "snippet",
        "__metaclass__": type,
        "_getattr_": guarded_getattr,
        "_getitem_": guarded_getitem,
        "_getiter_": guarded_getiter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": guarded_write,
        "_inplacevar_": inplacevar,
        "_apply_": guarded_apply,
        "_print_": printer,
    }
    glb.update(namespace)
    return glb
