"""Link strategies: reflink where the filesystem can, hardlink only for read-only outputs, else copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sharklib.cache.cas import ContentStore
from sharklib.cache.runcache import RunCache
from sharklib.hashing import sha256_bytes
from sharklib.runner.reuse import check, record


def _fs_reflinks(d: Path) -> bool:
    from sharklib.cache.links import reflink

    (d / ".probe").write_bytes(b"x")
    try:
        reflink(str(d / ".probe"), str(d / ".probe2"))
        return True
    except OSError:
        return False
    finally:
        for n in (".probe", ".probe2"):
            (d / n).unlink(missing_ok=True)


def test_default_restore_is_a_private_copy_on_ext4(tmp_path: Path) -> None:
    if _fs_reflinks(tmp_path):
        pytest.skip("this filesystem reflinks; the copy fallback is not exercised here")
    store = ContentStore(tmp_path / "s")
    info = store.put_bytes(b"data" * 5000)  # a file of its own (smaller ones are packed rows)
    r = store.restore(info.sha256, str(tmp_path / "out"))
    assert r.strategy == "copy"
    assert os.stat(tmp_path / "out").st_ino != os.stat(store.path(info.sha256)).st_ino


def test_read_only_outputs_are_hardlinked(project, tmp_path, write, make_run, key_for):  # type: ignore[no-untyped-def]
    out = write(project / "big.bin", b"z" * 20000)  # a file of its own (not a packed row)
    with RunCache(tmp_path / "c", read_only=True) as cache:
        record(make_run(project, ["s.py"], [project / "data" / "in.txt"], [out]),
               root=str(project), cache=cache)
        out.unlink()
        d = check(key_for(["s.py"], project), cwd=str(project), root=str(project), cache=cache)
        assert d is not None
        obj = cache.store.path(sha256_bytes(b"z" * 20000))  # type: ignore[attr-defined]
        if _fs_reflinks(project):
            return  # reflink wins over hardlink where available
        assert os.stat(out).st_ino == os.stat(obj).st_ino
        assert os.stat(out).st_mode & 0o777 == 0o444  # nobody edits the store through it


def test_cas_on_btrfs_restores_by_reflink(btrfs_mount: Path) -> None:
    base = btrfs_mount / "cas-reflink"
    store = ContentStore(base / "store")
    info = store.put_bytes(os.urandom(1 << 20))
    r = store.restore(info.sha256, str(base / "out.bin"))
    assert r.strategy == "reflink"
    assert (base / "out.bin").read_bytes() == store.read(info.sha256)
