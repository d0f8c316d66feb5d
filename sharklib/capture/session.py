"""The session: where every captured process of one command drops its Run.

Layout of ``$SHARKLIB_SESSION``::

    runs/<run_id>.json      one Run per captured process (Run.to_dict), written atomically
    stdout, stderr          what the top-level script wrote through sys.stdout/sys.stderr
    stdout.truncated        present when that copy passed the bound and cannot be replayed

The copies of stdout/stderr let the reuse step replay a run's output.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from sharklib.model import Run

STREAM_LIMIT = 32 * 1024 * 1024


def create_session_dir() -> str:
    """A fresh private session directory under the temp dir (no ``tempfile`` import: start-up)."""
    base = os.environ.get("TMPDIR") or "/tmp"
    for _ in range(100):
        path = os.path.join(base, f"sharklib-session-{os.getpid()}-{os.urandom(6).hex()}")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        os.mkdir(os.path.join(path, "runs"), 0o700)
        return path
    raise OSError(f"cannot create a session directory in {base}")


def remove_session_dir(path: str) -> None:
    """Remove the session (shallow: runs/*.json and stream copies; shutil only if deeper).

    Two listings rather than ``os.walk``: the layout is known and this runs at
    the end of every ``sharklib run``.
    """
    try:
        runs = os.path.join(path, "runs")
        for name in os.listdir(runs):
            os.unlink(os.path.join(runs, name))
        os.rmdir(runs)
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)
    except OSError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def write_run(session: str, run_dict: dict[str, Any]) -> str | None:
    """Atomically write one Run JSON into the session; None when the session is already over.

    A process can outlive its command (multiprocessing's resource tracker, a daemon); by then
    the top-level run has removed the session, and there is nobody left to read the record.
    """
    run_dir = os.path.join(session, "runs")
    if not os.path.isdir(session):
        return None
    os.makedirs(run_dir, exist_ok=True)
    target = os.path.join(run_dir, f"{run_dict['run_id']}.json")
    tmp = f"{target}.{os.getpid()}.tmp"
    import json  # not at the top: a captured process that records nothing never needs it

    data = json.dumps(run_dict, sort_keys=True).encode("utf-8", "surrogateescape")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)
    os.replace(tmp, target)
    return target


def read_runs(session: str) -> list[dict[str, Any]]:
    """Every Run JSON in the session (unparseable files are skipped)."""
    run_dir = os.path.join(session, "runs")
    out: list[dict[str, Any]] = []
    try:
        names = sorted(os.listdir(run_dir))
    except OSError:
        return out
    names = [n for n in names if n.endswith(".json")]
    if not names:
        return out
    import json

    for name in names:
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(run_dir, name), "rb") as fh:
                d = json.loads(fh.read())
            if isinstance(d, dict) and "run_id" in d:
                out.append(d)
    return out


def session_runs(session: str | os.PathLike[str]) -> list[Run]:
    """Every Run a captured process dropped in the session, oldest first (bad files skipped)."""
    from sharklib.model import Run

    runs: list[Run] = []
    for d in read_runs(os.fspath(session)):
        with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
            runs.append(Run.from_dict(d))
    runs.sort(key=lambda r: r.started)
    return runs


def children_of(session: str, run_id: str) -> list[dict[str, Any]]:
    runs = [r for r in read_runs(session) if r.get("parent") == run_id]
    runs.sort(key=lambda r: r.get("started") or 0.0)
    return runs


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


class _Sink:
    """A bounded, buffered copy of one stream in the session (shared by forked children)."""

    def __init__(self, path: str, limit: int = STREAM_LIMIT) -> None:
        self.path = path
        self.limit = limit
        self.written = 0
        self.truncated = False
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.file = io.BufferedWriter(io.FileIO(fd, "w", closefd=True), buffer_size=1 << 16)

    def add(self, data: bytes | memoryview) -> None:
        if self.truncated:
            return
        if self.written + len(data) > self.limit:
            self.truncated = True
            with contextlib.suppress(OSError):
                open(self.path + ".truncated", "wb").close()
            return
        self.written += len(data)
        try:
            self.file.write(data)
        except Exception:
            self.truncated = True

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self.file.flush()


class TeeRaw(io.RawIOBase):
    """Raw layer of the replacement ``sys.stdout``: the real fd first, then the sink."""

    def __init__(self, fd: int, sink: _Sink, name: str) -> None:
        super().__init__()
        self._fd = fd
        self._sink = sink
        self.name = name

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, b: Any) -> int:
        n = os.write(self._fd, b)
        try:
            view = memoryview(b).cast("B")
            self._sink.add(view[:n].tobytes())
        except Exception:
            pass
        return n

    def close(self) -> None:
        # The descriptor belongs to the process, not to this wrapper.
        with contextlib.suppress(Exception):
            self._sink.flush()
        super().close()


_sinks: list[_Sink] = []
_saved: dict[str, Any] = {}


def tee_active(name: str) -> bool:
    """Is ``sys.<name>`` this module's tee (what the script prints there is being copied)?"""
    return name in _saved


def tee_streams(session: str) -> None:
    """Replace sys.stdout/sys.stderr by identical text streams that also copy to the session.

    The replacement has the original's encoding, errors, line buffering and
    write-through, so the script sees no difference; ``sys.__stdout__`` is
    replaced too so both names share one buffer (output order is preserved).
    Streams that are not ordinary text files (already replaced, closed) are
    left alone and marked not replayable.
    """
    for name, fd in (("stdout", 1), ("stderr", 2)):
        orig = getattr(sys, name)
        path = os.path.join(session, name)
        if (orig is None or type(orig) is not io.TextIOWrapper or orig.closed
                or getattr(sys, f"__{name}__") is not orig):
            with contextlib.suppress(OSError):
                open(path + ".truncated", "wb").close()
            continue
        try:
            if orig.fileno() != fd:
                raise OSError("not the standard descriptor")
            orig.flush()
            sink = _Sink(path)
            raw = TeeRaw(fd, sink, f"<{name}>")
            inner: Any = raw
            if isinstance(orig.buffer, io.BufferedWriter):
                inner = io.BufferedWriter(raw)
            new = io.TextIOWrapper(inner, encoding=orig.encoding, errors=orig.errors,
                                   line_buffering=orig.line_buffering,
                                   write_through=orig.write_through)
            with contextlib.suppress(AttributeError, ValueError):
                new.mode = orig.mode  # type: ignore[misc]
        except Exception:
            with contextlib.suppress(OSError):
                open(path + ".truncated", "wb").close()
            continue
        _saved[name] = orig
        _sinks.append(sink)
        setattr(sys, name, new)
        setattr(sys, f"__{name}__", new)


def flush_sinks() -> None:
    for sink in _sinks:
        sink.flush()
