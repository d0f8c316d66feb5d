"""What a trivial stage leaves in the cache (issue 18: <= 1 file and <= 2 KB per stage).

Sizes, not times: after a map of ``cp`` stages, the bytes each stage's kept rows hold (the
index entry, the pack's kept copy and objects, the pipeline state) are bounded. The entry was
kept as JSON holding the run twice (once as its attestation's base64 payload): 5.6 KB in the
index and 1.4 KB in the pack, the sidecar 0.7 KB, the state 350 bytes.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from pipekit import Cli, write

from sharklib.config import cache_dir
from sharklib.pipeline.state import state_dir

N = 24


def _cp_map(project: Path) -> Path:
    for i in range(N):
        write(project / "in" / f"f{i:03d}.txt", f"{i}\n")
    return write(project / "m.md", "```shark-run:host\ncp in/* out/%{basename}\n```\n")


def _per_stage(db: Path, sql: str) -> float:
    con = sqlite3.connect(db)
    try:
        return float(con.execute(sql).fetchone()[0] or 0) / N
    finally:
        con.close()


def test_a_trivial_stage_keeps_under_a_kilobyte_of_rows(project: Path, cli: Cli) -> None:
    doc = _cp_map(project)
    out = cli("run", "-j", "2", "m.md", check=True).stdout
    assert re.search(rf"{N} ran, 0 reused", out), out
    cache = cache_dir()
    entry = _per_stage(cache / "index.sqlite", "SELECT SUM(LENGTH(entry)) FROM runs")
    kept = _per_stage(cache / "pack.sqlite", "SELECT SUM(LENGTH(data)) FROM entries")
    objects = _per_stage(cache / "pack.sqlite", "SELECT SUM(LENGTH(data)) FROM objects")
    state = (state_dir(doc) / "state.json").stat().st_size / N
    assert entry <= 800, f"index entry: {entry:.0f} bytes per stage"
    assert kept <= 800, f"kept entry: {kept:.0f} bytes per stage"
    assert objects <= 600, f"packed output and sidecar: {objects:.0f} bytes per stage"
    assert state <= 150, f"pipeline state: {state:.0f} bytes per stage"
    assert not [p for p in (cache / "objects").rglob("*") if p.is_file()] \
        if (cache / "objects").exists() else True

    (project / "out" / "f003.txt").unlink()  # what is kept compact still proves and restores
    out = cli("run", "-j", "2", "m.md", check=True).stdout
    assert re.search(rf"0 ran, {N} reused", out), out
    assert (project / "out" / "f003.txt").read_text() == "3\n"
