"""Small objects and kept entries packed as rows of SQLite files (sharklib/cache/pack.py).

A trivial pipeline stage left five files in the cache (issue 18: its output and sidecar as
objects, its kept entry in a directory of its own, two empty logs). Objects of at most
PACK_MAX bytes are now rows of ``pack.sqlite``, and so are kept entries (one commit per
run). What must still hold: every write atomic (a writer killed mid-write
leaves a sound pack), concurrent writers serialised, gc/verify/quarantine/restore/list
working on packed objects, push and pull through remotes (tests/cache/test_remote.py runs
its small objects through the pack, file:// and S3), and a damaged pack one line naming
``sharklib cache repair``, which sets it aside.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sharklib.cache.cas import ContentStore
from sharklib.cache.pack import PACK, PACK_MAX
from sharklib.hashing import sha256_bytes


def _files(root: Path) -> list[Path]:
    return [p for p in (root / "objects").rglob("*") if p.is_file()]


def test_small_objects_are_rows_large_ones_files(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "cache")
    small = store.put_bytes(b"s" * PACK_MAX)
    src = tmp_path / "big.bin"
    src.write_bytes(b"b" * (PACK_MAX + 1))
    big = store.put(str(src))
    tiny = tmp_path / "tiny.txt"
    tiny.write_bytes(b"7\n")
    t = store.put(str(tiny), sha256_bytes(b"7\n"))
    assert [p.name for p in _files(tmp_path / "cache")] == [big.sha256]
    assert (tmp_path / "cache" / PACK).is_file()
    assert {i.sha256 for i in store.list()} == {small.sha256, big.sha256, t.sha256}
    for info in (small, t):
        assert store.has(info.sha256) and store.verify(info.sha256)
        assert store.verify(info.sha256, full=True)
    assert store.read(t.sha256) == b"7\n"
    dest = tmp_path / "ws" / "out.txt"
    dest.parent.mkdir()
    dest.write_text("old\n")
    store.restore(t.sha256, str(dest), read_only=True)
    assert dest.read_bytes() == b"7\n" and (dest.stat().st_mode & 0o777) == 0o444
    assert not [p for p in dest.parent.iterdir() if p.name != "out.txt"], "a temporary was left"
    store.delete(t.sha256)
    assert not store.has(t.sha256)
    with pytest.raises(Exception, match="not in the store"):
        store.restore(t.sha256, str(tmp_path / "ws" / "again.txt"))
    store.close()


def test_a_packed_object_with_wrong_bytes_is_quarantined_never_served(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "cache")
    info = store.put_bytes(b"good bytes\n")
    store.close()
    db = sqlite3.connect(tmp_path / "cache" / PACK)
    import zlib

    with db:
        db.execute("UPDATE objects SET data=? WHERE sha256=?", (zlib.compress(b"evil\n"),
                                                              info.sha256))
    db.close()
    store = ContentStore(tmp_path / "cache")
    assert not store.verify(info.sha256)
    dest = tmp_path / "out.txt"
    with pytest.raises(Exception, match="does not match its digest"):
        store.restore(info.sha256, str(dest))
    assert not dest.exists()
    assert not store.has(info.sha256), "a bad object stays served"
    assert (tmp_path / "cache" / "quarantine" / info.sha256).read_bytes() == b"evil\n"
    store.close()


def _writer(root: str, worker: int, count: int, counter: str | None) -> None:
    store = ContentStore(root)
    for i in range(count):
        store.put_bytes(f"shared {i}\n".encode())  # the same objects from every writer
        store.put_bytes(f"writer {worker} object {i}\n".encode() * 40)
        if counter:
            with open(counter, "a") as fh:
                fh.write("x")
    store.close()


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    root = str(tmp_path / "cache")
    ContentStore(root).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(root, w, 60, None)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = ContentStore(root)
    listed = {i.sha256 for i in store.list()}
    want = {sha256_bytes(f"shared {i}\n".encode()) for i in range(60)} | {
        sha256_bytes(f"writer {w} object {i}\n".encode() * 40) for w in range(4) for i in range(60)}
    assert listed == want
    assert all(store.verify(s, full=True) for s in want)
    store.close()


def test_a_writer_killed_mid_write_leaves_a_sound_pack(tmp_path: Path) -> None:
    root = str(tmp_path / "cache")
    counter = tmp_path / "written"
    counter.touch()
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_writer, args=(root, 0, 100_000, str(counter)))
    p.start()
    deadline = time.monotonic() + 120
    while counter.stat().st_size < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert p.pid is not None
    os.kill(p.pid, signal.SIGKILL)
    p.join(30)
    done = counter.stat().st_size
    assert done >= 50
    db = sqlite3.connect(Path(root) / PACK)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    store = ContentStore(root)
    listed = list(store.list())
    assert len(listed) >= 2 * done  # every completed put is there
    assert all(store.verify(i.sha256, full=True) for i in listed), "a torn object is served"
    assert store.put_bytes(b"after the kill\n").sha256 in {i.sha256 for i in store.list()}
    store.close()


SCRIPT = """\
import os
with open(os.environ["COUNT_FILE"], "a") as fh:
    fh.write("ran\\n")
open("out.txt", "w").write(open("in.txt").read().upper())
"""


class Project:
    def __init__(self, base: Path) -> None:
        self.root = base / "project"
        self.root.mkdir()
        subprocess.run(["git", "init", "-q", str(self.root)], check=True)
        (self.root / "in.txt").write_text("hello sharks\n")
        (self.root / "s.py").write_text(SCRIPT)
        self.cache = base / "cache"
        self.counter = base / "home" / "executions"
        self.counter.parent.mkdir()
        self.counter.touch()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
        self.env.update(SHARKLIB_HOME=str(base / "home"), SHARKLIB_CACHE=str(self.cache),
                        COUNT_FILE=str(self.counter))

    def sharklib(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=self.root,
                              env=self.env, capture_output=True, text=True, timeout=120,
                              check=False)

    @property
    def executions(self) -> int:
        return self.counter.read_text().count("ran\n")


def test_a_run_leaves_no_file_per_object_or_entry(tmp_path: Path) -> None:
    p = Project(tmp_path)
    r = p.sharklib("run", "s.py")
    assert r.returncode == 0, r.stderr
    assert _files(p.cache) == [], "a small object became a file of its own"
    assert not (p.cache / "runs").exists(), "the entry was kept as a file of its own"
    db = sqlite3.connect(p.cache / PACK)
    assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 1
    db.close()
    (p.root / "out.txt").unlink()
    r = p.sharklib("run", "s.py")
    assert "reused run" in r.stderr, r.stderr
    assert (p.root / "out.txt").read_text() == "HELLO SHARKS\n" and p.executions == 1


def test_damaged_pack_is_one_line_and_repair_sets_it_aside(tmp_path: Path) -> None:
    p = Project(tmp_path)
    assert p.sharklib("run", "s.py").returncode == 0 and p.executions == 1
    (p.cache / PACK).write_bytes(b"not a database: a disk error\n" * 300)
    (p.root / "out.txt").unlink()

    r = p.sharklib("run", "s.py")  # runs as plain Python would, with one line saying why
    assert r.returncode == 0, r.stderr
    assert p.executions == 2 and (p.root / "out.txt").read_text() == "HELLO SHARKS\n"
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if "warning" in x]
    assert lines and all(PACK in x and "sharklib cache repair" in x for x in lines), \
        r.stderr
    v = p.sharklib("cache", "verify")
    assert v.returncode != 0 and "Traceback" not in v.stderr, v.stdout + v.stderr
    assert "sharklib cache repair" in v.stdout + v.stderr

    fix = p.sharklib("cache", "repair")
    assert fix.returncode == 0, fix.stderr
    assert "damaged pack moved aside" in fix.stdout, fix.stdout
    assert list(p.cache.glob(f"{PACK}.damaged-*")), "the damaged pack was deleted"

    (p.root / "out.txt").unlink()
    r = p.sharklib("run", "s.py")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    assert p.executions == 3  # its object was in the damaged pack: it runs, and is recorded
    (p.root / "out.txt").unlink()
    r = p.sharklib("run", "s.py")
    assert "reused run" in r.stderr, r.stderr
    assert p.executions == 3
    assert p.sharklib("cache", "verify").returncode == 0


def test_repair_rebuilds_the_index_from_the_entries_in_the_pack(tmp_path: Path) -> None:
    p = Project(tmp_path)
    assert p.sharklib("run", "s.py").returncode == 0
    (p.cache / "index.sqlite").write_bytes(b"this is not a database\n" * 200)
    for suffix in ("-wal", "-shm"):
        (p.cache / f"index.sqlite{suffix}").unlink(missing_ok=True)
    fix = p.sharklib("cache", "repair")
    assert fix.returncode == 0 and "indexed 1 run" in fix.stdout, fix.stdout + fix.stderr
    (p.root / "out.txt").unlink()
    r = p.sharklib("run", "s.py")
    assert "reused run" in r.stderr, r.stderr
    assert p.executions == 1


def test_kept_entries_come_back_byte_for_byte(tmp_path: Path) -> None:
    """The runs pack keeps an entry with its attestation's payload decoded (it compresses
    to ~60 %); what repair reads back must be the entry exactly, signature and all."""
    import base64
    import json

    from sharklib.cache.pack import Pack

    statement = json.dumps({"predicate": {"entry": {"key": "sha256:" + "a" * 64}}}).encode()
    good = {"key": "k", "attestation": {"payload": base64.b64encode(statement).decode(),
                                        "payloadType": "application/vnd.in-toto+json",
                                        "signatures": [{"keyid": "x", "sig": "c2ln"}]}}
    odd = {"key": "k", "attestation": {"payload": "not base64!", "signatures": []}}
    unsigned = {"key": "k", "objects": []}
    pack = Pack(tmp_path / PACK)
    for i, entry in enumerate((good, odd, unsigned)):
        pack.put_entry(f"run{i}", "k", entry)
    got = dict(pack.entries())
    for i, entry in enumerate((good, odd, unsigned)):
        assert got[f"run{i}"] == json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    pack.close()
