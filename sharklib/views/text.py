"""Recorded text made safe for a terminal: markup escaped, paths shortened, one-line notes.

Recorded paths, commands and URLs come from a sidecar that may be hostile;
every view prints them through these helpers (control characters are shown
as escapes by :func:`sharklib.errors.printable`).
"""

from __future__ import annotations

import os

from sharklib.errors import printable


def safe_markup(text: str) -> str:
    """A recorded string ready to embed in Rich markup: markup escaped, control characters shown.

    ``[b]report.txt`` must print as itself, not as a bold ``report.txt``; an
    ESC or newline must print as ``\\x1b``/``\\n`` (see :func:`printable`).
    """
    from rich.markup import escape

    return escape(printable(text))


def note(text: str) -> None:
    """A one-line notice on standard error (stdout stays the command's output, e.g. JSON)."""
    import sys

    sys.stderr.write(f"sharklib: note: {printable(text)}\n")
    sys.stderr.flush()


def display_path(path: str, base: str) -> str:
    """``path`` relative to ``base`` when inside it; a directory listing keeps its ``/``."""
    rel = os.path.relpath(path, base)
    if rel.startswith(".."):
        return path
    return rel + "/" if path.endswith("/") and rel != "." else rel
