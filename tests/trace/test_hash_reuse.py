"""A large input read again by a later traced command is not hashed again while unchanged."""

from __future__ import annotations

import hashlib
import os
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
    before = cache.hashed_files
    again = run_traced(["sh", "-c", "head -c 10 big.bin > head2.txt"], backend, tmp_path)
    assert _input_digest(again, "big.bin") == _input_digest(first, "big.bin")
    assert session._stat_cache().hashed_files == before, "an unchanged 3 MiB input was re-hashed"
    with open(big, "ab") as fh:
        fh.write(b"more")
    changed = run_traced(["sh", "-c", "head -c 10 big.bin > head3.txt"], backend, tmp_path)
    assert _input_digest(changed, "big.bin") == hashlib.sha256(big.read_bytes()).hexdigest()
    assert session._stat_cache().hashed_files == before + 1
