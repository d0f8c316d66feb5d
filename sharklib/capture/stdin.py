"""Standard input is an input too: a file it was redirected from, or a stream that cannot be checked.

``python step.py < stations.csv`` depends on ``stations.csv`` as on any file it
opens, so once the script reads its standard input that file is recorded as a
data input, and a reuse re-checks its digest. ``cat x | python step.py`` (or a
terminal, or a socket) depends on bytes that are gone once read: they are neither
digested nor replayable, so such a run is recorded with the kind of stream it
read (``Run.stdin``) and never reused: a reuse would give the old answer to
another question.

Reads are seen where they happen. ``sys.stdin`` is replaced at start by an
identical text stream whose raw layer notes the first read (the same layering
the tee of ``sys.stdout`` uses); ``input()`` raises an audit event; ``open(0)``
and ``/dev/stdin`` are opens. A process's stdin is only watched when it is the
root's own stream or a file: a pipe a captured parent made for its child
(``subprocess.run(..., input=data)``) carries data from inside the tree.
What a non-Python child reads from an inherited standard input is not seen.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys

from sharklib.config import ENV_STDIN

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

#: ``dev:ino`` of the root process's standard input, inherited by its children
STDIN_PATHS = ("/dev/stdin", "/proc/self/fd/0")


def _kind(st: os.stat_result) -> str | None:
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISFIFO(st.st_mode):
        from sharklib.common.identity import make_job_stdin

        # make -j's closed pipe, keyed as make's own empty input (/dev/null)
        return None if make_job_stdin(0) is not None else "pipe"
    if stat.S_ISSOCK(st.st_mode):
        return "socket"
    if stat.S_ISCHR(st.st_mode) and os.isatty(0):
        return "terminal"
    return None  # /dev/null and other devices: nothing a rerun could see differently


def watch(rec: Any, root: bool) -> None:
    """Note on ``rec`` the kind of this process's stdin and make its first read visible."""
    try:
        st = os.fstat(0)
    except OSError:
        return
    kind = _kind(st)
    if kind is None:
        return
    ident = f"{st.st_dev}:{st.st_ino}"
    if root:
        os.environ[ENV_STDIN] = ident
    elif kind != "file" and os.environ.get(ENV_STDIN) != ident:
        return
    rec.stdin_kind = kind
    _replace_sys_stdin(rec)


class _WatchedStdin(io.RawIOBase):
    """Raw layer of the replacement ``sys.stdin``: descriptor 0, telling the recorder once."""

    def __init__(self, rec: Any) -> None:
        super().__init__()
        self._file = io.FileIO(0, "r", closefd=False)
        self._rec: Any = rec
        self.name = "<stdin>"

    def readinto(self, b: Any) -> int | None:
        rec = self._rec
        if rec is not None:
            self._rec = None
            rec.stdin_read()
        return self._file.readinto(b)

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 0

    def isatty(self) -> bool:
        return self._file.isatty()

    def seekable(self) -> bool:
        return self._file.seekable()

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._file.seek(pos, whence)

    def tell(self) -> int:
        return self._file.tell()


def _replace_sys_stdin(rec: Any) -> None:
    orig = sys.stdin
    if (orig is None or type(orig) is not io.TextIOWrapper or orig.closed
            or sys.__stdin__ is not orig or orig.fileno() != 0
            or not isinstance(orig.buffer, io.BufferedReader)):
        return  # already replaced by someone else: reads through input() and open(0) still count
    new = io.TextIOWrapper(io.BufferedReader(_WatchedStdin(rec)), encoding=orig.encoding,
                           errors=orig.errors, newline="\n", line_buffering=orig.line_buffering)
    with contextlib.suppress(AttributeError, ValueError):
        new.mode = orig.mode  # type: ignore[misc]
    sys.stdin = new
    # typeshed declares __stdin__ Final; code that restores sys.stdin from it must get ours
    sys.__stdin__ = new  # type: ignore[misc]

