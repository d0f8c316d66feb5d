"""Digests, parallel hashing, the stat cache and atomic writes, on real files."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
from collections.abc import Callable
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


def _threads_started_during(fn: Callable[[], object]) -> tuple[object, set[str]]:
    """``fn()``'s result and the names of the threads the threading module started meanwhile.

    ``threading.settrace`` installs a function in every thread started afterwards; it
    records the thread's name and turns itself off, so nothing else is traced.
    """
    names: set[str] = set()

    def tracer(frame: object, event: str, arg: object) -> None:
        names.add(threading.current_thread().name)
        sys.settrace(None)

    threading.settrace(tracer)  # type: ignore[arg-type]
    try:
        result = fn()
    finally:
        threading.settrace(None)  # type: ignore[arg-type]
    return result, names


def _plain(paths: list[str]) -> dict[str, tuple[str, int]]:
    out = {}
    for p in paths:
        with contextlib.suppress(OSError), open(p, "rb") as fh:
            data = fh.read()
            out[p] = (hashlib.sha256(data).hexdigest(), len(data))
    return out


def test_many_tiny_files_hashed_in_this_thread(tmp_path: Path) -> None:
    """Thousands of tiny files (what a traced command opens) need no thread per file or pool."""
    paths = []
    for i in range(3000):
        p = tmp_path / f"t{i:05d}"
        p.write_bytes(b"" if i % 100 == 0 else f"{i}\n".encode())
        paths.append(str(p))
    got, started = _threads_started_during(lambda: hash_files(paths, workers=2))
    assert got == _plain(paths)
    assert list(got) == paths  # in the order given
    assert started == set()


def test_mixed_sizes_missing_and_listings_in_parallel(tmp_path: Path) -> None:
    """Tiny, medium and large files (past the serial threshold and the pipelined size),
    missing paths, a directory given as a file and listings: every digest right, helpers used."""
    from sharklib.hashing.digest import CHUNK, PIPELINE_MIN, SERIAL_BYTES

    sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7, PIPELINE_MIN + 5]
    sizes += [256 << 10] * (2 * SERIAL_BYTES // (256 << 10))
    sizes += [5] * 50
    paths = []
    for i, n in enumerate(sizes):
        p = tmp_path / f"m{i:04d}"
        p.write_bytes(os.urandom(n))
        paths.append(str(p))
        if i % 10 == 3:
            paths.append(str(tmp_path / f"missing{i}"))
    (tmp_path / "sub").mkdir()
    paths.append(str(tmp_path / "sub"))  # a directory as a file: unreadable, left out
    got, started = _threads_started_during(
        lambda: hash_files([*paths, str(tmp_path / "sub") + "/"], workers=2))
    want = _plain(paths)
    assert len(want) == len(sizes)
    assert {p: d for p, d in got.items() if not p.endswith("/")} == want
    assert got[str(tmp_path / "sub") + "/"][1] == 0
    assert any(n.startswith("sharklib-hash") for n in started)


def test_hash_files_one_worker_and_interleaved_large_first(tmp_path: Path) -> None:
    from sharklib.hashing.digest import PIPELINE_MIN

    big = tmp_path / "big"
    big.write_bytes(os.urandom(PIPELINE_MIN + 1))
    small = [tmp_path / f"s{i}" for i in range(40)]
    for i, p in enumerate(small):
        p.write_bytes(bytes([i]) * (i * 1000))
    paths = [str(big), *map(str, small)]
    assert hash_files(paths, workers=1) == _plain(paths)
    assert hash_files(paths, workers=4) == _plain(paths)


def test_sha256_file_sizes_around_the_buffer(tmp_path: Path) -> None:
    from sharklib.hashing.digest import CHUNK

    for n in (1, 2047, 2048, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK):
        data = os.urandom(n)
        p = tmp_path / f"b{n}"
        p.write_bytes(data)
        assert sha256_file(p) == (hashlib.sha256(data).hexdigest(), n)
        assert sha256_file(str(p), chunk=4096) == (hashlib.sha256(data).hexdigest(), n)


def test_sha256_file_whose_size_is_unknown(tmp_path: Path) -> None:
    """A file that reports size 0 but has content (/proc) is read to its end."""
    p = "/proc/version"
    if not os.path.exists(p):
        import pytest

        pytest.skip("no /proc here: no file that reports size 0 and has content")
    with open(p, "rb") as fh:
        data = fh.read()
    assert os.stat(p).st_size == 0 and data
    assert sha256_file(p) == (hashlib.sha256(data).hexdigest(), len(data))


def test_sha256_file_of_a_directory_or_missing_raises_oserror(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(OSError):
        sha256_file(tmp_path)
    with pytest.raises(OSError):
        sha256_file(tmp_path / "nope")
