"""The ledger: what every indexed run read and wrote, and every reuse, as queryable rows.

The run index (:mod:`sharklib.cache.index`) keeps each run as one JSON entry,
which is what reuse needs. Questions across all runs ("who read this
dataset?", "what depends on it?", "what did reuse save?") would have to decode
every entry; the ledger answers them from indexed rows instead:

* ``ledger_runs``: one row per run (when, how long, who, which key claims to
  have signed it, the command, the step it is an instance of, its project);
* ``ledger_reads``: ``(run, kind, path, sha256)`` for every input, local
  module, script and download (kind ``input``/``module``/``script``/
  ``download``; a download's path is its URL);
* ``ledger_writes``: ``(run, path, sha256)`` for every output (sidecars left out);
* ``ledger_reuses``: one row each time a run was reused (when, wall and CPU
  time saved, by whom).

Paths are as the index keeps them: relative to the run's project root when
they were inside it, absolute otherwise. A step downstream of another is found
by joining a write and a read on ``(path, sha256)``: the same bytes at the same
place in the project, whichever machine ran it.

The tables are additive: created with ``CREATE TABLE IF NOT EXISTS`` beside the
index's own, filled in the transaction that indexes a run (:func:`on_add`) or
marks it used (:func:`on_reuse`), and back-filled lazily from existing entries
the first time a query asks (:func:`catch_up`). A trigger marks every run
indexed by an older sharklib that does not know the ledger, so none is missed.
Ledger rows outlive ``sharklib cache gc``: what was computed and saved stays
true after the objects are gone.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from sharklib.cache.compact import entry_value
from sharklib.cache.uses import who as _who
from sharklib.model.run import decode_path, encode_path
from sharklib.sqlitedb import connect

SIDECAR_SUFFIX = ".intoto.jsonl"
_BATCH = 900

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_runs (
    run_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    duration REAL NOT NULL,
    cpu REAL,
    exit_status INTEGER,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    signers TEXT NOT NULL,
    sidecar TEXT,
    command TEXT NOT NULL,
    step TEXT NOT NULL,
    root TEXT NOT NULL,
    project TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_runs_by_created ON ledger_runs(created);
CREATE INDEX IF NOT EXISTS ledger_runs_by_step ON ledger_runs(step, created);
CREATE INDEX IF NOT EXISTS ledger_runs_by_root ON ledger_runs(root);
CREATE TABLE IF NOT EXISTS ledger_reads (
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_reads_by_path ON ledger_reads(path, sha256);
CREATE INDEX IF NOT EXISTS ledger_reads_by_run ON ledger_reads(run_id);
CREATE TABLE IF NOT EXISTS ledger_writes (
    run_id TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_writes_by_path ON ledger_writes(path, sha256);
CREATE INDEX IF NOT EXISTS ledger_writes_by_run ON ledger_writes(run_id);
CREATE TABLE IF NOT EXISTS ledger_reuses (
    run_id TEXT NOT NULL,
    at REAL NOT NULL,
    saved_wall REAL NOT NULL,
    saved_cpu REAL,
    user TEXT NOT NULL,
    host TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_reuses_by_at ON ledger_reuses(at);
CREATE INDEX IF NOT EXISTS ledger_reuses_by_run ON ledger_reuses(run_id);
CREATE TABLE IF NOT EXISTS ledger_missing (run_id TEXT PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS runs_need_ledger AFTER INSERT ON runs
BEGIN INSERT OR IGNORE INTO ledger_missing (run_id) VALUES (NEW.run_id); END
"""


def _statements() -> Iterator[str]:
    # the trigger body holds a ';': split on the blank-line-free statement ends instead
    head, _, trigger = SCHEMA.partition("CREATE TRIGGER")
    for stmt in head.split(";"):
        if stmt.strip():
            yield stmt
    yield "CREATE TRIGGER" + trigger


def ensure(db: sqlite3.Connection) -> bool:
    """Create the ledger's tables if missing (inside the caller's transaction).

    Returns True when they were just created: every run already indexed is then
    marked for back-filling. One ``sqlite_master`` lookup when they exist.
    """
    if db.execute("SELECT 1 FROM sqlite_master WHERE type='trigger' "
                  "AND name='runs_need_ledger'").fetchone() is not None:
        return False
    for stmt in _statements():
        db.execute(stmt)
    db.execute("INSERT OR IGNORE INTO ledger_missing (run_id) "
               "SELECT run_id FROM runs WHERE run_id NOT IN (SELECT run_id FROM ledger_runs)")
    return True


# -- what a run contributes ----------------------------------------------------------------
def _rel(path: str, root: str) -> str:
    if root and (path == root or path.startswith(root.rstrip("/") + "/")):
        return os.path.relpath(path, root)
    return path


def command_text(argv: list[str]) -> str:
    """The command as a user would type it: the interpreter shown by its base name."""
    if not argv:
        return ""
    if len(argv) == 3 and os.path.basename(argv[0]) in ("sh", "bash", "dash") and argv[1] == "-c":
        return argv[2]  # a pipeline stage's command line, as the document has it
    first = os.path.basename(argv[0])
    if first.startswith("python"):
        first = "python"
    return " ".join([first, *argv[1:]])


def project_name(root: str, run: dict[str, Any]) -> str:
    """A project's name: its git remote's repository name, else the root's base name."""
    git = (run.get("code") or {}).get("git") or {}
    remote = str(git.get("remote") or "")
    if remote:
        name = remote.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")
        if name:
            return name
    return os.path.basename(root.rstrip("/")) or root


def rows_of(data: dict[str, Any], signers: str = "", cpu: float | None = None) -> tuple[
        tuple[Any, ...], list[tuple[str, str, str, str]], list[tuple[str, str, str]]]:
    """The ledger rows of one index entry (as :meth:`IndexEntry.to_dict` gives it).

    Encoded paths (``b64:``, for names that are not UTF-8) are kept encoded: they are
    compared, never opened.
    """
    run = data["run"]
    rid = str(run["run_id"])
    root = decode_path(str(data.get("root") or ""))
    argv = [decode_path(str(a)) for a in run.get("argv") or []]
    command = command_text(argv)
    cwd = decode_path(str(run.get("cwd") or root))
    step = f"{_rel(cwd, root)}\0{command}"
    started = float(run["started"])
    ended = run.get("ended")
    duration = 0.0 if ended is None else max(0.0, float(ended) - started)
    sidecar = None
    for o in data.get("objects") or []:
        if o.get("role") == "output" and str(o.get("path", "")).endswith(SIDECAR_SUFFIX):
            sidecar = str(o["sha256"])
            break
    run_row = (rid, started, duration, cpu, run.get("exit_status"), str(run.get("user") or ""),
               str(run.get("host") or ""), signers, sidecar, command, step, encode_path(root),
               project_name(root, run))
    reads: list[tuple[str, str, str, str]] = []
    for p, sha in data.get("inputs") or []:
        reads.append((rid, "input", str(p), str(sha)))
    for p, sha in data.get("modules") or []:
        reads.append((rid, "module", str(p), str(sha)))
    script = (run.get("code") or {}).get("script")
    if script and script.get("path") and script["path"] != "<string>":
        reads.append((rid, "script", encode_path(_rel(decode_path(str(script["path"])), root)),
                      str(script.get("sha256") or "")))
    for d in run.get("downloads") or []:
        if d.get("url"):
            reads.append((rid, "download", str(d["url"]), str(d.get("sha256") or "")))
    writes: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for o in run.get("outputs") or []:
        path = _rel(decode_path(str(o.get("path") or "")), root)
        if not path or path.endswith(SIDECAR_SUFFIX) or path in seen:
            continue
        if o.get("stream") and (os.path.isabs(path) or path.startswith(".sharklib/")):
            continue  # a terminal, a log outside the project: not a result
        seen.add(path)
        writes.append((rid, encode_path(path), str(o.get("sha256") or "")))
    return run_row, reads, writes


def put(db: sqlite3.Connection, data: dict[str, Any], signers: str = "",
        cpu: float | None = None) -> None:
    """Write one entry's ledger rows (replacing any earlier ones for the same run)."""
    run_row, reads, writes = rows_of(data, signers, cpu)
    rid = run_row[0]
    cur = db.execute("INSERT OR IGNORE INTO ledger_runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     run_row)
    if cur.rowcount == 0:  # seen before (a back-fill racing a hook): replace its rows
        db.execute("DELETE FROM ledger_reads WHERE run_id=?", (rid,))
        db.execute("DELETE FROM ledger_writes WHERE run_id=?", (rid,))
        db.execute("INSERT OR REPLACE INTO ledger_runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   run_row)
    db.executemany("INSERT INTO ledger_reads VALUES (?,?,?,?)", reads)
    db.executemany("INSERT INTO ledger_writes VALUES (?,?,?)", writes)
    db.execute("DELETE FROM ledger_missing WHERE run_id=?", (rid,))


# -- hooks called by the run index -----------------------------------------------------------
#: run id -> CPU seconds, noted by the process that ran it just before it is indexed
_cpu: dict[str, float] = {}


def note_cpu(run_id: str, seconds: float) -> None:
    """The CPU time of a run about to be indexed by this process (the run model has none)."""
    _cpu[run_id] = max(0.0, float(seconds))


def on_add(db: sqlite3.Connection, data: dict[str, Any]) -> None:
    """Called in the transaction that indexes a run. Never raises: the run counts more.

    A failure rolls back only the ledger's rows (a savepoint); the run stays
    marked in ``ledger_missing`` and is back-filled by the next query.
    """
    try:
        db.execute("SAVEPOINT ledger")
    except sqlite3.Error:
        return
    try:
        ensure(db)
        put(db, data, cpu=_cpu.pop(str(data["run"]["run_id"]), None))
        db.execute("RELEASE ledger")
    except Exception:
        try:
            db.execute("ROLLBACK TO ledger")
            db.execute("RELEASE ledger")
        except sqlite3.Error:
            pass


def on_reuse(db: sqlite3.Connection, run_id: str, at: float, saved: float) -> None:
    """Called when a run is reused: one ``ledger_reuses`` row. Never raises."""
    on_reuses(db, [(run_id, saved)], at)


# a run's uses: the totals ``runs`` keeps from older sharklibs plus its ``run_uses`` row
_USE_TOTALS = ("r.run_id, r.entry, r.uses + COALESCE(u.uses, 0), r.saved + COALESCE(u.saved, 0), "
               "MAX(r.last_used, COALESCE(u.last_used, 0)) FROM runs r "
               "LEFT JOIN run_uses u ON u.run_id = r.run_id")


def on_reuses(db: sqlite3.Connection, used: list[tuple[str, float]], at: float) -> None:
    """One ``ledger_reuses`` row per ``(run_id, saved wall seconds)``, by this user. Never raises.

    The CPU time saved is not stored: it is derived when asked, from the run's
    recorded CPU time scaled by the share of its wall time saved.
    """
    user, host = _who()
    on_reuse_rows(db, [(rid, at, saved, user, host) for rid, saved in used])


def on_reuse_rows(db: sqlite3.Connection, rows: list[tuple[str, float, float, str, str]]) -> None:
    """One ``ledger_reuses`` row per ``(run_id, at, saved wall seconds, user, host)``: reuses
    counted in the uses journal (:mod:`sharklib.cache.uses`), each by whom and when it
    happened. Never raises."""
    if not rows:
        return
    try:
        db.execute("SAVEPOINT ledger")
    except sqlite3.Error:
        return
    try:
        ensure(db)
        db.executemany("INSERT INTO ledger_reuses VALUES (?,?,?,?,?,?)",
                       [(rid, at, max(0.0, saved), None, user, host)
                        for rid, at, saved, user, host in rows])
        db.execute("RELEASE ledger")
    except Exception:
        try:
            db.execute("ROLLBACK TO ledger")
            db.execute("RELEASE ledger")
        except sqlite3.Error:
            pass


def catch_up(db: sqlite3.Connection) -> int:
    """Back-fill the ledger rows of marked runs from their index entries; returns how many.

    Runs whose entry cannot be parsed are skipped (and stay marked): a query
    must not fail on one damaged entry that reuse would refuse anyway.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        ensure(db)
        missing = [r[0] for r in db.execute("SELECT run_id FROM ledger_missing").fetchall()]
        done = 0
        for i in range(0, len(missing), _BATCH):
            part = missing[i:i + _BATCH]
            marks = ",".join("?" * len(part))
            for rid, text, uses, saved, last_used in db.execute(
                    f"SELECT {_USE_TOTALS} WHERE r.run_id IN ({marks})", part).fetchall():
                try:
                    data = entry_value(text)  # JSON text, or the compact bytes kept now
                    if str(data["run"]["run_id"]) != rid:
                        continue
                    put(db, data)
                    done += 1
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
                # reuses from before the ledger: only their count, total and last time are
                # known, so each gets an equal share at the last use, by an unknown user
                n = int(uses or 0)
                if n > 0 and db.execute("SELECT 1 FROM ledger_reuses WHERE run_id=? LIMIT 1",
                                        (rid,)).fetchone() is None:
                    db.executemany("INSERT INTO ledger_reuses VALUES (?,?,?,?,?,?)",
                                   [(rid, float(last_used), float(saved or 0.0) / n, None,
                                     "", "")] * n)
            # marks of runs that are gone (gc'd before they were back-filled)
            db.execute(f"DELETE FROM ledger_missing WHERE run_id IN ({marks}) AND run_id NOT IN "
                       "(SELECT run_id FROM runs)", part)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return done


def batches(items: Iterable[Any], size: int = _BATCH) -> Iterator[list[Any]]:
    """``items`` in lists of at most ``size`` (SQLite's bound-parameter limit on old builds)."""
    part: list[Any] = []
    for item in items:
        part.append(item)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


# -- queries ----------------------------------------------------------------------------------
RUN_COLUMNS = ("run_id", "created", "duration", "cpu", "exit_status", "user", "host", "signers",
               "sidecar", "command", "step", "root", "project")


class PathMatch:
    """One form of a queried path: exact or a prefix (a directory), maybe tied to one root."""

    __slots__ = ("path", "prefix", "root")

    def __init__(self, path: str, prefix: bool = False, root: str | None = None) -> None:
        self.path, self.prefix, self.root = path, prefix, root

    def sql(self, table: str = "r") -> tuple[str, list[str]]:
        """A WHERE clause on ``{table}.path`` that the path index can answer."""
        if not self.prefix:
            return f"{table}.path = ?", [self.path]
        if not self.path:
            # the project root itself: every path recorded relative to it (a URL is no file)
            return (f"(substr({table}.path, 1, 1) != '/' AND instr({table}.path, '://') = 0)",
                    [])
        base = self.path.rstrip("/") + "/"
        # every path starting with base sorts in [base, base with its last '/' bumped to '0')
        return f"({table}.path >= ? AND {table}.path < ?)", [base, base[:-1] + "0"]


class Ledger:
    """Read-side of the ledger over one SQLite database (the run index, or a remote's mirror)."""

    def __init__(self, db: sqlite3.Connection, where: str) -> None:
        self.db = db
        self.where = where

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Ledger:
        """The ledger of the index at ``path``, back-filled first if runs are marked."""

        try:
            db = connect(path, timeout=60, synchronous=None, check_same_thread=True)
            has_runs = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' "
                                  "AND name='runs'").fetchone()
            if not has_runs:
                db.executescript(_EMPTY_RUNS)
            ledger = cls(db, str(path))
            ledger.fold_uses()
            ledger.refresh()
        except sqlite3.DatabaseError as exc:
            raise _unreadable(exc, str(path)) from None
        return ledger

    def fold_uses(self) -> int:
        """Count the reuses waiting in the uses journal beside the index (:mod:`.uses`)."""
        from sharklib.cache import uses

        journal = uses.journal_of(self.where)
        if not uses.pending(journal):
            return 0
        from sharklib.cache.index import _MARK_USED

        return uses.fold(self.db, journal, _MARK_USED)

    def refresh(self) -> int:
        """Back-fill marked runs (one cheap query when there are none)."""
        try:
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE type='trigger' "
                               "AND name='runs_need_ledger'").fetchone() is not None and \
                    self.db.execute("SELECT 1 FROM ledger_missing LIMIT 1").fetchone() is None:
                return 0
        except sqlite3.Error:
            pass
        try:
            return catch_up(self.db)
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc).replace(" ", "") or "read-only" in str(exc):
                return 0  # a read-only index answers from what it has
            raise

    def close(self) -> None:
        self.db.close()

    def q(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query; a database SQLite cannot read is one line naming it and the
        way out (``sharklib cache repair``), never a traceback."""
        try:
            return self.db.execute(sql, tuple(args)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise _unreadable(exc, self.where) from None

    # -- runs --------------------------------------------------------------------------------
    def runs(self, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Ledger rows of ``run_ids`` as dicts (missing ids left out)."""
        out: dict[str, dict[str, Any]] = {}
        cols = ", ".join(RUN_COLUMNS)
        for part in batches(set(run_ids)):
            marks = ",".join("?" * len(part))
            for row in self.q(f"SELECT {cols} FROM ledger_runs WHERE run_id IN ({marks})", part):
                out[row[0]] = dict(zip(RUN_COLUMNS, row, strict=True))
        return out

    def recorded(self, *, since: float | None = None, until: float | None = None,
                 run_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Runs recorded in a time range (or these runs), newest first."""
        cols = ", ".join(RUN_COLUMNS)
        where, args = time_range("created", since, until)
        if run_ids is not None:
            rows = list(self.runs(run_ids).values())
            return sorted((r for r in rows if _in_range(r["created"], since, until)),
                          key=lambda r: r["created"], reverse=True)
        return [dict(zip(RUN_COLUMNS, row, strict=True)) for row in
                self.q(f"SELECT {cols} FROM ledger_runs {where} ORDER BY created DESC", args)]

    def reuses(self, *, since: float | None = None, until: float | None = None,
               run_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Reuse events (newest first): run_id, at, saved_wall, saved_cpu, user, host."""
        names = ("run_id", "at", "saved_wall", "saved_cpu", "user", "host")
        where, args = time_range("at", since, until)
        if run_ids is not None:
            out = []
            for part in batches(set(run_ids)):
                marks = ",".join("?" * len(part))
                cond = f"{where} AND" if where else "WHERE"
                out += self.q(f"SELECT {', '.join(names)} FROM ledger_reuses {cond} "
                              f"run_id IN ({marks})", [*args, *part])
            rows = sorted(out, key=lambda r: r[1], reverse=True)
        else:
            rows = self.q(f"SELECT {', '.join(names)} FROM ledger_reuses {where} "
                          "ORDER BY at DESC", args)
        return [dict(zip(names, r, strict=True)) for r in rows]

    def events(self, *, since: float | None = None, until: float | None = None,
               status: str | None = None, command: str | None = None,
               run_ids: set[str] | None = None, limit: int | None = None,
               ) -> tuple[list[tuple[str, float, str, str, str, float]], int]:
        """Runs recorded and reuses, newest first, filtered in SQL; and how many in all.

        Rows are ``(kind, at, run_id, user, host, saved)`` with kind ``run`` or
        ``reused``. ``status``: ``ran`` (exit 0), ``failed`` (not 0), ``reused``.
        ``command``: a glob (``*``, ``?``, ``[...]``), else a substring of the command.
        """
        run_conds: list[str] = []
        args_l: list[Any] = []
        if command:
            if any(c in command for c in "*?["):
                run_conds.append("l.command GLOB ?")
            else:
                run_conds.append("instr(l.command, ?) > 0")
            args_l.append(command)
        if run_ids is not None:
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS _ids (run_id TEXT PRIMARY KEY)")
            self.db.execute("DELETE FROM _ids")
            self.db.executemany("INSERT OR IGNORE INTO _ids VALUES (?)", [(r,) for r in run_ids])
            run_conds.append("l.run_id IN (SELECT run_id FROM _ids)")
        parts: list[str] = []
        args: list[Any] = []
        if status in (None, "ran", "failed"):
            conds = list(run_conds)
            a = list(args_l)
            if status == "ran":
                conds.append("l.exit_status = 0")
            elif status == "failed":
                conds.append("(l.exit_status IS NULL OR l.exit_status != 0)")
            where, targs = time_range("l.created", since, until)
            conds += [where.removeprefix("WHERE ")] if where else []
            parts.append("SELECT 'run', l.created, l.run_id, l.user, l.host, 0.0 FROM ledger_runs l"
                         + (" WHERE " + " AND ".join(conds) if conds else ""))
            args += a + targs
        if status in (None, "reused"):
            conds = list(run_conds)
            where, targs = time_range("u.at", since, until)
            conds += [where.removeprefix("WHERE ")] if where else []
            parts.append("SELECT 'reused', u.at, u.run_id, u.user, u.host, u.saved_wall FROM "
                         "ledger_reuses u JOIN ledger_runs l ON l.run_id = u.run_id"
                         + (" WHERE " + " AND ".join(conds) if conds else ""))
            args += args_l + targs
        union = " UNION ALL ".join(parts)
        total = int(self.q(f"SELECT COUNT(*) FROM ({union})", args)[0][0])
        sql = f"{union} ORDER BY 2 DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.q(sql, args), total

    def reuse_totals(self, run_ids: Iterable[str]) -> dict[str, tuple[int, float]]:
        """Per run: times reused and wall time saved."""
        out: dict[str, tuple[int, float]] = {}
        for part in batches(set(run_ids)):
            marks = ",".join("?" * len(part))
            for rid, n, saved in self.q("SELECT run_id, COUNT(*), SUM(saved_wall) FROM "
                                        f"ledger_reuses WHERE run_id IN ({marks}) "
                                        "GROUP BY run_id", part):
                out[rid] = (int(n), float(saved or 0.0))
        return out

    def roots(self) -> list[str]:
        return [r[0] for r in self.q("SELECT DISTINCT root FROM ledger_runs")]

    # -- edges -------------------------------------------------------------------------------
    def writes(self, run_ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for part in batches(set(run_ids)):
            marks = ",".join("?" * len(part))
            for rid, path, sha in self.q("SELECT run_id, path, sha256 FROM ledger_writes "
                                         f"WHERE run_id IN ({marks})", part):
                out.setdefault(rid, []).append((path, sha))
        return out

    def reads(self, run_ids: Iterable[str]) -> dict[str, list[tuple[str, str, str]]]:
        """Per run: (kind, path, sha256) of everything it read."""
        out: dict[str, list[tuple[str, str, str]]] = {}
        for part in batches(set(run_ids)):
            marks = ",".join("?" * len(part))
            for rid, kind, path, sha in self.q("SELECT run_id, kind, path, sha256 FROM "
                                               f"ledger_reads WHERE run_id IN ({marks})", part):
                out.setdefault(rid, []).append((kind, path, sha))
        return out

    def readers(self, matches: list[PathMatch], digest: str | None = None,
                kinds: tuple[str, ...] | None = None) -> list[tuple[str, str, str, str]]:
        """(run_id, kind, path, sha256) of every read matching one of ``matches``."""
        found: set[tuple[str, str, str, str]] = set()
        for m in matches:
            cond, args = m.sql("r")
            sql = "SELECT r.run_id, r.kind, r.path, r.sha256 FROM ledger_reads r"
            if m.root is not None:
                sql += " JOIN ledger_runs l ON l.run_id = r.run_id"
                cond += " AND l.root = ?"
                args.append(m.root)
            if digest:
                cond += " AND r.sha256 LIKE ?"
                args.append(digest.lower().removeprefix("sha256:") + "%")
            if kinds:
                cond += f" AND r.kind IN ({','.join('?' * len(kinds))})"
                args += list(kinds)
            found.update(self.q(f"{sql} WHERE {cond}", args))
        return sorted(found)

    def consumers(self, produced: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
        """(run_id, path, sha256) of every data or code read of these (path, sha256) pairs."""
        pairs = list(set(produced))
        if not pairs:
            return []
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS _want (path TEXT, sha256 TEXT)")
        self.db.execute("DELETE FROM _want")
        self.db.executemany("INSERT INTO _want VALUES (?,?)", pairs)
        rows = self.q("SELECT r.run_id, r.path, r.sha256 FROM _want w JOIN ledger_reads r "
                      "ON r.path = w.path AND r.sha256 = w.sha256 WHERE r.kind != 'download'")
        self.db.execute("DELETE FROM _want")
        return rows

    def downstream(self, seeds: Iterable[str], max_depth: int | None = None) -> dict[str, tuple[
            int, set[str]]]:
        """Every run downstream of ``seeds`` (breadth first): run -> (depth, paths it came by).

        Seeds have depth 0. A run reading an output of a run already found,
        with the same digest, is one step further down.
        """
        found: dict[str, tuple[int, set[str]]] = {rid: (0, set()) for rid in seeds}
        frontier = list(found)
        depth = 0
        while frontier and (max_depth is None or depth < max_depth):
            depth += 1
            produced = self._every_form(self.writes(frontier))
            nxt = []
            for rid, path, _sha in self.consumers(produced):
                got = found.get(rid)
                if got is None:
                    found[rid] = (depth, {path})
                    nxt.append(rid)
                elif got[0] == depth:
                    got[1].add(path)
            frontier = nxt
        return found

    def _every_form(self, writes: dict[str, list[tuple[str, str]]]) -> list[tuple[str, str]]:
        """``(path, sha256)`` of these runs' outputs as any run may have recorded reading them.

        An output is kept relative to its run's project root; a run in another project
        sharing this cache (its root elsewhere) reads it by its absolute path, and a run
        writing into another project by absolute path is read there relative to that
        project's root. One ledger knows every project: each form is tried.
        """
        roots = {rid: decode_path(str(r["root"])) for rid, r in self.runs(writes).items()}
        known = [decode_path(r) for r in self.roots()]
        out: set[tuple[str, str]] = set()
        for rid, ws in writes.items():
            root = roots.get(rid, "")
            for path, sha in ws:
                out.add((path, sha))
                plain = decode_path(path)
                if "://" in plain:
                    continue
                full = plain if plain.startswith("/") or not root else os.path.join(root, plain)
                out.add((encode_path(full), sha))
                for other in known:
                    base = other.rstrip("/") + "/"
                    if other and other != root and full.startswith(base):
                        out.add((encode_path(full[len(base):]), sha))
        return sorted(out)

    def newest_of_steps(self, steps: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(root, step) -> run id of its newest recorded run (successful or not).

        A step is its command in its working directory *in its project*: the same
        ``python plot.py`` in two checkouts is two steps, and the newer run in one project
        does not make the other project's run history.
        """
        wanted = set(steps)
        out: dict[tuple[str, str], str] = {}
        for part in batches({step for _root, step in wanted}):
            marks = ",".join("?" * len(part))
            for root, step, rid, _created in self.q(
                    "SELECT root, step, run_id, MAX(created) FROM ledger_runs "
                    f"WHERE step IN ({marks}) GROUP BY root, step", part):
                if (root, step) in wanted:
                    out[(root, step)] = rid
        return out

    def newest_readers_under(self, root: str) -> list[tuple[str, str, str, str]]:
        """(run_id, kind, path, sha256) read by the newest run of every step recorded in ``root``."""
        return self.q(
            "SELECT r.run_id, r.kind, r.path, r.sha256 FROM ledger_reads r JOIN ("
            "  SELECT run_id, MAX(created) FROM ledger_runs WHERE root = ? GROUP BY step"
            ") n ON n.run_id = r.run_id", (root,))


_EMPTY_RUNS = """
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, key TEXT NOT NULL, created REAL NOT NULL,
    duration REAL NOT NULL, exit_status INTEGER, entry TEXT NOT NULL, bytes INTEGER NOT NULL,
    indexed REAL NOT NULL, last_used REAL NOT NULL, uses INTEGER NOT NULL DEFAULT 0,
    saved REAL NOT NULL DEFAULT 0);
"""


def _unreadable(exc: sqlite3.DatabaseError, where: str) -> Exception:
    """:func:`sharklib.cache.index.unreadable` (one line, with ``sharklib cache repair`` for a
    damaged file); imported on the error path only."""
    from sharklib.cache.index import unreadable

    return unreadable(exc, where)


def time_range(column: str, since: float | None, until: float | None) -> tuple[str, list[float]]:
    """A SQL ``WHERE`` clause (and its arguments) bounding ``column`` to [since, until)."""
    conds, args = [], []
    if since is not None:
        conds.append(f"{column} >= ?")
        args.append(since)
    if until is not None:
        conds.append(f"{column} < ?")
        args.append(until)
    return ("WHERE " + " AND ".join(conds)) if conds else "", args


def _in_range(t: float, since: float | None, until: float | None) -> bool:
    return (since is None or t >= since) and (until is None or t < until)
