"""Python code as read-only, highlighted HTML with line numbers (Pygments), for the pages.

The colours live in static/scheduled_tasks/code.css (regenerate with the command in its header).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

CSS_CLASS = "codehilite"

# "Line 3: ..." (compile refusals, form errors) and "  Line 3, in snippet" (tracebacks).
_LINE = re.compile(r"^\s*Line (\d+)\b", re.MULTILINE)


def error_lines(error: str) -> list[int]:
    """The snippet lines an error message names, in order, without repeats."""
    seen: dict[int, None] = {}
    for match in _LINE.finditer(error or ""):
        seen.setdefault(int(match.group(1)), None)
    return list(seen)


def highlight_python(code: str, *, marked: Iterable[int] = (), anchor: str = "") -> str:
    """Escaped HTML: a table of line numbers and highlighted code; ``marked`` lines get the
    ``hll`` class; with ``anchor`` each line has the id ``<anchor>-<n>``."""
    formatter = HtmlFormatter(
        cssclass=CSS_CLASS,
        linenos="table",
        hl_lines=list(marked),
        lineanchors=anchor,
        anchorlinenos=bool(anchor),
        wrapcode=True,
    )
    return highlight(code, PythonLexer(stripnl=False, ensurenl=True), formatter)
