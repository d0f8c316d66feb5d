"""Atomic file writes: a temporary file in the same directory, then ``os.replace``.

A reader (or a crash) therefore sees either the old file or the whole new one,
never a prefix. ``fsync`` before the rename makes the new content durable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o644,
                 fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so that it appears whole or not at all."""
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".sharklib-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
