"""Errors that reach the user as one line.

Every failure a user can cause (a corrupt sidecar, a missing key, a hostile
cache entry) is raised as a :class:`SharkError` naming the file, so the CLI can
print one line and exit non-zero instead of showing a traceback.
"""

from __future__ import annotations

import os

_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def printable(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\n``), for a terminal.

    Recorded paths, commands and URLs may be hostile: an ESC sequence in a file name
    could clear or recolour the user's terminal, or forge a "verified" line, and a
    newline breaks a one-line message. Every place that prints a recorded name uses
    this one function (views add Rich markup escaping on top: ``safe_markup``).
    """
    return text.translate(_CONTROL)


class SharkError(Exception):
    """A user-facing failure: ``str()`` is the one line the CLI prints."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None,
                 line: int | None = None) -> None:
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}"
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        # one line, and no terminal escapes from the file names it quotes
        return printable(f"{where}{self.message}")


class SidecarError(SharkError):
    """A sidecar (``*.intoto.jsonl``) is malformed, truncated, hostile or tampered."""


class SignatureError(SharkError):
    """A signature does not verify, or the key that should check it is missing."""


class KeyMaterialError(SharkError):
    """A signing key is missing, unreadable or malformed."""


class StoreError(SharkError):
    """A cache object or index entry is missing, corrupt or hostile."""


class TraceError(SharkError):
    """The native tracer cannot run here, or lost events."""


class PipelineError(SharkError):
    """A Markdown pipeline is malformed; ``line`` names the document line."""
