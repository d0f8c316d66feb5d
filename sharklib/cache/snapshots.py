"""What the copy-on-write backends (btrfs, ZFS) share: a snapshot per run, objects inside it.

Recording a run freezes the whole workspace once (:meth:`SnapshotStore.snapshot`,
milliseconds whatever its size); each output is then "stored" by noting which
snapshot holds it at which relative path, after checking that the frozen file
has the recorded digest. Nothing is copied. Bytes that do not live in the
workspace (recorded stdout, outputs elsewhere) go to a plain content-addressed
directory on the same filesystem.

The mapping (sha256 -> snapshot, path) is a small SQLite table beside the
snapshots. An object stays servable while any snapshot holding it exists; a
snapshot is destroyed when its last object is deleted (``sharklib cache gc``).
Subclasses implement four operations: take, drop, where a snapshot's files can
be read, and how a file is materialised from there.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import threading
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sharklib.cache.cas import ContentStore
from sharklib.cache.links import materialise
from sharklib.cache.store import LinkMode, ObjectInfo, ObjectStore, Restored, check_digest
from sharklib.config import make_dirs
from sharklib.errors import StoreError
from sharklib.hashing import StatCache
from sharklib.sqlitedb import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapobjects (
    sha256 TEXT NOT NULL, snapshot TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
    PRIMARY KEY (sha256, snapshot)
)"""


def snapshot_name(run_id: str) -> str:
    """A run id made safe as a snapshot name."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)[:120].lstrip(".")
    if not name:
        raise StoreError(f"unusable run id {run_id!r} for a snapshot")
    return "run-" + name


class SnapshotStore(ObjectStore):
    """Objects served from per-run snapshots of a workspace, plus a CAS for the rest."""

    def __init__(self, workspace: str | os.PathLike[str], state: str | os.PathLike[str],
                 statcache: StatCache | None = None) -> None:
        self.workspace = os.path.abspath(workspace)
        self.state = Path(state)
        make_dirs(self.state)
        self.statcache = statcache if statcache is not None else StatCache(
            self.state / "stat.sqlite")
        self.cas = ContentStore(self.state / "cas", statcache=self.statcache)
        self._lock = threading.Lock()
        self._db = connect(self.state / "snapshots.sqlite", timeout=60, schema=[_SCHEMA],
                           synchronous=None)
        self._current: str | None = None

    # -- what a backend provides -----------------------------------------------------------
    @abstractmethod
    def _take(self, name: str) -> None:
        """Create a read-only snapshot ``name`` of the workspace."""

    @abstractmethod
    def _drop(self, name: str) -> None:
        """Destroy snapshot ``name`` (and anything made from it)."""

    @abstractmethod
    def _files(self, name: str) -> str:
        """A directory where snapshot ``name``'s files can be read."""

    def _materialise(self, src: str, dest: str, link: LinkMode, read_only: bool) -> str:
        return materialise(src, dest, link=link, read_only=read_only)

    # -- ObjectStore -----------------------------------------------------------------------
    def describe(self) -> str:
        return f"{self.name}:{self.workspace}"

    def snapshot(self, run_id: str, root: str) -> str | None:
        rel = os.path.relpath(os.path.abspath(root), self.workspace)
        if rel.startswith(".."):
            self._current = None
            return None
        name = snapshot_name(run_id)
        self._take(name)
        self._current = name
        return name

    def _rel(self, path: str) -> str | None:
        rel = os.path.relpath(os.path.abspath(path), self.workspace)
        return None if rel == ".." or rel.startswith(".." + os.sep) else rel

    def put(self, path: str, sha256: str | None = None) -> ObjectInfo:
        rel = self._rel(path)
        if self._current is None or rel is None or sha256 is None:
            return self.cas.put(path, sha256)
        check_digest(sha256, path)
        frozen = os.path.join(self._files(self._current), rel)
        got = self.statcache.digest(frozen)
        if got is None or got[0] != sha256:
            raise StoreError("file changed since it was recorded (snapshot differs)", path)
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO snapobjects VALUES (?,?,?,?)",
                             (sha256, self._current, rel, got[1]))
        return ObjectInfo(sha256, got[1])

    def put_bytes(self, data: bytes) -> ObjectInfo:
        return self.cas.put_bytes(data)

    def _rows(self, sha256: str) -> list[tuple[str, str]]:
        check_digest(sha256, self.describe())
        with self._lock:
            return self._db.execute("SELECT snapshot, path FROM snapobjects WHERE sha256=?",
                                    (sha256,)).fetchall()

    def _locate(self, sha256: str) -> str | None:
        for snap, rel in self._rows(sha256):
            path = os.path.join(self._files(snap), rel)
            if os.path.isfile(path):
                return path
        return str(self.cas.path(sha256)) if self.cas.has(sha256) else None

    def has(self, sha256: str) -> bool:
        return self._locate(sha256) is not None

    def open(self, sha256: str) -> BinaryIO:
        path = self._locate(sha256)
        if path is None:
            raise StoreError(f"object {sha256} is not in the store", self.describe())
        if not os.path.isfile(path):  # a small object packed in the CAS (sharklib.cache.pack)
            return self.cas.open(sha256)
        return open(path, "rb")

    def verify(self, sha256: str, *, full: bool = False) -> bool:
        if self._rows(sha256):
            path = self._locate(sha256)
            if path is None:
                return False
            if full:
                from sharklib.hashing import sha256_file

                return sha256_file(path)[0] == sha256
            got = self.statcache.digest(path)
            return got is not None and got[0] == sha256
        return self.cas.verify(sha256, full=full)

    def restore(self, sha256: str, dest: str, *, link: LinkMode = "auto",
                read_only: bool = False) -> Restored:
        if not self._rows(sha256):
            return self.cas.restore(sha256, dest, link=link, read_only=read_only)
        path = self._locate(sha256)
        if path is None:
            raise StoreError(f"object {sha256} is not in the store", self.describe())
        if not self.verify(sha256):
            self.quarantine(sha256)
            raise StoreError(f"object {sha256} does not match its digest (quarantined)", path)
        # hardlinks cannot leave a read-only snapshot; reflink or copy
        strategy = self._materialise(path, dest, "auto" if link == "hardlink" else link,
                                     read_only)
        return Restored(dest, strategy)

    def _drop_unused(self, snapshots: set[str]) -> None:
        for snap in snapshots:
            with self._lock:
                left = self._db.execute("SELECT 1 FROM snapobjects WHERE snapshot=? LIMIT 1",
                                        (snap,)).fetchone()
            if left is None:
                with contextlib.suppress(StoreError):
                    self._drop(snap)

    def delete(self, sha256: str) -> None:
        snaps = {s for s, _ in self._rows(sha256)}
        with self._lock:
            self._db.execute("DELETE FROM snapobjects WHERE sha256=?", (sha256,))
        self._drop_unused(snaps)
        self.cas.delete(sha256)

    def forget_snapshot(self, name: str) -> None:
        """Destroy snapshot ``name`` and forget the objects it served (its owner is gone:
        a deleted shell session's before-snapshots)."""
        with self._lock:
            self._db.execute("DELETE FROM snapobjects WHERE snapshot=?", (name,))
        self._drop(name)

    def quarantine(self, sha256: str) -> None:
        # a snapshot is read-only: forget the object there (it cannot be served again)
        with self._lock:
            self._db.execute("DELETE FROM snapobjects WHERE sha256=?", (sha256,))
        self.cas.quarantine(sha256)

    def list(self) -> Iterator[ObjectInfo]:
        with self._lock:
            rows = self._db.execute("SELECT sha256, MAX(size) FROM snapobjects "
                                    "GROUP BY sha256").fetchall()
        seen = set()
        for sha, size in rows:
            seen.add(sha)
            yield ObjectInfo(sha, int(size))
        for info in self.cas.list():
            if info.sha256 not in seen:
                yield info

    def snapshots(self) -> builtins.list[str]:  # `list` here is the method
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT DISTINCT snapshot FROM snapobjects ORDER BY snapshot").fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self.cas.close()
