"""btrfs and ZFS as the run cache's store: a snapshot per run, reuse restores from it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sharklib.cache import maintenance
from sharklib.cache.btrfs import BtrfsStore
from sharklib.cache.runcache import RunCache
from sharklib.cache.zfs import ZfsStore
from sharklib.runner.reuse import check, record


def _roundtrip(ws: Path, cache: RunCache, write, make_run, key_for) -> None:  # type: ignore[no-untyped-def]
    write(ws / "data" / "in.txt", "input\n")
    big = os.urandom(4 << 20)
    out = write(ws / "out" / "big.bin", big)
    run = make_run(ws, ["step.py"], [ws / "data" / "in.txt"], [out])
    entry = record(run, root=str(ws), cache=cache, stdout=b"ok\n")
    assert entry is not None
    out.write_bytes(b"overwritten after the run")  # the snapshot keeps the recorded bytes
    d = check(key_for(["step.py"], ws), cwd=str(ws), root=str(ws), cache=cache)
    assert d is not None and d.stdout == b"ok\n"
    assert out.read_bytes() == big
    assert maintenance.verify(cache).ok


def test_btrfs_store_records_by_snapshot_and_restores_by_reflink(  # type: ignore[no-untyped-def]
        btrfs_workspace, tmp_path, write, make_run, key_for):
    store = BtrfsStore(str(btrfs_workspace))
    with RunCache(tmp_path / "cache", store=store) as cache:
        _roundtrip(btrfs_workspace, cache, write, make_run, key_for)
        [snap] = store.snapshots()
        snapdir = Path(store.snapdir) / snap
        assert (snapdir / "out" / "big.bin").exists()
        # a restore is a reflink out of the snapshot: no bytes copied
        entry = cache.index.candidates(next(iter(cache.index.rows())).key)[0]
        dest = btrfs_workspace / "again.bin"
        assert store.restore(entry.outputs()[0].sha256, str(dest)).strategy == "reflink"
        # gc of every run drops the snapshot itself
        rep = maintenance.gc(cache, max_age=0, now=10**12)
        assert len(rep.runs_removed) == 1
        assert not snapdir.exists()
        assert store.snapshots() == []


def test_zfs_store_records_by_snapshot_and_restores_by_clone(  # type: ignore[no-untyped-def]
        zfs_dataset, tmp_path, write, make_run, key_for):
    store = ZfsStore(zfs_dataset)
    ws = Path(store.workspace)
    with RunCache(tmp_path / "cache", store=store) as cache:
        _roundtrip(ws, cache, write, make_run, key_for)
        [snap] = store.snapshots()
        listing = subprocess.run(["zfs", "list", "-H", "-t", "snapshot", "-o", "name"],
                                 capture_output=True, text=True, check=True).stdout
        assert f"{zfs_dataset}@{snap}" in listing
        maintenance.gc(cache, max_age=0, now=10**12)
        listing = subprocess.run(["zfs", "list", "-H", "-t", "all", "-o", "name"],
                                 capture_output=True, text=True, check=True).stdout
        assert f"{zfs_dataset}@{snap}" not in listing
        # the clone went too (only this dataset's: another test run's pool may be listed)
        assert f"{zfs_dataset}-sharklib" not in listing
