"""ZFS: a dataset per workspace, a snapshot per recorded run, restore by clone.

Snapshots are instant and free until the workspace diverges. A snapshot's
files are read through a clone (``zfs clone``; made once per snapshot, kept
until the snapshot is dropped), because the ``.zfs/snapshot`` directory is not
available everywhere (zfs-fuse lacks it). Outputs are copied from the clone;
where the pool supports block cloning (OpenZFS 2.2+ ``FICLONE``) the copy is a
clone of blocks instead.

Operations go through OpenZFS's own ``libzfs_core`` Python module when it
imports (hosts with kernel ZFS), else through the ``zfs`` command, which is
also what zfs-fuse speaks. The PyPI ``pyzfs`` 0.2.3 (2016, Python 2 era) is
deliberately not used: it cannot work without ``libzfs_core.so`` and
``/dev/zfs`` and is unmaintained.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from typing import Any

from sharklib.cache.snapshots import SnapshotStore
from sharklib.config import make_dirs
from sharklib.errors import StoreError
from sharklib.hashing import StatCache


def _zfs(*args: str) -> str:
    exe = shutil.which("zfs")
    if exe is None:
        raise StoreError("the zfs command is not installed (OpenZFS or zfs-fuse)")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StoreError(f"zfs {args[0]} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def dataset_at(path: str) -> str | None:
    """The ZFS dataset mounted exactly at ``path`` (kernel ZFS or zfs-fuse), else None.

    Read from ``/proc/self/mountinfo`` (no process started unless the mount is ZFS's),
    then confirmed with ``zfs get mountpoint``, as :func:`sharklib.cache.btrfs.is_subvolume`
    confirms a subvolume.
    """
    target = os.path.realpath(path)
    found = None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields, tail = left.split(), right.split()
                if len(fields) < 5 or len(tail) < 2:
                    continue
                point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
                if point == target:
                    found = (tail[0], re.sub(r"\\([0-7]{3})",
                                             lambda m: chr(int(m.group(1), 8)), tail[1]))
    except OSError:
        return None
    if found is None or not (found[0] == "zfs" or found[0].startswith("fuse")):
        return None
    if shutil.which("zfs") is None:
        return None
    try:
        mountpoint = _zfs("get", "-H", "-o", "value", "mountpoint", found[1]).strip()
    except StoreError:
        return None
    return found[1] if os.path.realpath(mountpoint) == target else None


def _lzc() -> Any | None:
    try:
        import libzfs_core  # type: ignore[import-not-found]
    except Exception:
        return None
    return libzfs_core


class ZfsStore(SnapshotStore):
    """Per-run snapshots of a ZFS dataset mounted at the workspace; reads through clones."""

    name = "zfs"

    def __init__(self, dataset: str, state: str | None = None,
                 statcache: StatCache | None = None) -> None:
        self.dataset = dataset
        mountpoint = _zfs("get", "-H", "-o", "value", "mountpoint", dataset).strip()
        if not mountpoint.startswith("/"):
            raise StoreError(f"dataset {dataset} is not mounted", mountpoint)
        if state is None:  # off the pool: a FUSE-mounted pool stays busy while files are open
            from sharklib.config import cache_dir

            state = str(cache_dir() / "zfs" / dataset.replace("/", "%"))
        self.lzc = _lzc()
        super().__init__(mountpoint, state, statcache)
        self.clones = os.path.join(str(self.state), "clones")
        make_dirs(self.clones)

    def _snap(self, name: str) -> str:
        return f"{self.dataset}@{name}"

    def _clone(self, name: str) -> str:
        return f"{self.dataset}-sharklib-{name}"

    def _take(self, name: str) -> None:
        if self.lzc is not None:
            self.lzc.lzc_snapshot([self._snap(name).encode()])
        else:
            _zfs("snapshot", self._snap(name))

    def _files(self, name: str) -> str:
        where = os.path.join(self.clones, name)
        if not os.path.ismount(where):
            with contextlib.suppress(StoreError):  # another process may have made it
                _zfs("clone", "-o", f"mountpoint={where}", "-o", "readonly=on",
                     self._snap(name), self._clone(name))
            if not os.path.ismount(where):
                raise StoreError(f"cannot clone snapshot {self._snap(name)}", where)
        return where

    def _drop(self, name: str) -> None:
        where = os.path.join(self.clones, name)
        with contextlib.suppress(StoreError):
            _zfs("unmount", "-f", self._clone(name))
        # zfs-fuse reports a just-unmounted dataset busy until the kernel forgets its inodes
        deadline = time.monotonic() + 5.0
        while True:
            try:
                _zfs("destroy", "-f", self._clone(name))
                break
            except StoreError as exc:
                if "does not exist" in str(exc) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        with contextlib.suppress(OSError):
            os.rmdir(where)
        if self.lzc is not None:
            self.lzc.lzc_destroy_snaps([self._snap(name).encode()], defer=False)
        else:
            _zfs("destroy", self._snap(name))
