"""A large input read again by a later traced command is not hashed again while unchanged."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from trace_support import run_traced

from sharklib.trace import session


def _input_digest(res: object, name: str) -> str:
    found = [a.sha256 for r in res.runs for a in r.inputs  # type: ignore[attr-defined]
             if os.path.basename(a.path) == name]
    assert found, f"{name} not recorded as an input"
    return str(found[0])


def test_unchanged_large_inputs_come_from_the_stat_cache(tmp_path: Path, backend: str) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    old = time.time() - 3600  # outside the stat cache's racy window
    os.utime(big, (old, old))
    first = run_traced(["sh", "-c", "head -c 10 big.bin > head.txt"], backend, tmp_path)
    assert _input_digest(first, "big.bin") == hashlib.sha256(big.read_bytes()).hexdigest()
    cache = session._stat_cache()
    # every file goes through the stat cache (the new 10-byte output too): count bytes read
    before = cache.hashed_bytes
    again = run_traced(["sh", "-c", "head -c 10 big.bin > head2.txt"], backend, tmp_path)
    assert _input_digest(again, "big.bin") == _input_digest(first, "big.bin")
    assert session._stat_cache().hashed_bytes - before < 1 << 20, \
        "an unchanged 3 MiB input was re-hashed"
    with open(big, "ab") as fh:
        fh.write(b"more")
    changed = run_traced(["sh", "-c", "head -c 10 big.bin > head3.txt"], backend, tmp_path)
    assert _input_digest(changed, "big.bin") == hashlib.sha256(big.read_bytes()).hexdigest()
    assert session._stat_cache().hashed_bytes - before >= 3 << 20


def test_small_inputs_come_from_the_stat_cache_too(tmp_path: Path, backend: str) -> None:
    """Files seen before cost a stat, small ones included (20,000 tiny inputs were re-read)."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(40):
        (data / f"f{i:02d}.txt").write_text(f"{i}\n")
    old = time.time() - 3600
    for f in data.iterdir():
        os.utime(f, (old, old))
    cmd = ["sh", "-c", "cat data/*.txt > all.txt"]
    first = run_traced(cmd, backend, tmp_path)
    assert _input_digest(first, "f07.txt") == hashlib.sha256(b"7\n").hexdigest()
    cache = session._stat_cache()
    before = cache.hashed_files
    again = run_traced(cmd, backend, tmp_path)
    assert _input_digest(again, "f07.txt") == hashlib.sha256(b"7\n").hexdigest()
    # only the rewritten all.txt is read again, none of the 40 unchanged inputs
    assert cache.hashed_files - before == 1


def test_same_mtime_different_size_is_hashed_again(tmp_path: Path, backend: str) -> None:
    """A stat-cache entry stands only for the same size: mtime put back does not fool it."""
    f = tmp_path / "in.txt"
    f.write_text("short\n")
    old = time.time() - 3600
    os.utime(f, (old, old))
    cmd = ["sh", "-c", "cat in.txt > out.txt"]
    first = run_traced(cmd, backend, tmp_path)
    assert _input_digest(first, "in.txt") == hashlib.sha256(b"short\n").hexdigest()
    f.write_text("a longer line\n")
    os.utime(f, (old, old))  # the same mtime as the cached entry
    second = run_traced(cmd, backend, tmp_path)
    assert _input_digest(second, "in.txt") == hashlib.sha256(b"a longer line\n").hexdigest()


def test_an_input_that_changes_while_hashed_gets_no_digest(tmp_path: Path, backend: str) -> None:
    """A file still being written after the command (here by an untraced process) is never
    recorded with the digest of a state in between: no digest, a warning, not cached."""
    big = tmp_path / "grow.bin"
    big.write_bytes(os.urandom(48 << 20))
    # appends one byte after another, without pausing, until killed
    writer = subprocess.Popen([sys.executable, "-c",
                               "import time, sys\n"
                               "with open(sys.argv[1], 'ab', buffering=0) as f:\n"
                               "    while True:\n"
                               "        f.write(b'x')\n", str(big)])
    try:
        _wait_until_growing(big)
        res = run_traced(["sh", "-c", "head -c 1 grow.bin > one.txt"], backend, tmp_path)
    finally:
        writer.kill()
        writer.wait()
    recorded = [a for r in res.runs for a in r.inputs if a.path == str(big)]
    assert recorded == [], "a digest was recorded for a file that changed while it was hashed"
    warnings = [w for r in res.runs for w in r.warnings]
    assert any("kept changing while they were hashed" in w and "grow.bin" in w
               for w in warnings), warnings
    assert "kept changing" in res.uncacheable


def _wait_until_growing(path: Path) -> None:
    """Until the appending process has started writing (it may start late on a busy machine)."""
    size = path.stat().st_size
    deadline = time.monotonic() + 30
    while path.stat().st_size == size and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.stat().st_size > size, "the appending process never wrote"
