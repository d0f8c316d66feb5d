"""Packs: many small things of the cache as rows of one SQLite file instead of a file each.

A trivial pipeline stage (``cp in/a out/a``) used to leave five files in the cache:
its output and its sidecar as objects, its kept entry (``runs/<key>/<id>.json``, in a
directory of its own) and two empty logs. A 100,000-stage map was half a million
inodes and as many creates, renames and ``chmod`` calls on the runner's critical path.
Now an object of at most :data:`PACK_MAX` bytes is a row of ``pack.sqlite`` beside
``objects/``, and so is the kept entry (a row of another table), both compacted
(:mod:`sharklib.cache.compact`: DSSE payloads as their bytes, deflated against a preset
dictionary; rows an older sharklib wrote, plain zlib, read as before), and a
run's small objects and its entry are written in one transaction. Larger objects stay
files (reflinks and hardlinks need files).

Why SQLite and not an append-only file: every write is one transaction (atomic: a
process killed mid-write leaves the previous state, rolled back at the next open),
concurrent writers are serialised by SQLite's own lock, and deleting a row (``gc``)
needs no compaction pass. What is packed is still verified by its digest before it
is served (:class:`sharklib.cache.cas.ContentStore`), and a kept entry is still only a
hint until its signature proves it (:mod:`sharklib.runner.proof`).

A damaged pack (not a database, a malformed page) is one line naming it and the way
out, ``sharklib cache repair``, which moves it aside (never deletes it) and starts an
empty one; the runs whose objects were in it are re-run when next needed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sqlite3
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

from sharklib.cache.compact import (
    ENTRY_PLAIN,
    ENTRY_SIGNED,
    entry_json,
    pack_entry,
    pack_object,
    unpack_object,
)
from sharklib.cache.store import CacheDamaged
from sharklib.errors import StoreError
from sharklib.sqlitedb import connect, is_damaged

#: objects up to this many bytes are packed; larger ones stay files of their own
PACK_MAX = 16 * 1024
#: the pack's file name: beside ``objects/`` (the store's) and beside the index (kept
#: entries); one file when the store lives in the cache directory, as by default
PACK = "pack.sqlite"
#: rows of one to three KiB: 16 KiB pages hold several each (4 KiB pages held one, 40 % empty)
PAGE_SIZE = 16384

# rowid tables: a row of a few KiB stays on its leaf page (a WITHOUT ROWID table moved every
# such blob to overflow pages of its own, 4 KiB per sidecar)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS objects (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, "
    "data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS entries (run_id TEXT PRIMARY KEY, key TEXT NOT NULL, "
    "data BLOB NOT NULL)",
)


def pack_damaged(exc: sqlite3.DatabaseError, path: str | os.PathLike[str]) -> StoreError:
    """The one line for a pack SQLite cannot use: damaged (with the way out) or unreadable."""
    if is_damaged(exc):
        return CacheDamaged(f"cache pack damaged ({exc}): run 'sharklib cache repair' "
                            f"(it moves the pack aside; runs whose objects were in it run "
                            f"again)", str(path))
    return StoreError(f"cache pack unreadable: {exc}", str(path))


class Pack:
    """One pack file: packed objects by sha256 and kept entries by run id.

    Opened on first use (a reuse that restores only large objects never opens it);
    one connection per instance, shared by the instance's threads under a lock.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def exists(self) -> bool:
        return self.path.exists()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            from sharklib.cache.cas import refuse_file_link

            where = str(self.path.parent)
            for suffix in ("", "-wal", "-shm"):
                refuse_file_link(f"{self.path}{suffix}", where)
            try:
                db = connect(self.path, timeout=60, schema=_SCHEMA, page_size=PAGE_SIZE)
            except sqlite3.DatabaseError as exc:
                raise pack_damaged(exc, self.path) from None
            self._db = db
        return self._db

    @contextlib.contextmanager
    def _use(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn()
            except sqlite3.DatabaseError as exc:
                raise pack_damaged(exc, self.path) from None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- objects ---------------------------------------------------------------------------
    def put_object(self, sha256: str, data: bytes) -> None:
        """Keep ``data`` (whose digest the caller checked) under ``sha256``: one transaction."""
        self.put_many([(sha256, data)])

    def put_many(self, objects: list[tuple[str, bytes]],
                 entry: tuple[str, str, dict[str, object]] | None = None) -> None:
        """Objects (digests checked by the caller) and a kept entry in one transaction.

        A run's sidecar, its tiny output and its entry are one commit (one lock taken
        among concurrent runs), objects before the entry as always.
        """
        rows = [(sha, len(data), pack_object(data)) for sha, data in objects]
        kept = (entry[0], entry[1], pack_entry(entry[2])) if entry else None
        if not rows and kept is None:
            return
        with self._use() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR REPLACE INTO objects (sha256, size, data) "
                               "VALUES (?,?,?)", rows)
                if kept is not None:
                    db.execute("INSERT OR REPLACE INTO entries (run_id, key, data) "
                               "VALUES (?,?,?)", kept)
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def has_object(self, sha256: str) -> bool:
        if not self.path.exists():
            return False
        with self._use() as db:
            return db.execute("SELECT 1 FROM objects WHERE sha256=?",
                              (sha256,)).fetchone() is not None

    def get_object(self, sha256: str) -> bytes | None:
        """The object's bytes as stored, *unverified* (None when not packed)."""
        if not self.path.exists():
            return None
        with self._use() as db:
            row = db.execute("SELECT data FROM objects WHERE sha256=?", (sha256,)).fetchone()
        if row is None:
            return None
        try:
            return unpack_object(row[0])
        except (zlib.error, ValueError, TypeError):
            return b""  # bytes that cannot be unpacked are as wrong as bytes with another digest

    def delete_object(self, sha256: str) -> bool:
        if not self.path.exists():
            return False
        with self._use() as db:
            return db.execute("DELETE FROM objects WHERE sha256=?", (sha256,)).rowcount > 0

    def objects(self) -> list[tuple[str, int]]:
        """Every packed object: (sha256, size)."""
        if not self.path.exists():
            return []
        with self._use() as db:
            return [(str(s), int(n)) for s, n in
                    db.execute("SELECT sha256, size FROM objects ORDER BY sha256")]

    # -- kept entries ----------------------------------------------------------------------
    def put_entry(self, run_id: str, key: str, entry: dict[str, object]) -> None:
        """Keep an entry (its :meth:`~sharklib.cache.entry.IndexEntry.to_dict`): one transaction."""
        self.put_many([], (run_id, key, entry))

    def delete_entries(self, run_ids: list[str]) -> None:
        if not run_ids or not self.path.exists():
            return
        with self._use() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("DELETE FROM entries WHERE run_id=?", [(r,) for r in run_ids])
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def entries(self) -> Iterator[tuple[str, bytes | None]]:
        """Every kept entry: (run id, its JSON bytes, or None when they cannot be decoded)."""
        if not self.path.exists():
            return
        with self._use() as db:
            rows = db.execute("SELECT run_id, data FROM entries ORDER BY run_id").fetchall()
        for run_id, data in rows:
            try:
                if data[:1] in (ENTRY_SIGNED, ENTRY_PLAIN):
                    text = entry_json(data)
                    yield str(run_id), text if isinstance(text, bytes) else text.encode()
                else:  # an older sharklib's: zlib over :func:`decode_entry`'s forms
                    yield str(run_id), decode_entry(zlib.decompress(data))
            except (zlib.error, TypeError, ValueError, KeyError):
                yield str(run_id), None

    # -- repair ----------------------------------------------------------------------------
    def sound(self) -> bool:
        """True when the pack is absent or SQLite finds it intact."""
        if not self.path.exists():
            return True
        try:
            db = sqlite3.connect(self.path, timeout=60)
            try:
                row = db.execute("PRAGMA quick_check").fetchone()
                return row is not None and row[0] == "ok"
            finally:
                db.close()
        except sqlite3.DatabaseError:
            return False

    def move_aside(self, stamp: str) -> str:
        """Move a damaged pack (and its ``-wal``/``-shm``) aside, never deleting it."""
        self.close()
        aside = f"{self.path}.damaged-{stamp}"
        for suffix in ("", "-wal", "-shm"):
            src = f"{self.path}{suffix}"
            if os.path.exists(src) and not os.path.islink(src):
                os.replace(src, f"{aside}{suffix}")
        return aside


# -- kept entries an older sharklib wrote --------------------------------------------------------
# zlib over b"D" (the entry's JSON without its attestation's payload, a newline, the payload's
# bytes) or b"J" (the entry's JSON); what is written now is :func:`compact.pack_entry`'s.


def decode_entry(data: bytes) -> bytes:
    """The entry's JSON, as :meth:`~sharklib.cache.entry.IndexEntry.from_json` parses it."""
    if data[:1] == b"J":
        return data[1:]
    if data[:1] != b"D":
        raise ValueError("unknown kept-entry encoding")
    head, _, raw = data[1:].partition(b"\n")  # compact JSON holds no raw newline
    entry = json.loads(head)
    entry["attestation"]["payload"] = base64.b64encode(raw).decode("ascii")
    return json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
