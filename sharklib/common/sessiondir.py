"""The session directory: where every captured process of one command drops its Run.

Layout of ``$SHARKLIB_SESSION``::

    runs/<run_id>.json      one Run per captured process (Run.to_dict), written atomically
    streams                 every write that reached the run's standard output or error, in
                            the order it happened: (descriptor, bytes) chunks
                            (:func:`chunks`)
    stdout, stderr          the same bytes split by descriptor (written at the end of the run)
    stdout.truncated        present when the copy passed the bound and cannot be replayed

Python capture writes the runs, and the tracer and the runner read them back;
the stream copies are written by :mod:`sharklib.capture.session`.
"""

from __future__ import annotations

import contextlib
import os

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from sharklib.model import Run

#: the most of a stream a session keeps for replay (beyond it: ``<stream>.truncated``)
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
    from sharklib.config import make_dirs

    make_dirs(run_dir)
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


_HEADER = 5  # one byte: the descriptor (1 or 2); four: the length, big-endian


def chunks(data: bytes) -> list[tuple[int, bytes]]:
    """The (descriptor, bytes) chunks of a ``streams`` log, in order (a torn tail is dropped)."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i + _HEADER <= len(data):
        n = int.from_bytes(data[i + 1:i + _HEADER], "big")
        if i + _HEADER + n > len(data):
            break
        out.append((data[i], data[i + _HEADER:i + _HEADER + n]))
        i += _HEADER + n
    return out
