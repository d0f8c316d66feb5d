"""What one process remembers between look-ups: proved digests and parsed index entries."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from sharklib.cache.runcache import RunCache
from sharklib.hashing import StatCache, sha256_file, statcache
from sharklib.runner.reuse import check, record


def test_a_proved_digest_is_answered_from_memory_only_for_the_same_signature(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statcache, "RACY_NS", 0)  # the racy window passes at once
    f = tmp_path / "a.txt"
    f.write_text("hello\n")
    sc = StatCache(tmp_path / "stat.sqlite")
    first = sc.digest(str(f))
    assert first is not None and sc.hashed_files == 1
    with sqlite3.connect(tmp_path / "stat.sqlite") as db:
        db.execute("DELETE FROM stat")  # what is left can only come from memory
    assert sc.digest(str(f)) == first and sc.hashed_files == 1
    st = f.stat()
    f.write_text("HELLO\n")  # same size; the mtime put back: only the ctime tells
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    got = sc.digest(str(f))
    assert got is not None and got[0] == sha256_file(f)[0] != first[0]
    assert sc.hashed_files == 2
    sc.close()


def test_racy_digests_are_not_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statcache, "RACY_NS", 3600 * 10**9)  # every file changed "just now"
    f = tmp_path / "a.txt"
    f.write_text("hello\n")
    sc = StatCache(tmp_path / "stat.sqlite")
    sc.digest(str(f))
    sc.digest(str(f))
    assert sc.hashed_files == 2
    sc.close()


def test_parsed_entries_are_reused_and_forgotten_with_their_run(
        project, cache: RunCache, make_run, key_for) -> None:  # type: ignore[no-untyped-def]
    out = project / "out.txt"
    out.write_text("result\n")
    run = make_run(project, ["step.py"], [project / "data" / "in.txt"], [out])
    assert record(run, root=str(project), cache=cache) is not None
    key = key_for(["step.py"], project).digest()
    first = cache.index.candidates(key)
    assert [e.run_id for e in first] == [run.run_id]
    assert cache.index.candidates(key)[0] is first[0]  # not decoded twice
    assert check(key_for(["step.py"], project), cwd=str(project), root=str(project),
                 cache=cache) is not None
    cache.index.remove([run.run_id])
    assert cache.index.candidates(key) == []
    assert check(key_for(["step.py"], project), cwd=str(project), root=str(project),
                 cache=cache) is None
