"""Query parameters of the API's own (not django-filter's): a bounded whole number."""

from __future__ import annotations

import re


def bounded_int(raw: str | None, low: int, high: int, default: int) -> int | None:
    """``raw`` as a whole number from ``low`` to ``high``; ``default`` when it is absent, None
    when it is anything else (only ASCII digits: ``int()`` would also take "²" or " 7")."""
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not low <= int(raw) <= high:
        return None
    return int(raw)
