"""One behavioural suite run against every store backend this machine has (fsspec-style).

Backends: the content-addressed directory, btrfs (loop mount, root), ZFS (zfs-fuse, root),
and the fsspec remote on ``file://`` and on a real S3 API (moto server on loopback).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from sharklib.cache.store import ObjectStore, open_store
from sharklib.errors import StoreError
from sharklib.hashing import sha256_bytes
from tests.cache.conftest import tamper_object

BACKENDS = ["cas", "btrfs", "zfs", "remote-file", "remote-s3"]


@dataclass
class Harness:
    store: ObjectStore
    workspace: Path
    tamper: Callable[[str], None]

    def add(self, data: bytes, name: str | None = None) -> str:
        """Write a file in the workspace, snapshot (where the backend does), and store it."""
        path = self.workspace / (name or f"f-{uuid.uuid4().hex[:8]}.bin")
        path.write_bytes(data)
        self.store.snapshot(uuid.uuid4().hex, str(self.workspace))
        sha = sha256_bytes(data)
        info = self.store.put(str(path), sha)
        assert info.sha256 == sha and info.size == len(data)
        return sha


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    kind = request.param
    store: ObjectStore
    if kind == "cas":
        ws = tmp_path / "ws"
        ws.mkdir()
        store = open_store("cas", root=str(tmp_path / "store"))
        yield Harness(store, ws, lambda sha: tamper_object(store, sha, b"EVIL"))
    elif kind == "btrfs":
        ws = request.getfixturevalue("btrfs_workspace")
        store = open_store("btrfs", workspace=str(ws))
        yield Harness(store, ws, lambda sha: tamper_object(store.cas, sha, b"EVIL"))  # type: ignore[attr-defined]
    elif kind == "zfs":
        ds = request.getfixturevalue("zfs_dataset")
        store = open_store("zfs", dataset=ds)
        yield Harness(store, Path(store.workspace),  # type: ignore[attr-defined]
                      lambda sha: tamper_object(store.cas, sha, b"EVIL"))  # type: ignore[attr-defined]
    else:
        if kind == "remote-file":
            url = (tmp_path / "remote").as_uri()
        else:
            url = f"s3://{request.getfixturevalue('s3_bucket')}/cache"
        ws = tmp_path / "ws"
        ws.mkdir()
        store = open_store("remote", url=url)

        def tamper(sha: str) -> None:
            with store.fs.open(store._obj(sha), "wb") as fh:  # type: ignore[attr-defined]
                fh.write(zstandard.ZstdCompressor().compress(b"not what the name says"))
        yield Harness(store, ws, tamper)
    store.close()


def test_put_has_read_list(harness: Harness) -> None:
    data = os.urandom(300_000)
    sha = harness.add(data)
    assert harness.store.has(sha)
    assert harness.store.read(sha) == data
    assert harness.store.verify(sha, full=True)
    listed = {o.sha256: o.size for o in harness.store.list()}
    assert listed[sha] == len(data)


def test_put_bytes_roundtrip(harness: Harness) -> None:
    info = harness.store.put_bytes(b"recorded stdout\n")
    assert info.sha256 == sha256_bytes(b"recorded stdout\n")
    assert harness.store.read(info.sha256) == b"recorded stdout\n"


def test_put_refuses_wrong_digest(harness: Harness) -> None:
    p = harness.workspace / "changed.txt"
    p.write_bytes(b"now different")
    wrong = sha256_bytes(b"what was recorded")
    harness.store.snapshot(uuid.uuid4().hex, str(harness.workspace))
    with pytest.raises(StoreError, match="changed since it was recorded"):
        harness.store.put(str(p), wrong)
    assert not harness.store.has(wrong)


def test_restore_is_whole_and_writable(harness: Harness, tmp_path: Path) -> None:
    data = os.urandom(1_000_000)
    sha = harness.add(data)
    dest_dir = harness.workspace / "restored"
    dest_dir.mkdir()
    dest = dest_dir / "out.bin"
    dest.write_bytes(b"stale content")
    result = harness.store.restore(sha, str(dest))
    assert dest.read_bytes() == data
    assert result.strategy in ("reflink", "copy", "download")
    assert os.access(dest, os.W_OK)
    assert sorted(os.listdir(dest_dir)) == ["out.bin"]  # no temporaries left behind
    with open(dest, "ab") as fh:  # writing the restored file must not touch the store
        fh.write(b"more")
    assert harness.store.read(sha) == data


def test_delete(harness: Harness) -> None:
    sha = harness.add(b"to be deleted")
    harness.store.delete(sha)
    assert not harness.store.has(sha)
    harness.store.delete(sha)  # deleting again is fine


def test_tampered_object_is_refused_and_quarantined(harness: Harness) -> None:
    info = harness.store.put_bytes(b"honest bytes " * 1000)
    harness.tamper(info.sha256)
    dest = harness.workspace / "victim.txt"
    dest.write_bytes(b"untouched")
    with pytest.raises(StoreError, match="does not match its digest"):
        harness.store.restore(info.sha256, str(dest))
    assert dest.read_bytes() == b"untouched"
    assert not harness.store.has(info.sha256)
    assert sorted(os.listdir(harness.workspace)) == ["victim.txt"] or \
        not any(n.endswith(".sharklib-tmp") for n in os.listdir(harness.workspace))


def test_hostile_object_names_refused(harness: Harness) -> None:
    for name in ("../../etc/passwd", "/etc/passwd", "A" * 64, ""):
        with pytest.raises(StoreError, match="not a sha256"):
            harness.store.has(name)
