"""Reuses are counted in ``run_uses`` (issue 18: the no-op re-run of a 10,000-stage pipeline
rewrote every ``runs`` row, each holding a whole entry, to add one use: ~40 MB of pages).

What ``cache ls`` and gc read (:meth:`RunIndex.rows`) is unchanged: the totals an older
sharklib kept in ``runs`` plus those counted since.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sharklib.cache.index import RunIndex
from sharklib.cache.runcache import RunCache
from sharklib.runner.reuse import record


def _recorded(project: Path, cache: RunCache, write, make_run, name: str) -> str:  # type: ignore[no-untyped-def]
    out = write(project / "out" / name, name)
    entry = record(make_run(project, [name], [project / "data" / "in.txt"], [out]),
                   root=str(project), cache=cache)
    assert entry is not None
    return entry.run_id


def test_uses_add_up_and_leave_the_runs_rows_alone(project, tmp_path, write, make_run):  # type: ignore[no-untyped-def]
    with RunCache(tmp_path / "c") as cache:
        a = _recorded(project, cache, write, make_run, "a")
        b = _recorded(project, cache, write, make_run, "b")
        before = time.time()
        cache.index.mark_used(a, 2.0)
        cache.index.mark_used_many([(a, 3.0), (b, 5.0), ("no-such-run", 1.0)])
        rows = {r.run_id: r for r in cache.index.rows()}
        assert (rows[a].uses, rows[a].saved) == (2, 5.0)
        assert (rows[b].uses, rows[b].saved) == (1, 5.0)
        assert rows[a].last_used >= before
        assert cache.index.remove([a]) == 1
    db = sqlite3.connect(tmp_path / "c" / "index.sqlite")
    assert db.execute("SELECT uses, saved FROM runs").fetchall() == [(0, 0.0)], \
        "a use rewrote the runs row"
    assert db.execute("SELECT run_id FROM run_uses").fetchall() == [(b,)]
    db.close()


def test_uses_an_older_index_counted_are_kept(project, tmp_path, write, make_run):  # type: ignore[no-untyped-def]
    with RunCache(tmp_path / "c") as cache:
        a = _recorded(project, cache, write, make_run, "a")
    db = sqlite3.connect(tmp_path / "c" / "index.sqlite")
    with db:  # as a sharklib of schema 2 left it: its uses in runs, no run_uses table
        db.execute("UPDATE runs SET uses=4, saved=8.0, last_used=1000")
        db.execute("DROP TABLE run_uses")
        db.execute("PRAGMA user_version=2")
    db.close()
    index = RunIndex(tmp_path / "c" / "index.sqlite")
    [row] = index.rows()
    assert (row.uses, row.saved, row.last_used) == (4, 8.0, 1000)
    index.mark_used(a, 1.0)
    [row] = index.rows()
    assert (row.uses, row.saved) == (5, 9.0) and row.last_used > 1000
    index.close()
