"""Errors that reach the user as one line.

Every failure a user can cause (a corrupt sidecar, a missing key, a hostile
cache entry) is raised as a :class:`SharkError` naming the file, so the CLI can
print one line and exit non-zero instead of showing a traceback.
"""

from __future__ import annotations

import os


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
        return f"{where}{self.message}"


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
