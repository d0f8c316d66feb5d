"""Atomic file writes: a temporary file in the same directory, then ``os.replace``.

A reader (or a crash) therefore sees either the old file or the whole new one,
never a prefix. ``fsync`` before the rename makes the new content durable.

The temporary file is made with ``os.open(O_CREAT | O_EXCL)`` under a random
``.sharklib-*.tmp`` name rather than ``tempfile.mkstemp``: the same guarantees
(private until renamed, never an existing file), without importing
``tempfile`` and its random-name generator, which cost ~0.15 ms per file when
a run writes hundreds of sidecars.
"""

from __future__ import annotations

import contextlib
import os

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | \
    getattr(os, "O_NOFOLLOW", 0)


def _create_temporary(directory: str) -> tuple[int, str]:
    for _ in range(100):
        tmp = os.path.join(directory, f".sharklib-{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, _FLAGS, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {directory}")


def write_temporary(directory: str, data: bytes, mode: int = 0o644, fsync: bool = False) -> str:
    """A new ``.sharklib-*.tmp`` file in ``directory`` holding ``data``; returns its path.

    The caller renames or links it into place, and removes it.
    """
    fd, tmp = _create_temporary(directory)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o644,
                 fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so that it appears whole or not at all."""
    target = os.fspath(path)
    tmp = write_temporary(os.path.dirname(os.path.abspath(target)), data, mode, fsync)
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
