"""A persistent stat cache: unchanged files are never re-hashed.

Keyed by path and validated by (st_dev, st_ino, st_size, st_mtime_ns,
st_ctime_ns): any write, truncation, rename-over or ``chmod`` changes one of
them. ``touch`` changes mtime too, so a touched file is hashed again, and the
*digest* (not the timestamp) decides whether anything changed.

Racy entries: a file modified within the same timestamp tick right after it
was hashed would look unchanged. As git does, an entry recorded less than
:data:`RACY_NS` after the file's mtime is re-hashed on its next use.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from sharklib.hashing.digest import hash_files_stable, listing_digest
from sharklib.model.run import encode_path
from sharklib.sqlitedb import connect, is_damaged

RACY_NS = 2_000_000_000
_BATCH = 500
#: entries remembered in memory per StatCache (then forgotten all at once and relearnt)
MEMO_MAX = 200_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stat (
    path TEXT PRIMARY KEY,
    dev INTEGER, ino INTEGER, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,
    sha256 TEXT NOT NULL, recorded_ns INTEGER NOT NULL
)
"""


def _sig(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StatCache:
    """Digest lookups that cost one ``stat`` when the file is unchanged.

    Safe to share between threads; several processes may use the same
    database (SQLite WAL, short transactions). If the database cannot be
    opened (read-only home, corrupt file) the cache degrades to hashing.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            from sharklib.config import cache_dir

            path = cache_dir() / "statcache.sqlite"
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._opened = False
        # path -> (signature, digest) of entries this process already proved: a re-check in
        # the same process (a pipeline's runner, a notebook) then costs no query at all. An
        # entry is only ever answered for the same signature, as the database would answer.
        self._memo: dict[str, tuple[tuple[int, int, int, int, int], str]] = {}
        self.hashed_bytes = 0
        self.hashed_files = 0
        #: files left without a digest because they changed each time they were read
        self.unstable: list[str] = []

    def _conn(self) -> sqlite3.Connection | None:
        if self._opened:
            return self._db
        self._opened = True
        try:
            from sharklib.config import make_dirs

            make_dirs(self.path.parent)
            db = connect(self.path, timeout=30, schema=[_SCHEMA])
            self._db = db
        except sqlite3.Error as exc:
            # busy past the timeout or unwritable: hash this time, keep the file for next time
            if isinstance(exc, sqlite3.DatabaseError) and is_damaged(exc):
                with contextlib.suppress(OSError):
                    if self.path.exists():
                        os.replace(self.path, self.path.with_suffix(".corrupt"))
            self._db = None
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
            self._db = None
            self._opened = False

    def _lookup_many(self, stats: dict[str, os.stat_result]) -> dict[str, str]:
        """Known digests for the files whose stat signature is unchanged (batched queries)."""
        found: dict[str, str] = {}
        memo = self._memo
        if memo:
            rest: dict[str, os.stat_result] = {}
            for p, st in stats.items():
                m = memo.get(p)
                if m is not None and m[0] == _sig(st):
                    found[p] = m[1]
                else:
                    rest[p] = st
            stats = rest
        db = self._conn()
        if db is None or not stats:
            return found
        if len(memo) > MEMO_MAX:
            memo.clear()
        keys = {encode_path(p): p for p in stats}
        encoded = list(keys)
        with self._lock:
            try:
                for i in range(0, len(encoded), _BATCH):
                    part = encoded[i:i + _BATCH]
                    marks = ",".join("?" * len(part))
                    for row in db.execute(
                            "SELECT path, dev, ino, size, mtime_ns, ctime_ns, sha256, recorded_ns "
                            f"FROM stat WHERE path IN ({marks})", part):
                        path = keys[row[0]]
                        st = stats[path]
                        sig = _sig(st)
                        if tuple(row[1:6]) == sig and row[7] - st.st_mtime_ns >= RACY_NS:
                            found[path] = str(row[6])
                            memo[path] = (sig, str(row[6]))
            except sqlite3.Error:
                return found
        return found

    def _store(self, entries: Iterable[tuple[str, os.stat_result, str]]) -> None:
        db = self._conn()
        if db is None:
            return
        now = time.time_ns()
        entries = list(entries)
        rows = [(encode_path(p), *_sig(st), digest, now) for p, st, digest in entries]
        if not rows:
            return
        for p, st, digest in entries:  # as the database would answer: only once not racy
            if now - st.st_mtime_ns >= RACY_NS:
                self._memo[p] = (_sig(st), digest)
        with self._lock:
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("INSERT OR REPLACE INTO stat VALUES (?,?,?,?,?,?,?,?)", rows)
                db.execute("COMMIT")
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")

    def digests(self, paths: Iterable[str]) -> dict[str, tuple[str, int]]:
        """Digest and size of each readable regular file; misses are hashed in parallel.

        A file that changed while it was read (and again on each retry) is left out and
        named in :attr:`unstable`.
        """
        return {p: (digest, size) for p, (digest, size, _) in self._resolve(paths).items()}

    def verified(self, paths: Iterable[str]) -> dict[str, tuple[str, int, os.stat_result | None]]:
        """Like :meth:`digests`, plus the stat under which each digest is proved, if any.

        The stat is given only when it may stand in for the digest later on — the
        file did not change while it was hashed, and both its mtime and its ctime
        lie outside the racy window (stricter than this cache's own mtime rule:
        ``os.utime`` can set an old mtime right after a write, never an old ctime)
        — so a caller may keep it and treat the same (dev, ino, size, mtime_ns,
        ctime_ns) as "still this digest" without asking again. Directory listings
        get none.
        """
        got = self._resolve(paths)
        now = time.time_ns()
        return {p: (d, size, st if st is not None
                    and now - max(st.st_mtime_ns, st.st_ctime_ns) >= RACY_NS else None)
                for p, (d, size, st) in got.items()}

    def _resolve(self, paths: Iterable[str]) -> dict[str, tuple[str, int, os.stat_result | None]]:
        result: dict[str, tuple[str, int, os.stat_result | None]] = {}
        stats: dict[str, os.stat_result] = {}
        for p in dict.fromkeys(paths):
            if p.endswith("/"):  # a directory listing: cheap to recompute, never cached
                with contextlib.suppress(OSError):
                    result[p] = (*listing_digest(p), None)
                continue
            try:
                st = os.stat(p)
            except OSError:
                continue
            if _is_regular(st):
                stats[p] = st
        known = self._lookup_many(stats)
        misses: dict[str, os.stat_result] = {}
        for p, st in stats.items():
            digest = known.get(p)
            if digest is not None:
                result[p] = (digest, st.st_size, st)
            else:
                misses[p] = st
        if misses:
            # each miss is proved unchanged while it was read (fstat after == stat before);
            # one that kept changing gets no digest at all, never one of a state in between
            hashed, unstable = hash_files_stable(misses)
            self.unstable.extend(unstable)
            fresh: list[tuple[str, os.stat_result, str]] = []
            for p, (digest, size, after) in hashed.items():
                self.hashed_bytes += size
                self.hashed_files += 1
                fresh.append((p, after, digest))
                result[p] = (digest, size, after)
            self._store(fresh)
        return result

    def remember(self, path: str, sha256: str) -> None:
        """Record a digest the caller just computed (e.g. while copying the bytes).

        Saves reading a freshly written file a second time. The entry is racy
        (the file is new), so its first later use is hashed once more anyway.
        """
        try:
            st = os.stat(path)
        except OSError:
            return
        if _is_regular(st):
            self._store([(path, st, sha256)])

    def digest(self, path: str) -> tuple[str, int] | None:
        """Digest and size of one file, or None when it is missing or unreadable."""
        return self.digests([path]).get(path)

    def unchanged(self, path: str, sha256: str) -> bool:
        """True when ``path`` still has digest ``sha256`` (a stat when known, else a hash)."""
        got = self.digest(path)
        return got is not None and got[0] == sha256


def _is_regular(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode)
