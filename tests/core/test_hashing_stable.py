"""Digests are of one state of a file: a file written while it is read is read again."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from sharklib.hashing import StatCache
from sharklib.hashing.digest import hash_files_stable


def test_a_file_changed_after_its_stat_is_hashed_again(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"first")
    before = os.stat(f)
    f.write_bytes(b"second, longer")  # changed between the caller's stat and the read
    got, unstable = hash_files_stable({str(f): before})
    assert unstable == []
    digest, size, st = got[str(f)]
    assert digest == hashlib.sha256(b"second, longer").hexdigest()
    assert size == len(b"second, longer") == st.st_size


def test_a_file_that_keeps_changing_gets_no_digest(tmp_path: Path) -> None:
    big = tmp_path / "grow.bin"
    big.write_bytes(os.urandom(48 << 20))
    writer = subprocess.Popen([sys.executable, "-c",
                               "import time, sys\n"
                               "with open(sys.argv[1], 'ab', buffering=0) as f:\n"
                               "    while True:\n"
                               "        f.write(b'x')\n", str(big)])
    try:
        _wait_until_growing(big)
        cache = StatCache(tmp_path / "stat.sqlite")
        got = cache.digests([str(big)])
    finally:
        writer.kill()
        writer.wait()
    assert got == {}
    assert cache.unstable == [str(big)]


def test_statcache_same_mtime_different_size_is_a_miss(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"abc")
    old = time.time() - 3600
    os.utime(f, (old, old))
    cache = StatCache(tmp_path / "stat.sqlite")
    assert cache.digest(str(f)) == (hashlib.sha256(b"abc").hexdigest(), 3)
    f.write_bytes(b"abcdef")
    os.utime(f, (old, old))
    again = StatCache(tmp_path / "stat.sqlite")
    assert again.digest(str(f)) == (hashlib.sha256(b"abcdef").hexdigest(), 6)
    assert again.hashed_files == 1


def _wait_until_growing(path: Path) -> None:
    """Until the appending process has started writing (it may start late on a busy machine)."""
    size = path.stat().st_size
    deadline = time.monotonic() + 30
    while path.stat().st_size == size and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.stat().st_size > size, "the appending process never wrote"
