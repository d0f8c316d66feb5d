"""Writing a view's result to the user's ``-o`` path, with failures said as the user's.

``graph -o``, ``export -o``, ``keys export -o`` and ``pipeline from -o`` all
write through here. The write is atomic (a temporary file beside the target,
then a rename), so when it fails the low-level error names that temporary
file, which the user never asked for; and an unwritable or missing directory
is the user's input, not a sharklib bug. So every ``OSError`` becomes one
:class:`~sharklib.errors.SharkError` naming the requested path and the reason
(exit 2), and nothing is left behind.
"""

from __future__ import annotations

import os

from sharklib.errors import SharkError


def cannot_write(out: str, exc: OSError) -> SharkError:
    """The one-line error for a failed write to ``out`` (the path the user gave)."""
    parent = os.path.dirname(os.path.abspath(out)) or "."
    if not os.path.isdir(parent):
        reason = f"no such directory {parent}"
    elif os.path.isdir(out) and not os.path.islink(out):
        reason = "it is a directory"
    else:
        reason = (exc.strerror or str(exc)).lower() if exc.strerror else str(exc)
    return SharkError(f"cannot write here: {reason}", out)


def write_output(out: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``out`` atomically; any failure is a one-line error naming ``out``."""
    from sharklib.hashing import atomic_write

    target = os.fspath(out)
    try:
        atomic_write(target, data, fsync=False)
    except OSError as exc:
        raise cannot_write(target, exc) from None
