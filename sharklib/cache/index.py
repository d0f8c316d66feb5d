"""The run index: which runs were recorded under which key, and the objects they left.

One SQLite database in WAL mode, shared by every process that uses the cache:
readers never block the one writer, each record is one transaction, and a
process killed mid-write leaves the previous state. Objects are always stored
*before* the run that names them is indexed, so an entry never points to an
object that was not completely written (see :mod:`sharklib.cache.cas`).

An :class:`IndexEntry` is also the unit exchanged with a remote cache, so it is
parsed as untrusted input: :meth:`IndexEntry.from_dict` refuses anything of
the wrong shape with a one-line :class:`~sharklib.errors.StoreError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sharklib.cache.store import CacheDamaged, check_digest
from sharklib.errors import StoreError
from sharklib.model import Run
from sharklib.model.run import decode_path, encode_path

ENTRY_VERSION = 1
#: ``PRAGMA user_version`` of an index with every table this module uses (2: reuse facts).
SCHEMA_VERSION = 2
#: ``streams``: both streams as one ordered (descriptor, bytes) log, replayed as the run wrote it
ROLES = ("output", "stdout", "stderr", "streams")

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
    sigs TEXT
);
CREATE INDEX IF NOT EXISTS run_facts_by_key ON run_facts(key, created DESC);
CREATE TABLE IF NOT EXISTS facts_missing (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
    key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS facts_missing_by_key ON facts_missing(key)
"""

# Any successful run indexed without its facts row (by an older sharklib sharing this cache)
# is marked, so a lookup notices and derives the facts from the entry instead of missing it.
_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS runs_need_facts AFTER INSERT ON runs WHEN NEW.exit_status = 0
BEGIN INSERT OR IGNORE INTO facts_missing (run_id, key) VALUES (NEW.run_id, NEW.key); END
"""

FACTS_VERSION = 1
#: parsed entries kept per index, counted in inputs + modules + objects
_PARSED_MAX = 1_000_000
_LOOKUP_BATCH = 900  # below SQLite's default limit of 999 bound parameters on old builds


class StoredObject:
    """An object a run left: an output file (``path`` relative to the root) or a stream.

    A plain class, not a dataclass: generating a dataclass's methods costs ~2 ms of
    start-up in every process that opens the index, a captured script's reuse check
    included. Treated as immutable (compared and hashed by value).
    """

    __slots__ = ("mode", "path", "role", "sha256", "size")

    def __init__(self, role: str, path: str, sha256: str, size: int, mode: int = 0o644) -> None:
        self.role, self.path, self.sha256, self.size, self.mode = role, path, sha256, size, mode

    def _fields(self) -> tuple[str, str, str, int, int]:
        return (self.role, self.path, self.sha256, self.size, self.mode)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredObject) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (f"StoredObject(role={self.role!r}, path={self.path!r}, sha256={self.sha256!r}, "
                f"size={self.size!r}, mode={self.mode!r})")

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "path": encode_path(self.path), "sha256": self.sha256,
                "size": self.size, "mode": self.mode}


class IndexEntry:
    """One recorded run as the cache keeps it.

    ``inputs`` are ``(path, sha256)`` pairs with paths relative to the project
    root when they were inside it (so a colleague's checkout elsewhere matches),
    absolute otherwise; ``modules`` likewise for local code modules.

    Parsed from storage, the full :class:`~sharklib.model.Run` is built only when
    asked for (:attr:`run`): a no-op re-check needs just the few facts kept
    as attributes (id, start, end, exit status), which keeps a check cheap even
    for runs that read 100,000 files.
    """

    __slots__ = ("_run", "_run_dict", "_where", "attestation", "ended", "exit_status", "inputs",
                 "key", "key_parts", "modules", "objects", "root", "run_id", "started")

    def __init__(self, key: str, run: Run | None, root: str, objects: list[StoredObject],
                 inputs: list[tuple[str, str]] | None = None,
                 modules: list[tuple[str, str]] | None = None, *,
                 run_dict: dict[str, Any] | None = None, where: str | None = None,
                 key_parts: dict[str, Any] | None = None,
                 attestation: dict[str, Any] | None = None) -> None:
        self.key = key
        #: what the key was digested from (``RunKeyParts.to_dict``), so ``--explain`` can
        #: name the first difference when a key is not found; None in older entries
        self.key_parts = key_parts
        #: the DSSE envelope, signed at record time, over :meth:`signed_part`: the entry's proof.
        #: Everything else here is a hint for finding the run (it may come from a shared remote
        #: anyone with write access can edit); reuse acts only on what this envelope signs.
        self.attestation = attestation
        self.root = root
        self.objects = objects
        self.inputs = inputs or []
        self.modules = modules or []
        self._run = run
        self._run_dict = run_dict
        self._where = where
        if run is not None:
            self.run_id, self.started, self.ended = run.run_id, run.started, run.ended
            self.exit_status = run.exit_status
        else:
            assert run_dict is not None
            self.run_id = str(run_dict["run_id"])
            self.started = float(run_dict["started"])
            ended = run_dict.get("ended")
            self.ended = None if ended is None else float(ended)
            status = run_dict.get("exit_status")
            self.exit_status = None if status is None else int(status)

    @property
    def run(self) -> Run:
        if self._run is None:
            try:
                self._run = Run.from_dict(self._run_dict or {})
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise StoreError(f"malformed run in cache index entry: {exc}",
                                 self._where) from None
        return self._run

    def run_data(self) -> dict[str, Any]:
        """The run as plain JSON data (no parsing cost when it came from storage)."""
        return self._run_dict if self._run_dict is not None else self.run.to_dict()

    @property
    def duration(self) -> float:
        return 0.0 if self.ended is None else max(0.0, self.ended - self.started)

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)

    def outputs(self) -> list[StoredObject]:
        return [o for o in self.objects if o.role == "output"]

    def stream(self, role: str) -> StoredObject | None:
        return next((o for o in self.objects if o.role == role), None)

    @property
    def where(self) -> str | None:
        """Where the entry was read from (a remote entry's URL), if known."""
        return self._where

    def signed_part(self) -> dict[str, Any]:
        """The entry without its attestation: what the attestation signs."""
        return {
            "version": ENTRY_VERSION, "key": self.key, "root": encode_path(self.root),
            "run": self.run_data(), "objects": [o.to_dict() for o in self.objects],
            "inputs": [[encode_path(p), s] for p, s in self.inputs],
            "modules": [[encode_path(p), s] for p, s in self.modules],
            **({"key_parts": self.key_parts} if self.key_parts is not None else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        d = self.signed_part()
        if self.attestation is not None:
            d["attestation"] = self.attestation
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Any, where: str | None = None) -> IndexEntry:
        """Parse an untrusted entry; any deviation is a one-line StoreError naming ``where``.

        Object digests are checked strictly (they become paths and URLs); input
        digests are only ever compared, so they are only checked to be strings.
        """
        try:
            if not isinstance(d, dict) or d.get("version") != ENTRY_VERSION:
                raise ValueError("unknown entry version")
            key = d["key"]
            if not (isinstance(key, str) and key.startswith("sha256:")):
                raise ValueError("bad run key")
            check_digest(key[7:], where)
            run_dict = d["run"]
            if not isinstance(run_dict, dict):
                raise ValueError("run is not an object")
            if run_dict.get("run_key") not in (None, key):
                raise ValueError("run key does not match the entry")
            objects = []
            for o in d["objects"]:
                role = o["role"]
                if role not in ROLES:
                    raise ValueError(f"unknown object role {role!r}")
                mode = int(o.get("mode", 0o644)) & 0o777
                objects.append(StoredObject(role, decode_path(str(o["path"])),
                                            check_digest(o["sha256"], where), int(o["size"]),
                                            mode))
            pairs: dict[str, list[tuple[str, str]]] = {}
            for name in ("inputs", "modules"):
                items = d.get(name, [])
                if not isinstance(items, list):
                    raise ValueError(f"{name} is not a list")
                pairs[name] = [(decode_path(p), s) if isinstance(p, str) and isinstance(s, str)
                               else _bad_pair(name) for p, s in items]
            attestation = d.get("attestation")
            if attestation is not None and not isinstance(attestation, dict):
                raise ValueError("attestation is not an object")
            return cls(key=key, run=None, root=decode_path(str(d["root"])), objects=objects,
                       inputs=pairs["inputs"], modules=pairs["modules"], run_dict=run_dict,
                       where=where, attestation=attestation,
                       key_parts=d["key_parts"] if isinstance(d.get("key_parts"), dict) else None)
        except StoreError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"malformed cache index entry: {exc}", where) from None

    @classmethod
    def from_json(cls, text: str | bytes, where: str | None = None) -> IndexEntry:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise StoreError(f"cache index entry is not JSON: {exc}", where) from None
        return cls.from_dict(data, where)


def _bad_pair(name: str) -> tuple[str, str]:
    raise ValueError(f"malformed {name} entry")


# -- reuse facts ---------------------------------------------------------------------------
# A facts row is NUL-separated text (NUL is the one character no path can hold):
#   version, #inputs, #modules, (path, sha256) per input then module, output paths...,
#   distributions (JSON), downloads (JSON)
# Splitting it is several times cheaper than decoding JSON, which is what a no-op
# re-check of 10,000 stages spends its time on otherwise.
_SEP = "\0"


def facts_text(data: dict[str, Any]) -> str:
    """The compact reuse facts of an entry (as :meth:`IndexEntry.to_dict` gives it).

    Just what deciding reuse needs — input and module paths with digests, output
    paths, imported distributions, downloads — so a no-op re-check of a whole
    pipeline splits a few hundred bytes per run instead of decoding the full record.
    """
    run = data["run"]
    dists = (run.get("environment") or {}).get("distributions") or {}
    fields = [str(FACTS_VERSION), str(len(data["inputs"])), str(len(data["modules"]))]
    for p, sha in (*data["inputs"], *data["modules"]):
        fields += (p, sha)
    fields += [o["path"] for o in data["objects"] if o["role"] == "output"]
    fields.append(json.dumps(dists, sort_keys=True, separators=(",", ":")))
    fields.append(json.dumps(run.get("downloads") or [], sort_keys=True, separators=(",", ":")))
    if any(_SEP in f for f in fields):
        raise StoreError("NUL byte in a cache index entry", None)
    return _SEP.join(fields)


def sig_text(st: os.stat_result) -> str:
    """A stat signature as kept in the facts' ``sigs`` (see :class:`RunFacts`)."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


class RunFacts:
    """What deciding reuse of one successful indexed run needs, decoded from its facts row.

    ``checked`` lists ``(path, sha256)`` of every input then module (paths relative
    to the project root when they were inside it). ``sigs``, aligned with it,
    holds the stat signature (:func:`sig_text`) under which each file was last
    *verified* to have its recorded digest, or ``""``: a file still showing that
    signature needs no digest lookup at all. Signatures are only stored outside
    the stat cache's racy window (see :mod:`sharklib.hashing.statcache`), so they
    prove exactly as much as a stat cache hit does.
    """

    __slots__ = ("_dists", "_downloads", "checked", "duration", "inputs", "key", "outputs",
                 "plain", "relative", "run_id", "sigs", "started")

    def __init__(self, run_id: str, key: str, started: float, duration: float,
                 facts: str, sigs: str | None, where: str) -> None:
        try:
            fields = facts.split(_SEP)
            if fields[0] != "1":
                raise ValueError(f"unknown facts version {fields[0][:20]!r}")
            n_in, n_mod = int(fields[1]), int(fields[2])
            end = 3 + 2 * (n_in + n_mod)
            if n_in < 0 or n_mod < 0 or len(fields) < end + 2:
                raise ValueError("truncated facts")
            checked = [(fields[3], fields[4])] if end == 5 else \
                list(zip(fields[3:end:2], fields[4:end:2], strict=True))
            outputs = fields[end:-2]
            self._dists, self._downloads = fields[-2], fields[-1]
            if "b64:" in facts:
                checked = [(decode_path(p), s) for p, s in checked]
                outputs = [decode_path(p) for p in outputs]
        except (ValueError, TypeError, AttributeError, IndexError) as exc:
            raise StoreError(f"malformed reuse facts in cache index: {exc}",
                             f"{where} (run {run_id})") from None
        self.run_id = run_id
        self.key = key
        self.started = started
        self.duration = duration
        #: no imported distributions and no downloads: nothing but files to check
        self.plain = self._dists == "{}" and self._downloads == "[]"
        #: every path is relative to the project root (an absolute one follows a NUL;
        #: an encoded one may be either)
        self.relative = "\0/" not in facts and "b64:" not in facts
        self.checked = checked
        self.inputs = checked[:n_in] if n_mod else checked
        self.outputs = outputs
        parsed = sigs.split(_SEP) if sigs else None
        # a stale or damaged hint is only a lost shortcut
        self.sigs = parsed if parsed is not None and len(parsed) == len(checked) else None

    @property
    def modules(self) -> list[tuple[str, str]]:
        return self.checked[len(self.inputs):]

    @property
    def distributions(self) -> dict[str, Any]:
        """Imported distributions and their versions (decoded on use; usually empty)."""
        return self._json(self._dists, dict)  # type: ignore[no-any-return]

    @property
    def downloads(self) -> list[Any]:
        """The recorded downloads, as in the run record (decoded on use; usually empty)."""
        return self._json(self._downloads, list)  # type: ignore[no-any-return]

    def _json(self, text: str, kind: type) -> Any:
        if text in ("{}", "[]"):
            return kind()
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, kind):
            raise StoreError("malformed reuse facts in cache index", f"run {self.run_id}")
        return value


def sigs_text(sigs: list[str]) -> str:
    return _SEP.join(sigs)


class RunRow:
    """Bookkeeping for one indexed run (what ``sharklib cache ls`` shows); a plain class
    for the reason given at :class:`StoredObject`."""

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


REPAIR_HINT = ("the index is damaged: `sharklib cache repair` rebuilds it from the runs "
               "stored beside it")


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """A damaged file, as opposed to a busy or read-only one."""
    text = str(exc).lower()
    return not isinstance(exc, sqlite3.OperationalError) or "malformed" in text \
        or "not a database" in text or "corrupt" in text


def unreadable(exc: sqlite3.DatabaseError, path: str | os.PathLike[str]) -> StoreError:
    """One line for an index SQLite cannot use, with the way out when the file is damaged."""
    if _damaged(exc):
        return CacheDamaged(f"run index unreadable: {exc} ({REPAIR_HINT}; runs are neither "
                            f"reused nor cached until then)", str(path))
    return StoreError(f"run index unreadable: {exc}", str(path))


class RunIndex:
    """The SQLite run index (WAL). One instance per process; cheap to open."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._parsed: dict[str, IndexEntry] = {}  # run id -> its entry, as parsed before
        self._parsed_weight = 0
        try:
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
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
                if _damaged(exc):
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
    def add(self, entry: IndexEntry) -> bool:
        """Index a run whose objects are already stored; False if it was already there."""
        now = time.time()
        data = entry.to_dict()
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        facts = facts_text(data) if entry.exit_status == 0 else None
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO runs (run_id, key, created, duration, exit_status, entry, "
                "bytes, indexed, last_used) VALUES (?,?,?,?,?,?,?,?,?)",
                (entry.run_id, entry.key, entry.started, entry.duration, entry.exit_status,
                 text, entry.size, now, now))
            if cur.rowcount == 0:
                return False
            db.executemany(
                "INSERT OR REPLACE INTO run_objects VALUES (?,?,?,?,?)",
                [(entry.run_id, o.role, encode_path(o.path), o.sha256, o.size)
                 for o in entry.objects])
            if facts is not None:
                self._put_facts(db, entry.run_id, entry.key, entry.started, entry.duration, facts)
            from sharklib.cache import ledger  # the queryable ledger (log/uses/impact/report)

            ledger.on_add(db, data)
        return True

    @staticmethod
    def _put_facts(db: sqlite3.Connection, run_id: str, key: str, created: float,
                   duration: float, facts: str) -> None:
        db.execute("INSERT OR REPLACE INTO run_facts (run_id, key, created, duration, facts) "
                   "VALUES (?,?,?,?,?)", (run_id, key, created, duration, facts))
        db.execute("DELETE FROM facts_missing WHERE run_id=?", (run_id,))

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
        from sharklib.cache import ledger  # the queryable ledger (log/uses/impact/report)

        now = time.time()
        with self._lock:  # one statement: its own (autocommit) transaction
            self._db.execute("UPDATE runs SET last_used=?, uses=uses+1, saved=saved+? "
                             "WHERE run_id=?", (now, max(0.0, saved), run_id))
            ledger.on_reuse(self._db, run_id, now, saved)

    def note_run(self, data: dict[str, Any]) -> None:
        """Ledger rows only, for a run that is not cached (it failed); see :mod:`.ledger`."""
        from sharklib.cache import ledger

        with self._tx() as db:
            ledger.on_add(db, data)

    def mark_used_many(self, used: Iterable[tuple[str, float]]) -> None:
        """:meth:`mark_used` for many runs in one transaction (a pipeline's reused stages)."""
        from sharklib.cache import ledger

        now = time.time()
        rows = [(now, max(0.0, saved), rid) for rid, saved in used]
        if not rows:
            return
        with self._tx() as db:
            db.executemany("UPDATE runs SET last_used=?, uses=uses+1, saved=saved+? "
                           "WHERE run_id=?", rows)
            ledger.on_reuses(db, [(rid, saved) for _, saved, rid in rows], now)

    def remove(self, run_ids: Iterable[str]) -> int:
        ids = list(run_ids)
        with self._tx() as db:
            n = 0
            for rid in ids:
                self._parsed.pop(rid, None)
                db.execute("DELETE FROM run_objects WHERE run_id=?", (rid,))
                db.execute("DELETE FROM run_facts WHERE run_id=?", (rid,))
                db.execute("DELETE FROM facts_missing WHERE run_id=?", (rid,))
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
        unsaved = self._backfill(part)
        found: dict[str, list[RunFacts]] = {}
        bad: list[str] = []
        where = str(self.path)
        rows: list[tuple[Any, ...]] = [(*u, None) for u in unsaved]
        marks = ",".join("?" * len(part))
        rows += self._query("SELECT run_id, key, created, duration, facts, sigs FROM run_facts "
                            f"WHERE key IN ({marks})", part)
        several = False
        for rid, key, created, duration, facts, sigs in rows:
            try:
                f = RunFacts(rid, key, created, duration, facts, sigs, where)
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
        """The newest successful entries whose stored JSON contains ``text`` (a hint search).

        For ``--explain``/plans naming how a missed key differs from the nearest
        recorded run: one SQL scan, no JSON decoded but the matches.
        """
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._query("SELECT run_id, entry FROM runs WHERE exit_status=0 AND entry LIKE ? "
                           "ESCAPE '\\' ORDER BY created DESC LIMIT ?",
                           (f"%{escaped}%", limit))
        out = []
        for rid, body in rows:
            try:
                out.append(IndexEntry.from_json(body, f"{self.path} (run {rid})"))
            except StoreError:
                continue
        return out

    def rows(self) -> list[RunRow]:
        out = []
        for (rid, key, created, duration, status, size, last_used, uses, saved,
             entry) in self._query("SELECT run_id, key, created, duration, exit_status, bytes, "
                                   "last_used, uses, saved, entry FROM runs ORDER BY created"):
            try:
                argv = [decode_path(a) for a in json.loads(entry)["run"]["argv"]]
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
