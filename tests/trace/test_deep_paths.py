"""Files deep in a directory tree: recorded by their true path, or the record is refused.

The eBPF walk once stopped after 256 directories and recorded ``/d/d/…/leaf.in``
with its prefix lost: the run was signed with a wrong (non-existent) input, and a
pipeline stage was reused after the real file changed. A careless user with a
deep tree (a generated layout, a runaway ``mkdir -p``) must get either the real
path or a record that says it is incomplete and is never reused.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from trace_support import root, run_traced

DEPTH = 300


def _deep_dir(base: Path, depth: int) -> Path:
    """``base/d/d/…`` ``depth`` levels down, made through directory descriptors (a path that
    deep may be longer than PATH_MAX, which ``os.makedirs`` cannot pass to the kernel)."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        leaf = os.open("leaf.in", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"first\n")
        os.close(leaf)
    finally:
        os.close(fd)
    return base.joinpath(*(["d"] * depth))


@pytest.fixture
def deep(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Make deep trees under tmp_path; remove them with ``rm -rf`` (pytest's own clean-up,
    shutil.rmtree, recurses once per level and overflows Python's stack on them)."""
    made: list[Path] = []

    def make(depth: int) -> Path:
        made.append(tmp_path / "d")
        return _deep_dir(tmp_path, depth)

    yield make
    for top in made:
        subprocess.run(["rm", "-rf", str(top)], check=False)


def test_a_file_300_directories_down_is_recorded_by_its_true_path(
        tmp_path: Path, backend: str, deep: Callable[[int], Path]) -> None:
    leafdir = deep(DEPTH)
    rel = "/".join(["d"] * DEPTH) + "/leaf.in"
    res = run_traced(["sh", "-c", f"cat {rel} > out.txt"], backend, tmp_path)
    assert res.exit_status == 0, res.messages
    assert not res.incomplete, res.messages
    ins = [a.path for a in root(res).inputs]
    assert str(leafdir / "leaf.in") in ins, ins
    assert (tmp_path / "out.txt").read_text() == "first\n"


def test_a_path_deeper_than_the_tracer_can_walk_is_an_incomplete_record(
        tmp_path: Path, backend: str, deep: Callable[[int], Path]) -> None:
    """2,100 levels (> 4 KiB of path): eBPF cannot walk it whole and strace cannot name the
    file (PATH_MAX), so the record is incomplete and nothing is signed (both once signed a run
    without that input)."""
    deep(2100)
    out = tmp_path / "out.txt"
    script = ("import os, shutil\nfor _ in range(2100): os.chdir('d')\n"
              f"shutil.copyfile('leaf.in', {str(out)!r})\n")
    res = run_traced([sys.executable, "-c", script], backend, tmp_path, python_capture=False)
    assert res.exit_status == 0, res.messages
    assert out.read_text() == "first\n"
    assert res.incomplete, "a cut path must not be recorded as if it were whole"
    assert res.sidecars == [] and res.runs == []
    assert any("were cut" in m for m in res.messages), res.messages
    assert not list(tmp_path.glob("*.intoto.jsonl"))


def test_sharklib_trace_cli_on_a_deep_file(tmp_path: Path, backend: str,
                                           deep: Callable[[int], Path]) -> None:
    leafdir = deep(DEPTH)
    rel = "/".join(["d"] * DEPTH) + "/leaf.in"
    proc = subprocess.run([sys.executable, "-m", "sharklib", "trace", "--backend", backend, "--",
                           "sh", "-c", f"cat {rel} > out.txt"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    sidecar = tmp_path / "out.txt.intoto.jsonl"
    assert sidecar.exists(), proc.stderr
    assert _b64_contains(sidecar, leafdir / "leaf.in"), "the deep input is missing from the record"


def _b64_contains(sidecar: Path, path: Path) -> bool:
    import base64
    import json

    payloads = [json.loads(line)["payload"] for line in sidecar.read_text().splitlines()]
    return any(str(path) in base64.b64decode(p).decode() for p in payloads)

