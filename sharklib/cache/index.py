"""The run index: which runs were recorded under which key, and the objects they left.

One SQLite database in WAL mode, shared by every process that uses the cache:
readers never block the one writer, each record is one transaction, and a
process killed mid-write leaves the previous state. Objects are always stored
*before* the run that names them is indexed, so an entry never points to an
object that was not completely written (see :mod:`sharklib.cache.cas`).

What one row holds is defined elsewhere: the entry format in
:mod:`sharklib.cache.entry`, the compact reuse facts kept beside it in
:mod:`sharklib.cache.facts`.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sharklib.cache.compact import entry_value, inflated_entry, pack_entry
from sharklib.cache.entry import IndexEntry
from sharklib.cache.store import CacheDamaged
from sharklib.config import make_dirs
from sharklib.errors import StoreError
from sharklib.model.run import decode_path, encode_path
from sharklib.sqlitedb import connect, is_damaged

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sharklib.cache.facts import RunFacts

#: ``PRAGMA user_version`` of an index with every table this module uses (2: reuse facts;
#: 3: ``run_facts.proved``, the key whose signature on the entry was verified;
#: 4: uses counted in ``run_uses``).
SCHEMA_VERSION = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    created REAL NOT NULL,
    duration REAL NOT NULL,
    exit_status INTEGER,
    entry TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    indexed REAL NOT NULL,
    last_used REAL NOT NULL,
    uses INTEGER NOT NULL DEFAULT 0,
    saved REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_key ON runs(key, created DESC);
CREATE TABLE IF NOT EXISTS run_objects (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (run_id, role, path)
);
CREATE INDEX IF NOT EXISTS run_objects_by_sha ON run_objects(sha256);
CREATE TABLE IF NOT EXISTS run_facts (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    created REAL NOT NULL,
    duration REAL NOT NULL,
    facts TEXT NOT NULL,
    sigs TEXT,
    proved TEXT
);
CREATE INDEX IF NOT EXISTS run_facts_by_key ON run_facts(key, created DESC);
CREATE TABLE IF NOT EXISTS facts_missing (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
    key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS facts_missing_by_key ON facts_missing(key);
CREATE TABLE IF NOT EXISTS run_uses (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
    last_used REAL NOT NULL,
    uses INTEGER NOT NULL,
    saved REAL NOT NULL
)
"""

# A reuse is counted in ``run_uses``, added to the totals ``runs`` keeps from older sharklibs:
# a ``runs`` row holds the whole entry (several KiB), and updating 10,000 of them for a
# pipeline's no-op re-run rewrote ~40 MB of pages (a third of the re-run); a ``run_uses`` row
# is 100 bytes.
_MARK_USED = ("INSERT INTO run_uses (run_id, last_used, uses, saved) "
              "SELECT ?1, ?2, 1, ?3 WHERE EXISTS (SELECT 1 FROM runs WHERE run_id=?1) "
              "ON CONFLICT(run_id) DO UPDATE SET last_used=excluded.last_used, "
              "uses=uses+1, saved=saved+excluded.saved")

# Any successful run indexed without its facts row (by an older sharklib sharing this cache)
# is marked, so a lookup notices and derives the facts from the entry instead of missing it.
_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS runs_need_facts AFTER INSERT ON runs WHEN NEW.exit_status = 0
BEGIN INSERT OR IGNORE INTO facts_missing (run_id, key) VALUES (NEW.run_id, NEW.key); END
"""

#: parsed entries kept per index, counted in inputs + modules + objects
_PARSED_MAX = 1_000_000
_LOOKUP_BATCH = 900
#: compact entries a hint search inflates at most, newest first (~20 us each)
_COMPACT_SCAN = 2000  # below SQLite's default limit of 999 bound parameters on old builds


_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _holds(body: bytes, needles: set[bytes]) -> bool:
    """Whether a compact entry's inflated bytes hold one of ``needles`` (True when damaged:
    the caller's parse then skips it)."""
    try:
        data = inflated_entry(body)
    except ValueError:
        return True
    return any(n in data for n in needles)


class RunRow:
    """Bookkeeping for one indexed run (what ``sharklib cache ls`` shows); a plain class
    for the reason given at :class:`~sharklib.cache.entry.StoredObject`."""

    __slots__ = ("argv", "bytes", "created", "duration", "exit_status", "key", "last_used",
                 "run_id", "saved", "uses")

    def __init__(self, run_id: str, key: str, created: float, duration: float,
                 exit_status: int | None, bytes: int, last_used: float, uses: int,
                 saved: float, argv: list[str]) -> None:
        self.run_id, self.key, self.created, self.duration = run_id, key, created, duration
        self.exit_status, self.bytes, self.last_used = exit_status, bytes, last_used
        self.uses, self.saved, self.argv = uses, saved, argv

    def __repr__(self) -> str:
        return f"RunRow({', '.join(f'{n}={getattr(self, n)!r}' for n in self.__slots__)})"


def forget_memo(directory: str | os.PathLike[str], key: str) -> None:
    """Empty the reuse memo of ``key`` in the cache at ``directory`` (a run of it left the index).

    The memo (:mod:`sharklib.runner.memo`) stands in for an index lookup while the index is
    unchanged; emptied, it is the bare marker it replaced: "this key was recorded, ask the
    index". Best effort: a memo left behind is refused anyway, the index having changed.
    """
    digest = key.split(":", 1)[-1]
    if not digest or "/" in digest or digest.startswith("."):
        return
    path = os.path.join(os.fspath(directory), "keys", digest[:2], digest)
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC))


REPAIR_HINT = ("the index is damaged: `sharklib cache repair` rebuilds it from the runs "
               "stored beside it")


def unreadable(exc: sqlite3.DatabaseError, path: str | os.PathLike[str]) -> StoreError:
    """One line for an index SQLite cannot use, with the way out when the file is damaged."""
    if is_damaged(exc):
        return CacheDamaged(f"run index unreadable: {exc} ({REPAIR_HINT}; runs are neither "
                            f"reused nor cached until then)", str(path))
    return StoreError(f"run index unreadable: {exc}", str(path))


class RunIndex:
    """The SQLite run index (WAL). One instance per process; cheap to open."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        make_dirs(self.path.parent)
        self._lock = threading.Lock()
        self._parsed: dict[str, IndexEntry] = {}  # run id -> its entry, as parsed before
        self._parsed_weight = 0
        try:
            self._db = connect(self.path, timeout=60)
            self._db.execute("PRAGMA foreign_keys=ON")
            # an index already at this schema needs no write transaction just to be opened
            if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise unreadable(exc, self.path) from None

    def _migrate(self) -> None:
        """Create what is missing; an index from before reuse facts gets its runs marked.

        Marked runs get their facts derived lazily, the first time their key is
        looked up (:meth:`reuse_facts`), so opening a large old cache stays cheap.
        """
        with self._tx() as db:
            had_facts = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' "
                                   "AND name='run_facts'").fetchone() is not None
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            columns = {row[1] for row in db.execute("PRAGMA table_info(run_facts)")}
            if "proved" not in columns:
                db.execute("ALTER TABLE run_facts ADD COLUMN proved TEXT")
            db.execute(_TRIGGER)
            if not had_facts:
                db.execute("INSERT OR IGNORE INTO facts_missing (run_id, key) "
                           "SELECT run_id, key FROM runs WHERE exit_status=0")
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise unreadable(exc, self.path) from None
            try:
                yield self._db
            except sqlite3.DatabaseError as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if is_damaged(exc):
                    raise unreadable(exc, self.path) from None
                raise
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise unreadable(exc, self.path) from None

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, tuple(args)).fetchall()
            except sqlite3.DatabaseError as exc:
                raise unreadable(exc, self.path) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing ---------------------------------------------------------------------------
    def add(self, entry: IndexEntry, proved: str | None = None,
            data: dict[str, Any] | None = None) -> bool:
        """Index a run whose objects are already stored; False if it was already there.

        ``proved``: the key id whose signature on the entry the caller has just made or
        verified (see :meth:`set_proved`). ``data``: ``entry.to_dict()`` when the caller
        has built it already (it is only read here).
        """
        now = time.time()
        data = entry.to_dict() if data is None else data
        stored = pack_entry(data)  # compact bytes (~0.5 KB for a trivial stage, JSON was 5.6)
        if entry.exit_status == 0:
            # imported here: a process that only checks whether a script may be reused never
            # writes or reads facts (one module less in every captured script's start-up)
            from sharklib.cache.facts import facts_text

            facts: str | None = facts_text(data)
        else:
            facts = None
        self.fold_uses()
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO runs (run_id, key, created, duration, exit_status, entry, "
                "bytes, indexed, last_used) VALUES (?,?,?,?,?,?,?,?,?)",
                (entry.run_id, entry.key, entry.started, entry.duration, entry.exit_status,
                 stored, entry.size, now, now))
            if cur.rowcount == 0:
                return False
            db.executemany(
                "INSERT OR REPLACE INTO run_objects VALUES (?,?,?,?,?)",
                [(entry.run_id, o.role, encode_path(o.path), o.sha256, o.size)
                 for o in entry.objects])
            if facts is not None:
                self._put_facts(db, entry.run_id, entry.key, entry.started, entry.duration, facts,
                                proved)
            from sharklib.cache import ledger  # the queryable ledger (log/uses/impact/report)

            ledger.on_add(db, data)
        return True

    @staticmethod
    def _put_facts(db: sqlite3.Connection, run_id: str, key: str, created: float,
                   duration: float, facts: str, proved: str | None = None) -> None:
        db.execute("INSERT OR REPLACE INTO run_facts (run_id, key, created, duration, facts, "
                   "proved) VALUES (?,?,?,?,?,?)", (run_id, key, created, duration, facts, proved))
        db.execute("DELETE FROM facts_missing WHERE run_id=?", (run_id,))

    def set_proved(self, proved: Iterable[tuple[str, str]]) -> None:
        """Note, per ``(run_id, keyid)``, that the key's signature on the run's entry verified
        and the entry agrees with what it signs; best effort, one transaction.

        Only a shortcut for planning (a plan need not verify the signature of every stage
        again); a reuse always checks the signature itself (:mod:`sharklib.runner.proof`).
        """
        rows = [(keyid, rid) for rid, keyid in proved]
        if not rows:
            return
        try:
            with self._tx() as db:
                db.executemany("UPDATE run_facts SET proved=? WHERE run_id=?", rows)
        except (sqlite3.Error, StoreError):
            pass

    def update_sigs(self, sigs: Iterable[tuple[str, str]]) -> None:
        """Store freshly verified stat signatures (``(run_id, sigs_json)``); best effort.

        They are only a shortcut: failing to store them (a read-only cache, a
        busy database) costs the next re-check a digest lookup, nothing else.
        """
        rows = [(text, rid) for rid, text in sigs]
        if not rows:
            return
        try:
            with self._tx() as db:
                db.executemany("UPDATE run_facts SET sigs=? WHERE run_id=?", rows)
        except sqlite3.Error:
            pass

    def mark_used(self, run_id: str, saved: float) -> None:
        """Count one reuse of ``run_id``: a line in the uses journal, no write to the index.

        A write transaction here cost every reuse four ``fdatasync`` calls (the WAL created,
        synced, checkpointed, removed); :mod:`sharklib.cache.uses` says how the line is
        counted later. Where the journal cannot be written, the use is counted here.
        """
        from sharklib.cache import ledger, uses

        now = time.time()
        user, host = uses.who()
        if uses.append(uses.journal_of(self.path), run_id, now, saved, user, host):
            return
        with self._lock:  # one statement: its own (autocommit) transaction
            self._db.execute(_MARK_USED, (run_id, now, max(0.0, saved)))
            ledger.on_reuse(self._db, run_id, now, saved)

    def fold_uses(self) -> int:
        """Count the reuses waiting in the uses journal (one ``stat`` when there are none)."""
        from sharklib.cache import uses

        journal = uses.journal_of(self.path)
        if not uses.pending(journal):
            return 0
        with self._lock:
            return uses.fold(self._db, journal, _MARK_USED)

    def note_run(self, data: dict[str, Any]) -> None:
        """Ledger rows only, for a run that is not cached (it failed); see :mod:`.ledger`."""
        from sharklib.cache import ledger

        with self._tx() as db:
            ledger.on_add(db, data)

    def mark_used_many(self, used: Iterable[tuple[str, float]]) -> None:
        """:meth:`mark_used` for many runs in one transaction (a pipeline's reused stages)."""
        from sharklib.cache import ledger

        now = time.time()
        rows = [(rid, now, max(0.0, saved)) for rid, saved in used]
        if not rows:
            return
        with self._tx() as db:
            db.executemany(_MARK_USED, rows)
            ledger.on_reuses(db, [(rid, saved) for rid, _, saved in rows], now)

    def remove(self, run_ids: Iterable[str]) -> int:
        ids = list(run_ids)
        with self._tx() as db:
            n = 0
            for rid in ids:
                for (key,) in db.execute("SELECT key FROM runs WHERE run_id=?", (rid,)):
                    forget_memo(self.path.parent, str(key))
                self._parsed.pop(rid, None)
                db.execute("DELETE FROM run_objects WHERE run_id=?", (rid,))
                db.execute("DELETE FROM run_facts WHERE run_id=?", (rid,))
                db.execute("DELETE FROM facts_missing WHERE run_id=?", (rid,))
                db.execute("DELETE FROM run_uses WHERE run_id=?", (rid,))
                n += db.execute("DELETE FROM runs WHERE run_id=?", (rid,)).rowcount
        return n

    # -- reading ---------------------------------------------------------------------------
    def candidates(self, key: str) -> list[IndexEntry]:
        """Successful runs recorded under ``key``, newest first.

        An entry never changes once indexed, so one this process already parsed is
        not fetched and decoded again (a runner re-checking many steps, a notebook).
        """
        ids = self._query("SELECT run_id FROM runs WHERE key=? AND exit_status=0 "
                          "ORDER BY created DESC", (key,))
        parsed = self._parsed
        out = []
        for (rid,) in ids:
            entry = parsed.get(rid)
            if entry is None:
                rows = self._query("SELECT entry FROM runs WHERE run_id=?", (rid,))
                if not rows:  # removed meanwhile
                    continue
                entry = IndexEntry.from_json(rows[0][0], f"{self.path} (run {rid})")
                self._remember(rid, entry)
            out.append(entry)
        return out

    def _remember(self, run_id: str, entry: IndexEntry) -> None:
        weight = 1 + len(entry.inputs) + len(entry.modules) + len(entry.objects)
        if self._parsed_weight + weight > _PARSED_MAX:
            self._parsed.clear()
            self._parsed_weight = 0
        self._parsed[run_id] = entry
        self._parsed_weight += weight

    def candidates_many(self, keys: Iterable[str]) -> dict[str, list[IndexEntry]]:
        """:meth:`candidates` for many keys in a few queries (planning whole pipelines)."""
        wanted = list(keys)
        found: dict[str, list[IndexEntry]] = {}
        for i in range(0, len(wanted), 500):
            part = wanted[i:i + 500]
            marks = ",".join("?" * len(part))
            rows = self._query(f"SELECT run_id, key, entry FROM runs WHERE key IN ({marks}) "
                               "AND exit_status=0 ORDER BY created DESC", part)
            for rid, key, text in rows:
                found.setdefault(key, []).append(
                    IndexEntry.from_json(text, f"{self.path} (run {rid})"))
        return found

    def reuse_facts(self, keys: Iterable[str]) -> dict[str, list[RunFacts]]:
        """The reuse facts of every successful run under ``keys``, newest first, per key.

        See :meth:`iter_reuse_facts`, which hands them over one batch of keys at a time.
        """
        found: dict[str, list[RunFacts]] = {}
        for batch in self.iter_reuse_facts(keys):
            found.update(batch)
        return found

    def iter_reuse_facts(self, keys: Iterable[str]) -> Iterator[dict[str, list[RunFacts]]]:
        """:meth:`reuse_facts` in batches of :data:`_LOOKUP_BATCH` keys, one query each.

        Only the compact ``run_facts`` rows are read; full entries are decoded only
        once for runs indexed without facts (an older index, or an older sharklib
        writing to this one), whose facts are derived from the entry and stored for
        next time. A damaged facts row is derived again from its entry the same way;
        an entry that is itself damaged is refused with a one-line :class:`StoreError`.
        A caller deciding batch by batch keeps only one batch of rows in memory.
        """
        wanted = sorted(set(keys))  # in key order, the lookups walk the index front to back
        for i in range(0, len(wanted), _LOOKUP_BATCH):
            part = wanted[i:i + _LOOKUP_BATCH]
            found, bad = self._facts(part)
            if bad:
                self._rederive(bad)
                found, bad = self._facts(part)
                if bad:
                    raise StoreError("malformed reuse facts in cache index",
                                     f"{self.path} (run {bad[0]})")
            yield found

    def _facts(self, part: list[str]) -> tuple[dict[str, list[RunFacts]], list[str]]:
        from sharklib.cache.facts import RunFacts

        unsaved = self._backfill(part)
        found: dict[str, list[RunFacts]] = {}
        bad: list[str] = []
        where = str(self.path)
        rows: list[tuple[Any, ...]] = [(*u, None, None) for u in unsaved]
        marks = ",".join("?" * len(part))
        rows += self._query("SELECT run_id, key, created, duration, facts, sigs, proved "
                            "FROM run_facts "
                            f"WHERE key IN ({marks})", part)
        several = False
        for rid, key, created, duration, facts, sigs, proved in rows:
            try:
                f = RunFacts(rid, key, created, duration, facts, sigs, where, proved)
            except StoreError:
                bad.append(rid)
                continue
            got = found.get(key)
            if got is None:
                found[key] = [f]
            else:
                got.append(f)
                several = True
        if several:
            for got in found.values():
                if len(got) > 1:
                    got.sort(key=lambda f: f.started, reverse=True)
        return found, bad

    def _rederive(self, run_ids: list[str]) -> None:
        """Drop damaged facts rows and mark their runs, so :meth:`_backfill` derives them anew."""
        try:
            with self._tx() as db:
                for rid in run_ids:
                    db.execute("DELETE FROM run_facts WHERE run_id=?", (rid,))
                    db.execute("INSERT OR IGNORE INTO facts_missing (run_id, key) SELECT run_id, "
                               "key FROM runs WHERE run_id=? AND exit_status=0", (rid,))
        except sqlite3.Error as exc:
            raise StoreError(f"malformed reuse facts in cache index, not repairable ({exc})",
                             f"{self.path} (run {run_ids[0]})") from None

    def _backfill(self, keys: list[str]) -> list[tuple[str, str, float, float, str]]:
        """Derive and store the facts of marked runs under ``keys``; returns those not stored."""
        if not self._query("SELECT 1 FROM facts_missing LIMIT 1"):
            return []
        rows: list[tuple[Any, ...]] = []
        for i in range(0, len(keys), _LOOKUP_BATCH):
            part = keys[i:i + _LOOKUP_BATCH]
            marks = ",".join("?" * len(part))
            rows += self._query("SELECT m.run_id, r.entry, r.created, r.duration FROM facts_missing m "
                                f"JOIN runs r USING (run_id) WHERE m.key IN ({marks})", part)
        from sharklib.cache.facts import facts_text

        made = []
        for rid, text, created, duration in rows:
            entry = IndexEntry.from_json(text, f"{self.path} (run {rid})")  # refuses bad entries
            made.append((rid, entry.key, created, duration, facts_text(entry.to_dict())))
        if not made:
            return []
        try:
            with self._tx() as db:
                for rid, key, created, duration, facts in made:
                    self._put_facts(db, rid, key, created, duration, facts)
        except sqlite3.Error:  # a read-only index: serve the facts from memory this time
            return made
        return []

    def has_run(self, run_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM runs WHERE run_id=?", (run_id,)))

    def entry(self, run_id: str) -> IndexEntry | None:
        rows = self._query("SELECT entry FROM runs WHERE run_id=?", (run_id,))
        return IndexEntry.from_json(rows[0][0], f"{self.path} (run {run_id})") if rows else None

    def entries(self) -> Iterator[IndexEntry]:
        for rid, text in self._query("SELECT run_id, entry FROM runs ORDER BY created"):
            yield IndexEntry.from_json(text, f"{self.path} (run {rid})")

    def entries_containing(self, text: str, limit: int = 20) -> list[IndexEntry]:
        """The newest successful entries whose JSON contains ``text`` (a hint search).

        For ``--explain``/plans naming how a missed key differs from the nearest
        recorded run: one SQL scan of entries kept as JSON text (older sharklibs'), and of
        the newest :data:`_COMPACT_SCAN` compact ones, inflated but not decoded unless they
        match. A signed compact entry keeps its statement as signed (non-ASCII as UTF-8),
        so ``text`` is looked for in both spellings.
        """
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._query("SELECT run_id, entry FROM runs WHERE exit_status=0 AND "
                           "(typeof(entry)='blob' OR entry LIKE ? ESCAPE '\\') "
                           "ORDER BY created DESC LIMIT ?",
                           (f"%{escaped}%", _COMPACT_SCAN + limit))
        needles = {text.encode(), _UNICODE_ESCAPE.sub(
            lambda m: chr(int(m.group(1), 16)), text).encode("utf-8", "surrogatepass")}
        out = []
        for rid, body in rows:
            if isinstance(body, bytes) and not _holds(body, needles):
                continue
            try:
                out.append(IndexEntry.from_json(body, f"{self.path} (run {rid})"))
            except StoreError:
                continue
            if len(out) >= limit:
                break
        return out

    def rows(self) -> list[RunRow]:
        self.fold_uses()
        out = []
        for (rid, key, created, duration, status, size, last_used, uses, saved,
             entry) in self._query(
                "SELECT r.run_id, r.key, r.created, r.duration, r.exit_status, r.bytes, "
                "MAX(r.last_used, COALESCE(u.last_used, 0)), r.uses + COALESCE(u.uses, 0), "
                "r.saved + COALESCE(u.saved, 0), r.entry FROM runs r "
                "LEFT JOIN run_uses u ON u.run_id = r.run_id ORDER BY r.created"):
            try:
                argv = [decode_path(a) for a in entry_value(entry)["run"]["argv"]]
            except (ValueError, KeyError, TypeError):
                argv = ["?"]
            out.append(RunRow(rid, key, created, duration, status, size, last_used, uses,
                              saved, argv))
        return out

    def referenced(self) -> dict[str, int]:
        """Every object some indexed run names, with its size."""
        return {sha: size for sha, size in
                self._query("SELECT sha256, MAX(size) FROM run_objects GROUP BY sha256")}

    def runs_referencing(self, sha256: str) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT run_id FROM run_objects "
                                          "WHERE sha256=?", (sha256,))]

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM runs")[0][0])
