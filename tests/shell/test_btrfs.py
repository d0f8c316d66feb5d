"""On a btrfs workspace the shell freezes the workspace before each line (a snapshot, not a copy),
so ``:undo`` also puts back files that predate the session and were changed in place."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopfs import btrfs_filesystem
from shellkit import run_shell, shell_env


@pytest.fixture
def btrfs_ws(tmp_path: Path) -> Iterator[Path]:
    """A subvolume on a fresh btrfs; everything (the shell's read-only before-snapshots too)
    deleted and unmounted afterwards."""
    with btrfs_filesystem(tmp_path, 1 << 30) as mnt:
        ws = mnt / "project"
        subprocess.run(["btrfs", "subvolume", "create", str(ws)], capture_output=True,
                       check=True)
        yield ws


@pytest.mark.timeout(300)
def test_undo_restores_files_older_than_the_session(traced: None, btrfs_ws: Path) -> None:
    ws = btrfs_ws
    (ws / "data.txt").write_text("b\na\nc\n")
    (ws / "notes.txt").write_text("keep me\n")
    env = shell_env()
    # the changed files are not named on the lines (variables hold them): only the
    # before-snapshots (and `cat`, once data.txt's stat is settled) hold their earlier content
    res = run_shell(ws, "ls\ncat data.txt\nd=data; echo extra >> $d.txt\n"
                        "n=notes; sed -i s/keep/lose/ $n.txt\n"
                        "rm data.txt\n:undo\n:undo\n:undo\n:history --all\n", env)
    assert res.returncode == 0, res.stderr
    assert (ws / "data.txt").read_text() == "b\na\nc\n"
    assert (ws / "notes.txt").read_text() == "keep me\n"
    assert "never recorded" not in res.stdout
    # only the lines that changed a file whose earlier content the session had not stored
    # keep their before-snapshot: [4] (notes.txt was never read), [3] unless `cat` [2]
    # stored data.txt; [5] removed data.txt, whose content [3] recorded
    snaps = sorted(os.listdir(ws.parent / ".project.sharklib" / "snapshots"))
    assert [s.split("-")[-2] for s in snaps] in (["3", "4"], ["4"]), snaps
    assert all("before" in s for s in snaps)
    again = run_shell(ws, ":checkout 5\n", env)
    assert again.returncode == 0, again.stderr
    assert not (ws / "data.txt").exists()
    assert (ws / "notes.txt").read_text() == "lose me\n"
