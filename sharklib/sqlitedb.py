"""Opening sharklib's own SQLite files (index, pack, stat cache, snapshots) when others open them too.

Every one of them is WAL, autocommit, and created on first use by whichever
process gets there first; a pipeline's workers all get there at once. SQLite's
busy timeout covers reads and writes but not the switch of a new file to WAL:
``PRAGMA journal_mode=WAL`` needs the file to itself and answers "database is
locked" at once while another process has it open. Measured: six processes
opening one new file, 5 in 40 trials had a process fail there, and the run it
was recording was dropped from the cache ("run not cached"), so the next run
of an unchanged pipeline ran that stage again. Here the switch is retried until
the timeout, and the schema is created in a ``BEGIN IMMEDIATE`` transaction
(which waits on the busy timeout like any write) instead of one statement at a
time.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable


def is_damaged(exc: sqlite3.DatabaseError) -> bool:
    """A damaged file (to be moved aside), as opposed to a busy, missing or read-only one."""
    text = str(exc).lower()
    return not isinstance(exc, sqlite3.OperationalError) or "malformed" in text \
        or "not a database" in text or "corrupt" in text


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def ensure_wal(db: sqlite3.Connection, timeout: float, page_size: int | None = None) -> None:
    """Put ``db`` in WAL mode (a no-op when it is), waiting up to ``timeout`` s for other openers.

    ``page_size`` applies to a file that has no pages yet (before WAL, as SQLite requires).
    """
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            if page_size is not None:
                db.execute(f"PRAGMA page_size={int(page_size)}")
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def create_schema(db: sqlite3.Connection, statements: Iterable[str]) -> None:
    """Run ``CREATE ... IF NOT EXISTS`` statements as one write transaction (waits when busy)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for stmt in statements:
            if stmt.strip():
                db.execute(stmt)
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def connect(path: str | os.PathLike[str], *, timeout: float, schema: Iterable[str] = (),
            page_size: int | None = None, synchronous: str | None = "NORMAL",
            check_same_thread: bool = False) -> sqlite3.Connection:
    """An autocommit connection to ``path`` in WAL mode with ``schema`` created.

    Raises :class:`sqlite3.DatabaseError` as :func:`sqlite3.connect` does; the caller
    words it (damaged, unreadable) for its own file.
    """
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                         check_same_thread=check_same_thread)
    try:
        ensure_wal(db, timeout, page_size)
        if synchronous is not None:
            db.execute(f"PRAGMA synchronous={synchronous}")
        statements = list(schema)
        if statements:
            create_schema(db, statements)
    except BaseException:
        db.close()
        raise
    return db
