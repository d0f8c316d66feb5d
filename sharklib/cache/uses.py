"""The uses journal: a reuse is counted by appending one line, folded into the index later.

Counting a reuse in the run index (``run_uses`` and the ledger's ``ledger_reuses``)
was a write transaction on ``index.sqlite`` before the user's reused step returned:
the WAL created, synced, checkpointed and removed again, four ``fdatasync`` calls
and most of the time a reuse of a small step took. A use is bookkeeping (what
``cache ls``, gc's least-recently-used order, ``log`` and ``report`` show), not
part of any decision, so the reuse appends one line to ``uses.log`` beside the
index (``O_APPEND``, no sync: losing the last lines in a power cut loses counts,
never consistency) and whoever next reads or writes the uses folds the journal
into the index in one transaction (:func:`fold`).

Each line carries a random token; the tokens of a fold are kept in
``uses_folded`` in the same transaction that counts them, so a crash between that
commit and the journal's truncation never counts a use twice. The journal is
taken under ``flock``: appenders share the lock, the fold holds it exclusively
from reading to truncating, so no line is lost between the two.

A line the fold cannot read (a torn write, a hostile shared cache) is skipped;
a use of a run the index no longer has counts nowhere in ``run_uses`` (as
before), and lands in ``ledger_reuses`` (ledger rows outlive gc).
"""

from __future__ import annotations

import contextlib
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3

#: the journal's name, beside ``index.sqlite``
JOURNAL = "uses.log"
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
_MAX_LINE = 4096
_HEX = frozenset("0123456789abcdef")
_INF = float("inf")

FOLDED_SCHEMA = "CREATE TABLE IF NOT EXISTS uses_folded (token TEXT PRIMARY KEY)"


def journal_of(index_path: str | os.PathLike[str]) -> str:
    """The journal beside the index at ``index_path``."""
    return os.path.join(os.path.dirname(os.path.abspath(index_path)), JOURNAL)


def who() -> tuple[str, str]:
    """``getpass.getuser()`` and ``socket.gethostname()``, without importing either module.

    A reuse writes this row before the user's step returns; getpass (termios) and socket
    (selectors) cost it ~3 ms of imports. The same variables are read in the same order,
    then the password database; on Linux ``gethostname`` is the uname node name.
    """
    user = next((v for v in (os.environ.get(n) for n in ("LOGNAME", "USER", "LNAME", "USERNAME"))
                 if v), "")
    if not user:
        try:
            import pwd

            user = pwd.getpwuid(os.getuid())[0]
        except Exception:
            user = str(os.getuid())
    try:
        host = os.uname().nodename
    except Exception:
        host = ""
    return user, host


def _clean(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and c != "\t")[:200]


def append(journal: str, run_id: str, at: float, saved: float, user: str, host: str) -> bool:
    """Count one reuse of ``run_id`` in the journal (best effort: False when it was not)."""
    import fcntl

    line = "\t".join((os.urandom(8).hex(), _clean(run_id), repr(float(at)),
                      repr(max(0.0, float(saved))), _clean(user), _clean(host))) + "\n"
    try:
        fd = os.open(journal, _FLAGS, 0o644)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        os.write(fd, line.encode("utf-8", "replace"))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _parse(raw: bytes) -> tuple[str, str, float, float, str, str] | None:
    if len(raw) > _MAX_LINE:
        return None
    parts = raw.decode("utf-8", "replace").split("\t")
    if len(parts) != 6:
        return None
    token, run_id, at_text, saved_text, user, host = parts
    if len(token) != 16 or not set(token) <= _HEX or not run_id:
        return None
    try:
        at, saved = float(at_text), float(saved_text)
    except ValueError:
        return None
    if not (abs(at) < _INF and abs(saved) < _INF):  # no NaN, no infinity
        return None
    return token, run_id, at, max(0.0, saved), user, host


def pending(journal: str) -> bool:
    """Does the journal hold anything to fold? (One ``stat``.)"""
    try:
        return os.stat(journal).st_size > 0
    except OSError:
        return False


def fold(db: sqlite3.Connection, journal: str, mark_used_sql: str) -> int:
    """Count the journal's uses in the index behind ``db`` (autocommit mode); returns how many.

    ``mark_used_sql`` is the index's statement adding one use to ``run_uses``
    (:data:`sharklib.cache.index._MARK_USED`). The ledger's rows are written by
    :func:`sharklib.cache.ledger.on_reuse_rows` in the same transaction. Never raises for a
    journal it cannot open or a read-only index: the uses wait for the next fold.
    """
    import fcntl
    import sqlite3

    from sharklib.cache import ledger

    try:
        fd = os.open(journal, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        data = b"".join(chunks)
        if not data:
            return 0
        lines = [p for p in (_parse(raw) for raw in data.split(b"\n") if raw) if p is not None]
        counted = 0
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(FOLDED_SCHEMA)
                tokens = [(t[0],) for t in lines]
                seen = {row[0] for row in db.execute("SELECT token FROM uses_folded")}
                fresh = [t for t in lines if t[0] not in seen]
                for _token, run_id, at, saved, _user, _host in fresh:
                    db.execute(mark_used_sql, (run_id, at, saved))
                ledger.on_reuse_rows(db, [(run_id, at, saved, user, host)
                                          for _t, run_id, at, saved, user, host in fresh])
                # only this journal's tokens are worth keeping: the lines it still holds
                db.execute("DELETE FROM uses_folded")
                db.executemany("INSERT OR IGNORE INTO uses_folded VALUES (?)", tokens)
                counted = len(fresh)
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error:
            return 0  # a read-only or busy index: the journal waits for the next fold
        os.ftruncate(fd, 0)
        return counted
    except OSError:
        return 0
    finally:
        os.close(fd)
