"""The copies of a captured script's stdout and stderr kept in its session, for replay.

The session directory itself (its layout, the Run files) is
:mod:`sharklib.common.sessiondir`.

What is copied: writes through ``sys.stdout``/``sys.stderr`` (warnings, tracebacks,
"Exception in thread" included) and ``os.write(1|2, …)``, by the root process and by every
captured Python process that inherited the root's descriptors (a ``subprocess`` child, a
forked or spawned worker). One log, appended with ``O_APPEND`` right after each write, keeps
the interleaving a terminal or ``2>&1`` saw, so a reuse replays the same bytes in the same
order to the same descriptors.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys

from sharklib.common.sessiondir import STREAM_LIMIT, chunks
from sharklib.config import ENV_STREAM_IDS

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any



# -- redirected standard streams -------------------------------------------------------------


def stream_file(fd: int) -> tuple[str, tuple[int, int]] | None:
    """Path and (dev, ino) of a standard descriptor redirected to a regular file (or None)."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    target = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else None
    if not target or not target.startswith("/") or target.endswith(" (deleted)"):
        return None
    return target, (st.st_dev, st.st_ino)


# -- tee of sys.stdout / sys.stderr -----------------------------------------------------------




class _Log:
    """The session's ordered copy of both streams, shared by every process of the run.

    Each chunk is appended with one ``write`` on an ``O_APPEND`` descriptor right after
    the bytes reached the real descriptor, so chunks from several processes and from both
    streams land in the order they were written. Bounded by :data:`STREAM_LIMIT` per
    process; past it a ``stdout.truncated`` marker says the run cannot be replayed.
    """

    def __init__(self, session: str, limit: int = STREAM_LIMIT) -> None:
        self.path = os.path.join(session, "streams")
        self.limit = limit
        self.written = 0
        self.truncated = False
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def add(self, label: int, data: bytes | memoryview) -> None:
        if self.truncated or not data:
            return
        n = len(data)
        if self.written + n > self.limit:
            self.truncated = True
            with contextlib.suppress(OSError):
                open(os.path.join(os.path.dirname(self.path), "stdout.truncated"), "wb").close()
            return
        self.written += n
        record = bytes((label,)) + n.to_bytes(4, "big") + bytes(data)
        try:
            view = memoryview(record)
            while view:
                view = view[_raw_write(self.fd, view):]
        except Exception:
            self.truncated = True
            with contextlib.suppress(OSError):
                open(os.path.join(os.path.dirname(self.path), "stdout.truncated"), "wb").close()

    def flush(self) -> None:
        pass  # every chunk is written at once: nothing is ever buffered


#: ``os.write`` as it was before capture wrapped it (sharklib's own writes are not the run's)
_raw_write = os.write
_log: _Log | None = None
#: descriptor -> the root stream it reaches (1 or 2), for the descriptors this process copies
_labels: dict[int, int] = {}


def not_replayable(session: str, reason: str) -> None:
    """The run's output cannot be copied faithfully: it is not cached, and the summary says why."""
    with contextlib.suppress(OSError), \
            open(os.path.join(session, "not-replayable"), "a", encoding="utf-8") as fh:
        fh.write(reason + "\n")


def why_not_replayable(session: str) -> str | None:
    """The first reason given to :func:`not_replayable` in this session, if any."""
    try:
        with open(os.path.join(session, "not-replayable"), encoding="utf-8") as fh:
            return fh.readline().strip() or None
    except OSError:
        return None


def split_streams(session: str) -> None:
    """Write ``stdout``/``stderr`` from the ordered log (what the cache stores per stream)."""
    try:
        with open(os.path.join(session, "streams"), "rb") as fh:
            data = fh.read()
    except OSError:
        return
    parts: dict[int, list[bytes]] = {1: [], 2: []}
    for fd, chunk in chunks(data):
        parts.setdefault(fd, []).append(chunk)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        with open(os.path.join(session, name), "wb") as fh:
            fh.write(b"".join(parts[fd]))


def copied(fd: int, data: Any, n: int) -> None:
    """``n`` bytes of ``data`` were written to ``fd`` (``os.write``): copy them if it is a stream."""
    label = _labels.get(fd)
    if label is None or _log is None or n <= 0:
        return
    try:  # noqa: SIM105 - on the os.write path: no context manager
        _log.add(label, memoryview(data).cast("B")[:n])
    except Exception:
        pass


def _identity(fd: int) -> str | None:
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}"


def _open_log(session: str) -> _Log | None:
    global _log
    if _log is None:
        try:
            _log = _Log(session)
        except OSError:
            return None
    return _log


def tee_inherited(session: str) -> None:
    """A captured child: copy what it writes to the root's own stdout/stderr into the log.

    The root exported the identity of its two descriptors; a child whose descriptor is
    the same pipe, terminal or file (inherited) writes where the root's output goes, so
    a replay must hold it too. A descriptor its parent redirected elsewhere is not copied.
    """
    ids = os.environ.get(ENV_STREAM_IDS, "").split(",")
    if len(ids) != 2 or not all(ids):
        return
    labels: dict[int, int] = {}
    for fd in (1, 2):
        ident = _identity(fd)
        if ident is None:
            continue
        if ids[0] == ids[1]:  # merged (2>&1, a terminal): where it goes is all one stream
            if ident == ids[0]:
                labels[fd] = fd
        elif ident in ids:
            labels[fd] = ids.index(ident) + 1
    if labels:
        _tee(session, labels)


class TeeRaw(io.RawIOBase):
    """Raw layer of the replacement ``sys.stdout``: the real fd first, then the log."""

    def __init__(self, fd: int, sink: _Log, name: str, label: int | None = None) -> None:
        super().__init__()
        self._fd = fd
        self._sink = sink
        self._label = label if label is not None else fd
        self.name = name

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, b: Any) -> int:
        n = _raw_write(self._fd, b)
        try:  # noqa: SIM105 - on every write of the script: no context manager
            self._sink.add(self._label, memoryview(b).cast("B")[:n])
        except Exception:
            pass
        return n

    def close(self) -> None:
        # The descriptor belongs to the process, not to this wrapper.
        with contextlib.suppress(Exception):
            self._sink.flush()
        super().close()


_saved: dict[str, Any] = {}


def tee_active(name: str) -> bool:
    """Is ``sys.<name>`` this module's tee (what the script prints there is being copied)?"""
    return name in _saved


def tee_streams(session: str) -> None:
    """The root process: copy both streams into the session's ordered log.

    The identity of its two descriptors is exported (:data:`ENV_STREAM_IDS`) so captured
    children that inherit them copy what they write there too (:func:`tee_inherited`).
    """
    ids = [_identity(1) or "", _identity(2) or ""]
    os.environ[ENV_STREAM_IDS] = ",".join(ids)
    _tee(session, {1: 1, 2: 2})


def _tee(session: str, labels: dict[int, int]) -> None:
    """Replace sys.stdout/sys.stderr by identical text streams that also copy to the session.

    The replacement has the original's encoding, errors, line buffering and
    write-through, so the script sees no difference; ``sys.__stdout__`` is
    replaced too so both names share one buffer (output order is preserved).
    Streams that are not ordinary text files (already replaced, closed) are
    left alone and marked not replayable. ``os.write`` to the same descriptors is
    copied by the capture hooks (:func:`copied`).
    """
    log = _open_log(session)
    if log is None:
        not_replayable(session, "no copy of its output could be kept")
        return
    _labels.update(labels)
    for name, fd in (("stdout", 1), ("stderr", 2)):
        if fd not in labels:
            continue
        orig = getattr(sys, name)
        if (orig is None or type(orig) is not io.TextIOWrapper or orig.closed
                or getattr(sys, f"__{name}__") is not orig):
            not_replayable(session, f"sys.{name} was not a plain text stream")
            continue
        try:
            if orig.fileno() != fd:
                raise OSError("not the standard descriptor")
            orig.flush()
            sink = log
            raw = TeeRaw(fd, sink, f"<{name}>", labels[fd])
            inner: Any = raw
            if isinstance(orig.buffer, io.BufferedWriter):
                inner = io.BufferedWriter(raw)
            new = io.TextIOWrapper(inner, encoding=orig.encoding, errors=orig.errors,
                                   line_buffering=orig.line_buffering,
                                   write_through=orig.write_through)
            with contextlib.suppress(AttributeError, ValueError):
                new.mode = orig.mode  # type: ignore[misc]
        except Exception:
            not_replayable(session, f"sys.{name} could not be copied")
            continue
        _saved[name] = orig
        setattr(sys, name, new)
        setattr(sys, f"__{name}__", new)


def flush_sinks() -> None:
    """Nothing is buffered in the log itself (kept for the callers at fork and exit)."""

