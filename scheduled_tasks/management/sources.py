"""Reading a command's input file (or standard input) with clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import CommandError


def read_source(source: str, *, returncode: int) -> str:
    """The text of ``source`` (``-`` for standard input), or a CommandError saying why not."""
    if source == "-":
        return sys.stdin.read()
    try:
        # utf-8-sig: files saved by some Windows editors start with a byte-order mark.
        return Path(source).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CommandError(f"cannot read {source}: no such file", returncode=returncode) from None
    except IsADirectoryError:
        raise CommandError(
            f"cannot read {source}: it is a directory", returncode=returncode
        ) from None
    except UnicodeDecodeError as exc:
        raise CommandError(
            f"cannot read {source}: not UTF-8 text (byte {exc.start})", returncode=returncode
        ) from None
    except OSError as exc:
        raise CommandError(
            f"cannot read {source}: {exc.strerror or exc}", returncode=returncode
        ) from None
