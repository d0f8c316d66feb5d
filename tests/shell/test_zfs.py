"""On a ZFS dataset (here a zfs-fuse pool on a file) the shell is detected to be on ZFS and freezes
the workspace before each line with a ZFS snapshot, as on btrfs: ``:undo`` puts back files that
predate the session and were changed in place without any line reading them first."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopfs import zfs_pool
from shellkit import run_shell, shell_env


def _zfs(*args: str) -> str:
    return subprocess.run(["zfs", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def zfs_ws(tmp_path: Path) -> Iterator[Path]:
    with zfs_pool(tmp_path) as pool:
        _zfs("create", f"{pool}/project")
        ws = Path(_zfs("get", "-H", "-o", "value", "mountpoint", f"{pool}/project").strip())
        yield ws


@pytest.mark.timeout(600)
def test_zfs_workspace_is_snapshotted(traced: None, zfs_ws: Path) -> None:
    ws = zfs_ws
    (ws / "data.txt").write_text("b\na\nc\n")
    (ws / "notes.txt").write_text("keep me\n")
    env = shell_env()
    # the files are not named on the lines (variables hold them), so nothing but the
    # before-snapshots holds their earlier content
    res = run_shell(ws, "d=data; echo extra >> $d.txt\nn=notes; sed -i s/keep/lose/ $n.txt\n"
                        ":undo\n:undo\n:history\n", env)
    assert res.returncode == 0, res.stderr
    assert (ws / "data.txt").read_text() == "b\na\nc\n"
    assert (ws / "notes.txt").read_text() == "keep me\n"
    assert "could not be restored" not in res.stdout
    assert "partly" not in res.stdout and "[undone]" in res.stdout
    # the before-snapshots of the two lines are ZFS snapshots of the dataset (of this test's
    # dataset only: other tests on the machine may hold pools of their own)
    dataset = _zfs("list", "-H", "-o", "name", str(ws)).strip()
    snaps = _zfs("list", "-H", "-t", "snapshot", "-o", "name", "-r", dataset)
    assert snaps.count("-before") == 2, snaps
