"""Processes that open a new cache at the same moment all get to use it.

A pipeline's workers all open the run index, the pack and the stat cache of a
cache nobody has used yet at once. SQLite's busy timeout does not cover a new
file's switch to WAL, so one of them used to fail with "database is locked": its
run was not cached (the next run of an unchanged pipeline ran that stage again)
and a stat cache that lost the race was moved aside as if it were corrupt. Here
eight processes, released together by a barrier, open each file of a fresh cache
and write to it, many times over; every one must succeed and nothing be moved aside.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

WORKERS = 8
TRIALS = 20


def _open_and_write(kind: str, directory: str, barrier: object, results: object) -> None:
    try:
        barrier.wait()  # type: ignore[attr-defined]
        pid = str(os.getpid())
        if kind == "index":
            from sharklib.cache.index import RunIndex

            index = RunIndex(Path(directory) / "index.sqlite")
            assert index.count() == 0
            index.close()
        elif kind == "pack":
            from sharklib.cache.pack import Pack

            pack = Pack(Path(directory) / "pack.sqlite")
            pack.put_object("0" * 63 + pid[-1], pid.encode())
            pack.close()
        else:
            from sharklib.hashing import StatCache

            sample = Path(directory) / f"f{pid}"
            sample.write_text(pid)
            cache = StatCache(Path(directory) / "statcache.sqlite")
            assert cache._conn() is not None, "stat cache not opened"
            cache.digest(str(sample))
            cache.close()
        results.put("ok")  # type: ignore[attr-defined]
    except BaseException as exc:
        results.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["index", "pack", "statcache"])
def test_simultaneous_first_opens_all_succeed(tmp_path: Path, kind: str) -> None:
    ctx = multiprocessing.get_context("fork")
    failures: list[str] = []
    for trial in range(TRIALS):
        directory = tmp_path / f"cache{trial}"
        directory.mkdir()
        barrier = ctx.Barrier(WORKERS)
        results = ctx.Queue()
        procs = [ctx.Process(target=_open_and_write, args=(kind, str(directory), barrier, results))
                 for _ in range(WORKERS)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        failures += [o for o in outcomes if o != "ok"]
        assert not list(directory.glob("*.corrupt")), f"trial {trial}: a file was moved aside"
    assert not failures, failures
