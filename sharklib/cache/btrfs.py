"""btrfs: the workspace is a subvolume; each recorded run gets a read-only snapshot.

Snapshots cost milliseconds whatever the workspace's size, and restoring an
output is a reflink (``FICLONE``) from the snapshot into the workspace: the
bytes are shared copy-on-write, so restoring a gigabyte costs about as much as
restoring a byte, and the restored file is private and writable.

Needs ``btrfs-progs`` (the ``btrfs`` command). Snapshot creation of a
subvolume needs root (or ``user_subvol_rm_allowed`` for deletion as a user).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from sharklib.cache.snapshots import SnapshotStore
from sharklib.config import make_dirs
from sharklib.errors import StoreError
from sharklib.hashing import StatCache


def _btrfs(*args: str) -> str:
    exe = shutil.which("btrfs")
    if exe is None:
        raise StoreError("the btrfs command is not installed (package btrfs-progs)")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StoreError(f"btrfs {' '.join(args[:2])} failed: "
                         f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return proc.stdout


def is_subvolume(path: str) -> bool:
    """A btrfs subvolume's root directory has inode 256."""
    try:
        return os.stat(path).st_ino == 256 and bool(shutil.which("btrfs")) and \
            subprocess.run(["btrfs", "subvolume", "show", path], capture_output=True,
                           check=False).returncode == 0
    except OSError:
        return False


def create_workspace(path: str) -> None:
    """Make ``path`` (which must not exist, on a btrfs filesystem) a subvolume."""
    _btrfs("subvolume", "create", path)


class BtrfsStore(SnapshotStore):
    """Per-run read-only snapshots of a btrfs subvolume; restore by reflink."""

    name = "btrfs"

    def __init__(self, workspace: str, snapshots: str | None = None,
                 statcache: StatCache | None = None) -> None:
        workspace = os.path.abspath(workspace)
        if not is_subvolume(workspace):
            raise StoreError("not a btrfs subvolume (create it with "
                             "`btrfs subvolume create`)", workspace)
        if snapshots is None:
            parent, base = os.path.split(workspace)
            snapshots = os.path.join(parent, f".{base}.sharklib")
        super().__init__(workspace, snapshots, statcache)
        self.snapdir = os.path.join(snapshots, "snapshots")
        make_dirs(self.snapdir)

    def _files(self, name: str) -> str:
        return os.path.join(self.snapdir, name)

    def _take(self, name: str) -> None:
        if not os.path.isdir(self._files(name)):
            _btrfs("subvolume", "snapshot", "-r", self.workspace, self._files(name))

    def _drop(self, name: str) -> None:
        if os.path.isdir(self._files(name)):
            _btrfs("subvolume", "delete", self._files(name))
