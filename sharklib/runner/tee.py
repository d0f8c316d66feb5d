"""Copies of what a step prints to the streams it inherited, kept for a reuse to replay.

A traced or plainly launched step that inherits this process's stdout/stderr (a recipe line
under make, ``sharklib trace -- CMD``) writes straight to the terminal or log, and no record
held those bytes: a reuse then replayed nothing, and a step that only prints a summary lost its
whole output. Each inherited stream is handed to the step as a pipe whose bytes a thread writes
on to the real descriptor as they come and keeps a copy of. The bytes and their order within a
stream are the step's own; a program that formats differently for a terminal sees a pipe.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import IO, Any, TypedDict

from sharklib.common.sessiondir import STREAM_LIMIT


class _Copy:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.read_end, self.write_end = os.pipe()
        self.data = bytearray()
        self.overflow = False
        self.thread = threading.Thread(target=self._pump, daemon=True)

    def _pump(self) -> None:
        while chunk := os.read(self.read_end, 1 << 16):
            view = memoryview(chunk)
            with contextlib.suppress(OSError):
                while view:
                    view = view[os.write(self.fd, view):]
            if len(self.data) + len(chunk) > STREAM_LIMIT:
                self.overflow = True
            else:
                self.data += chunk
        os.close(self.read_end)


def _same_place(a: int, b: int) -> bool:
    """Do descriptors ``a`` and ``b`` lead to the same file, pipe or terminal?"""
    try:
        sa, sb = os.fstat(a), os.fstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


class Printed(TypedDict, total=False):
    """The bytes each teed stream carried, by the name :func:`sharklib.runner.record.record`
    takes them under (a merged stdout and stderr is all ``stdout``)."""

    stdout: bytes
    stderr: bytes


class StreamTee:
    """Tee the streams the step would inherit (``None``) while it runs; others pass through."""

    def __init__(self, stdout: IO[Any] | int | None, stderr: IO[Any] | int | None) -> None:
        self.copies: dict[str, _Copy] = {}
        #: what the step is handed: the write end of a copy's pipe, or what was given
        self.stdout: IO[Any] | int | None
        self.stderr: IO[Any] | int | None
        if stdout is None and stderr is None and _same_place(1, 2):
            # one terminal, or `2>&1`: one pipe for both keeps the order the reader saw, and
            # the replay writes it all to stdout, which is that same place
            merged = _Copy(1)
            self.copies["stdout"] = merged
            self.stdout = self.stderr = merged.write_end
            return
        for name, given, fd in (("stdout", stdout, 1), ("stderr", stderr, 2)):
            if given is None:
                self.copies[name] = _Copy(fd)
        self.stdout = self.copies["stdout"].write_end if "stdout" in self.copies else stdout
        self.stderr = self.copies["stderr"].write_end if "stderr" in self.copies else stderr

    def __enter__(self) -> StreamTee:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for c in {id(c): c for c in self.copies.values()}.values():
            c.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        copies = list({id(c): c for c in self.copies.values()}.values())
        for c in copies:
            os.close(c.write_end)  # the step's copies are closed: the pump sees end of file
        for c in copies:
            # a process the step left running in the background still holds the pipe: its
            # later bytes go on to the terminal, but no copy of them can be complete
            c.thread.join(timeout=2.0)
            if c.thread.is_alive():
                c.overflow = True

    def printed(self) -> Printed | None:
        """The bytes each teed stream carried; None when one was too large to keep."""
        if any(c.overflow for c in self.copies.values()):
            return None
        out = Printed()
        if "stdout" in self.copies:
            out["stdout"] = bytes(self.copies["stdout"].data)
        if "stderr" in self.copies:
            out["stderr"] = bytes(self.copies["stderr"].data)
        return out
