"""Leftovers and damage a cache must recover from (issue 15 item 13).

* A push killed mid-upload leaves ``objects/ab/<sha>.zst.<uuid>.tmp`` in a ``file://``
  remote: ``sharklib cache gc`` and ``sharklib cache verify`` remove such temporaries once
  they are older than an age (``--tmp-age``, 1 h by default), never a fresh one (an upload
  in progress on another machine).
* A damaged ``index.sqlite`` is one line saying how to recover; ``sharklib cache repair``
  rebuilds the index from the runs kept beside it, and the next run is reused.

Executions are counted through a line the script writes to an inherited descriptor.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = """\
import os
os.write(int(os.environ["COUNT_FD"]), b"ran\\n")
open("out.txt", "w").write(open("in.txt").read().upper())
"""


class Project:
    def __init__(self, base: Path, **env: str) -> None:
        self.root = base / "project"
        self.root.mkdir()
        subprocess.run(["git", "init", "-q", str(self.root)], check=True)
        (self.root / "in.txt").write_text("hello sharks\n")
        (self.root / "s.py").write_text(SCRIPT)
        self.cache = base / "cache"
        self.counter = base / "executions"
        self.counter.touch()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
        self.env.update(SHARKLIB_HOME=str(base / "home"), SHARKLIB_CACHE=str(self.cache), **env)

    def sharklib(self, *args: str) -> subprocess.CompletedProcess[str]:
        fd = os.open(self.counter, os.O_WRONLY | os.O_APPEND)
        try:
            return subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=self.root,
                                  env={**self.env, "COUNT_FD": str(fd)}, pass_fds=(fd,),
                                  capture_output=True, text=True, timeout=120, check=False)
        finally:
            os.close(fd)

    @property
    def executions(self) -> int:
        return self.counter.read_text().count("ran\n")


def _leftover(remote: Path, age: float) -> Path:
    """What a push killed mid-upload leaves: an upload temporary, ``age`` seconds old."""
    [obj] = list(remote.glob("objects/*/*.zst"))[:1]
    tmp = obj.with_name(f"{obj.name}.{os.urandom(16).hex()}.tmp")
    tmp.write_bytes(obj.read_bytes()[:7])
    then = time.time() - age
    os.utime(tmp, (then, then))
    return tmp


def test_gc_and_verify_remove_old_upload_temporaries_from_the_remote(tmp_path: Path) -> None:
    remote = tmp_path / "shared"
    p = Project(tmp_path, SHARKLIB_CACHE_REMOTE=remote.as_uri())
    r = p.sharklib("run", "s.py")
    assert r.returncode == 0, r.stderr
    old, fresh = _leftover(remote, 2 * 3600), _leftover(remote, 0)
    g = p.sharklib("cache", "gc")
    assert g.returncode == 0, g.stderr
    assert "1 leftover temporaries" in g.stdout, g.stdout
    assert not old.exists() and fresh.exists()  # an upload in progress is left alone

    older = _leftover(remote, 3 * 3600)
    v = p.sharklib("cache", "verify")
    assert v.returncode == 0, v.stdout + v.stderr
    assert "removed 1 leftover temporaries" in v.stdout, v.stdout
    assert not older.exists() and fresh.exists()
    v = p.sharklib("cache", "verify", "--tmp-age", "0s")
    assert v.returncode == 0, v.stdout + v.stderr
    assert not fresh.exists()
    assert list(remote.glob("objects/*/*.zst")), "an object itself was removed"
    # the run is still served from the remote to a machine with an empty local cache
    p.env["SHARKLIB_CACHE"] = str(tmp_path / "cache2")
    (p.root / "out.txt").unlink()
    r = p.sharklib("run", "s.py")
    assert "reused run" in r.stderr, r.stderr
    assert p.executions == 1


def test_damaged_index_is_one_line_and_repair_rebuilds_it(tmp_path: Path) -> None:
    p = Project(tmp_path)
    r = p.sharklib("run", "s.py")
    assert r.returncode == 0 and p.executions == 1, r.stderr
    index = p.cache / "index.sqlite"
    index.write_bytes(b"this is not a database, it was a disk error\n" * 200)

    r = p.sharklib("run", "s.py")  # runs as plain Python would, with one line saying why
    assert r.returncode == 0, r.stderr
    assert p.executions == 2
    assert (p.root / "out.txt").read_text() == "HELLO SHARKS\n"
    [line] = [x for x in r.stderr.splitlines() if "warning" in x]
    assert "index.sqlite" in line and "sharklib cache repair" in line, line
    assert "Traceback" not in r.stderr

    ls = p.sharklib("cache", "ls")
    assert ls.returncode == 2
    assert ls.stderr.count("\n") == 1 and "sharklib cache repair" in ls.stderr, ls.stderr

    fix = p.sharklib("cache", "repair")
    assert fix.returncode == 0, fix.stderr
    assert "moved aside" in fix.stdout and "indexed 1 run" in fix.stdout, fix.stdout
    assert list(p.cache.glob("index.sqlite.damaged-*")), "the damaged file was deleted"

    (p.root / "out.txt").unlink()
    r = p.sharklib("run", "s.py")
    assert r.returncode == 0, r.stderr
    assert "reused run" in r.stderr, r.stderr
    assert p.executions == 2  # not executed again: the repaired index found the run
    assert (p.root / "out.txt").read_text() == "HELLO SHARKS\n"


def test_repair_of_a_sound_index_changes_nothing(tmp_path: Path) -> None:
    p = Project(tmp_path)
    assert p.sharklib("run", "s.py").returncode == 0
    fix = p.sharklib("cache", "repair")
    assert fix.returncode == 0, fix.stderr
    assert "moved aside" not in fix.stdout and "indexed 0 runs" in fix.stdout, fix.stdout
    r = p.sharklib("run", "s.py")
    assert "reused run" in r.stderr and p.executions == 1, r.stderr


def test_an_index_locked_by_a_writer_is_not_judged_damaged(tmp_path: Path) -> None:
    """``cache repair`` moved aside an index that a writer held past its wait ("database is
    locked") as if it were damaged; only a damaged file is."""
    import sqlite3

    from sharklib.cache.maintenance import _index_sound

    path = tmp_path / "index.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO t VALUES (1)")
    try:
        assert _index_sound(path)
    finally:
        holder.execute("COMMIT")
        holder.close()
    path.write_bytes(b"not a database, just bytes" * 100)
    assert not _index_sound(path)
