"""Digests, parallel hashing, the stat cache and atomic writes, on real files."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from sharklib.hashing import StatCache, StreamingDigest, atomic_write, hash_files, sha256_file


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 123)
    p = tmp_path / "blob"
    p.write_bytes(data)
    assert sha256_file(p) == (hashlib.sha256(data).hexdigest(), len(data))


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty"
    p.write_bytes(b"")
    assert sha256_file(p) == (hashlib.sha256(b"").hexdigest(), 0)


def test_hash_files_parallel_and_skips_unreadable(tmp_path: Path) -> None:
    paths = []
    for i in range(20):
        p = tmp_path / f"f{i}"
        p.write_bytes(str(i).encode() * 1000)
        paths.append(str(p))
    paths.append(str(tmp_path / "missing"))
    got = hash_files(paths)
    assert len(got) == 20
    for i in range(20):
        assert got[str(tmp_path / f"f{i}")][0] == hashlib.sha256(str(i).encode() * 1000).hexdigest()


def _backdate(p: Path) -> None:
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns - 10_000_000_000))


def test_statcache_rehashes_only_changed(tmp_path: Path) -> None:
    files = []
    for i in range(5):
        p = tmp_path / f"d{i}"
        p.write_bytes(b"x" * (i + 1))
        _backdate(p)
        files.append(str(p))
    cache = StatCache(tmp_path / "sc.sqlite")
    first = cache.digests(files)
    assert cache.hashed_files == 5
    again = StatCache(tmp_path / "sc.sqlite")
    assert again.digests(files) == first
    assert again.hashed_files == 0 and again.hashed_bytes == 0
    Path(files[2]).write_bytes(b"changed")
    third = StatCache(tmp_path / "sc.sqlite")
    res = third.digests(files)
    assert third.hashed_files == 1
    assert res[files[2]][0] == hashlib.sha256(b"changed").hexdigest()


def test_statcache_touch_same_content_same_digest(tmp_path: Path) -> None:
    p = tmp_path / "t"
    p.write_bytes(b"same")
    _backdate(p)
    cache = StatCache(tmp_path / "sc.sqlite")
    d1 = cache.digest(str(p))
    os.utime(p)
    assert cache.unchanged(str(p), d1[0])


def test_statcache_racy_entry_is_rehashed(tmp_path: Path) -> None:
    p = tmp_path / "fresh"
    p.write_bytes(b"a")
    cache = StatCache(tmp_path / "sc.sqlite")
    cache.digest(str(p))
    cache.digest(str(p))
    assert cache.hashed_files == 2  # mtime too recent to trust the entry


def test_statcache_survives_corrupt_database(tmp_path: Path) -> None:
    db = tmp_path / "sc.sqlite"
    db.write_bytes(b"this is not sqlite" * 100)
    p = tmp_path / "f"
    p.write_bytes(b"data")
    cache = StatCache(db)
    assert cache.digest(str(p))[0] == hashlib.sha256(b"data").hexdigest()


def test_statcache_threads(tmp_path: Path) -> None:
    files = []
    for i in range(50):
        p = tmp_path / f"x{i}"
        p.write_bytes(os.urandom(100))
        files.append(str(p))
    cache = StatCache(tmp_path / "sc.sqlite")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            assert len(cache.digests(files)) == 50
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_streaming_digest() -> None:
    d = StreamingDigest()
    for chunk in (b"ab", b"", b"cd" * 1000):
        d.update(chunk)
    assert d.hexdigest() == hashlib.sha256(b"ab" + b"cd" * 1000).hexdigest()
    assert d.size == 2002


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    p = tmp_path / "out"
    atomic_write(p, b"one")
    atomic_write(p, b"two", mode=0o600)
    assert p.read_bytes() == b"two"
    assert (p.stat().st_mode & 0o777) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_sha256_file_large_pipelined_path(tmp_path: Path) -> None:
    from sharklib.hashing.digest import PIPELINE_MIN

    data = os.urandom(PIPELINE_MIN + (1 << 20) + 7)
    p = tmp_path / "large"
    p.write_bytes(data)
    assert sha256_file(p) == (hashlib.sha256(data).hexdigest(), len(data))


def test_statcache_non_utf8_names(tmp_path: Path) -> None:
    name = os.fsdecode(b"odd-\xff\xfe-name\n.txt")
    p = os.path.join(str(tmp_path), name)
    with open(p, "wb") as fh:
        fh.write(b"payload")
    old = os.stat(p).st_mtime_ns - 10_000_000_000
    os.utime(p, ns=(old, old))
    cache = StatCache(tmp_path / "sc.sqlite")
    assert cache.digest(p)[0] == hashlib.sha256(b"payload").hexdigest()
    again = StatCache(tmp_path / "sc.sqlite")
    assert again.digest(p)[0] == hashlib.sha256(b"payload").hexdigest()
    assert again.hashed_files == 0
