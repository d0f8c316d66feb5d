"""A pipeline stage reading a file 300 directories down is re-run when that file changes.

The eBPF walk once cut such a path (prefix lost), the stage was signed with no real
input and reused after the file changed: a stale result served silently.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipekit import Cli, write

from sharklib.trace import ebpf

DEPTH = 300


@pytest.fixture
def deep_leaf(project: Path) -> Iterator[Path]:
    leaf = project.joinpath(*(["d"] * DEPTH), "leaf.in")
    leaf.parent.mkdir(parents=True)
    leaf.write_text("first\n")
    yield leaf
    # pytest's own clean-up (shutil.rmtree) recurses once per level: remove it with rm
    subprocess.run(["rm", "-rf", str(project / "d")], check=False)


def test_stage_reading_a_deep_file_is_not_reused_after_it_changes(project: Path, cli: Cli,
                                                                  deep_leaf: Path) -> None:
    why = ebpf.unavailable_reason()
    if why:
        pytest.skip(f"the eBPF tracer cannot run here: {why}")
    rel = deep_leaf.relative_to(project)
    write(project / "m.md", f"```shark-run:host\ncat {rel} > out.txt\n```\n")
    cli("run", "m.md", check=True)
    assert (project / "out.txt").read_text() == "first\n"
    deep_leaf.write_text("second\n")
    proc = cli("run", "m.md", check=True)
    assert (project / "out.txt").read_text() == "second\n", proc.stdout + proc.stderr
