"""Filesystems on files for tests: a loop-mounted btrfs, a zfs-fuse pool; taken down for real.

Teardown deletes every subvolume first (the read-only snapshots the stores and the shell
leave are subvolumes: pytest cannot remove their files), then unmounts (not lazily: a lazy
unmount leaves the filesystem alive and the mount point busy, and pytest's clean-up of old
temporary directories then warns "Read-only file system" and "Device or resource busy"),
retrying while something still holds it, then detaches the loop device.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "a btrfs filesystem needs root (loop device, mount)"
    if not (shutil.which("mkfs.btrfs") and shutil.which("losetup") and shutil.which("btrfs")):
        return "btrfs-progs not installed (scripts/apt-packages.txt lists it)"
    return None


def _subvolumes(mnt: Path) -> list[str]:
    """Every subvolume below ``mnt``, deepest (and newest) first."""
    out = _run("btrfs", "subvolume", "list", str(mnt), check=False).stdout
    paths = [line.split(" path ", 1)[1] for line in out.splitlines() if " path " in line]
    return sorted(paths, key=lambda p: (p.count("/"), p), reverse=True)


def teardown(mnt: Path, loop: str, img: Path) -> None:
    """Delete the subvolumes, unmount (retrying for up to 30 s), detach, remove the image."""
    gc.collect()  # SQLite connections a test left open on the filesystem hold it busy
    if os.path.ismount(mnt):
        for rel in _subvolumes(mnt):
            _run("btrfs", "subvolume", "delete", str(mnt / rel), check=False)
        deadline = time.monotonic() + 30
        while True:
            done = _run("umount", str(mnt), check=False)
            if done.returncode == 0 or not os.path.ismount(mnt):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot unmount {mnt}: {done.stderr.strip()}")
            time.sleep(0.2)
            gc.collect()
    _run("losetup", "-d", loop, check=False)
    img.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        mnt.rmdir()


@contextlib.contextmanager
def btrfs_filesystem(base: Path, size: int) -> Iterator[Path]:
    """A fresh btrfs of ``size`` bytes mounted at ``base/mnt`` (skips with the reason where none
    can be made)."""
    why = skip_reason()
    if why:
        pytest.skip(why)
    img, mnt = base / "fs.img", base / "mnt"
    mnt.mkdir()
    with open(img, "wb") as fh:
        fh.truncate(size)
    dev = _run("losetup", "-f", "--show", str(img), check=False)
    if dev.returncode != 0:
        img.unlink(missing_ok=True)
        pytest.skip(f"no loop device available: {dev.stderr.strip()}")
    loop = dev.stdout.strip()
    try:
        _run("mkfs.btrfs", "-q", loop)
        _run("mount", loop, str(mnt))
    except subprocess.CalledProcessError as exc:
        _run("losetup", "-d", loop, check=False)
        img.unlink(missing_ok=True)
        pytest.skip(f"cannot make a btrfs filesystem: {exc.stderr.strip()}")
    try:
        yield mnt
    finally:
        teardown(mnt, loop, img)


@contextlib.contextmanager
def zfs_pool(base: Path) -> Iterator[str]:
    """A zfs-fuse pool on a file, mounted under ``base/mnt``: the daemon is started (unless one
    runs) and stopped, the pool destroyed (skips with the reason where zfs-fuse cannot run)."""
    if os.geteuid() != 0:
        pytest.skip("ZFS tests need root (zfs-fuse)")
    if not (shutil.which("zfs-fuse") and shutil.which("zpool") and shutil.which("zfs")):
        pytest.skip("zfs-fuse not installed (scripts/apt-packages.txt lists it)")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse: zfs-fuse cannot run here")
    daemon = None
    if _run("zpool", "list", check=False).returncode != 0:
        daemon = subprocess.Popen(["zfs-fuse", "--no-daemon", "--no-kstat-mount",
                                   "-p", str(base / "zfs.pid")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if _run("zpool", "list", check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            daemon.kill()
            daemon.wait()
            pytest.skip("zfs-fuse did not start")
    pool = f"sharkcache{os.getpid()}{next(_pools)}"
    img = base / "pool.img"
    with open(img, "wb") as fh:
        fh.truncate(1 << 30)
    made = _run("zpool", "create", "-m", str(base / "mnt"), pool, str(img), check=False)
    try:
        if made.returncode != 0:
            pytest.skip(f"cannot create a zfs-fuse pool: {made.stderr.strip()}")
        yield pool
    finally:
        gc.collect()
        _run("zpool", "destroy", "-f", pool, check=False)
        if daemon is not None:
            daemon.terminate()
            try:
                daemon.wait(10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        img.unlink(missing_ok=True)


_pools = iter(range(1_000_000))
