"""A reuse is counted in the uses journal, not by a write to the index (issue 18: the reuse path).

``mark_used`` appends a line beside the index; whoever reads or writes the uses next
(``cache ls``, gc, ``log``/``report``, the next record) folds it in, exactly once, also after a
fold that died between its commit and the journal's truncation.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sharklib.cache import uses
from sharklib.cache.ledger import Ledger
from sharklib.cache.runcache import RunCache
from sharklib.runner.reuse import record


def _recorded(project: Path, cache: RunCache, write, make_run, name: str) -> str:  # type: ignore[no-untyped-def]
    out = write(project / "out" / name, name)
    entry = record(make_run(project, [name], [project / "data" / "in.txt"], [out]),
                   root=str(project), cache=cache)
    assert entry is not None
    return entry.run_id


def _uses(directory: Path) -> list[tuple[str, int, float]]:
    db = sqlite3.connect(directory / "index.sqlite")
    try:
        return db.execute("SELECT run_id, uses, saved FROM run_uses ORDER BY run_id").fetchall()
    finally:
        db.close()


def test_a_use_writes_the_journal_not_the_index(project, tmp_path, write, make_run):  # type: ignore[no-untyped-def]
    directory = tmp_path / "c"
    with RunCache(directory) as cache:
        a = _recorded(project, cache, write, make_run, "a")
    before = os.stat(directory / "index.sqlite")
    with RunCache(directory) as cache:
        cache.index.mark_used(a, 2.0)
    after = os.stat(directory / "index.sqlite")
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert _uses(directory) == []
    assert (directory / uses.JOURNAL).read_text().count("\n") == 1
    with RunCache(directory) as cache:
        [row] = cache.index.rows()
    assert (row.uses, row.saved) == (1, 2.0)
    assert _uses(directory) == [(a, 1, 2.0)]
    assert (directory / uses.JOURNAL).stat().st_size == 0


def test_a_fold_that_died_before_truncating_counts_nothing_twice(project, tmp_path, write, make_run):  # type: ignore[no-untyped-def]
    directory = tmp_path / "c"
    journal = directory / uses.JOURNAL
    with RunCache(directory) as cache:
        a = _recorded(project, cache, write, make_run, "a")
        cache.index.mark_used(a, 1.0)
        cache.index.mark_used(a, 2.0)
        lines = journal.read_bytes()
        assert cache.index.fold_uses() == 2
        journal.write_bytes(lines)  # as if the fold had committed and died before truncating
        cache.index.mark_used(a, 4.0)
        assert cache.index.fold_uses() == 1
        [row] = cache.index.rows()
    assert (row.uses, row.saved) == (3, 7.0)


def test_lines_a_fold_cannot_read_are_skipped(project, tmp_path, write, make_run):  # type: ignore[no-untyped-def]
    directory = tmp_path / "c"
    with RunCache(directory) as cache:
        a = _recorded(project, cache, write, make_run, "a")
        with open(directory / uses.JOURNAL, "ab") as fh:
            fh.write(b"garbage\n\xff\xfe\tx\n" + b"0" * 16 + f"\t{a}\tnan\t1\tu\th\n".encode())
            fh.write(b"1" * 16 + b"\tno-such-run\t1.0\t1\tu\th\n")
        cache.index.mark_used(a, 3.0)
        [row] = cache.index.rows()
    assert (row.uses, row.saved) == (1, 3.0)


def test_the_ledger_sees_journaled_reuses(project, tmp_path, write, make_run):  # type: ignore[no-untyped-def]
    directory = tmp_path / "c"
    with RunCache(directory) as cache:
        a = _recorded(project, cache, write, make_run, "a")
        cache.index.mark_used(a, 5.0)
    ledger = Ledger.open(directory / "index.sqlite")
    try:
        [reuse] = ledger.reuses()
    finally:
        ledger.close()
    assert reuse["run_id"] == a and reuse["saved_wall"] == 5.0 and reuse["user"]
