"""The ledger of a shared remote cache, mirrored locally so queries stay index-fast.

A remote holds one compressed index entry per run (``runs/<key>/<run>.json.zst``).
The mirror (``<cache>/remote-ledgers/<hash of URL>.sqlite``) keeps the ledger
rows of every entry it has read, plus the attestation they are judged by, so a
later query only fetches entries that are new. A row is the entry as its own
signed attestation says (the readable part of an entry is anyone's to edit on
a shared remote), and that attestation is the one kept; an entry from before
entries were signed keeps its readable part and the run's sidecar attestation
(the first line of one stored sidecar, fetched and checked against its digest). Entries and objects are parsed as
hostile input (:meth:`RemoteStore.get_entry`); a bad one is skipped with one
warning line. Nothing in the mirror is trusted: who signed a run is decided at
query time against this user's keys (:class:`sharklib.views.queries.Signers`).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sharklib.cache import ledger as ledger_sql
from sharklib.cache.ledger import Ledger
from sharklib.config import make_dirs
from sharklib.errors import SharkError, StoreError

if TYPE_CHECKING:
    from sharklib.cache.entry import IndexEntry

_MIRROR = """
CREATE TABLE IF NOT EXISTS mirror_seen (path TEXT PRIMARY KEY, run_id TEXT);
CREATE TABLE IF NOT EXISTS mirror_envelopes (run_id TEXT PRIMARY KEY, line BLOB);
"""
_ENVELOPE_MAX = 4 << 20


def mirror(url: str, cache_dir: str | Path) -> tuple[Ledger, Callable[[dict[str, Any]], bytes | None]]:
    """Bring the mirror of ``url`` up to date; the ledger over it and an attestation reader."""
    from sharklib.cache.remote import RemoteStore

    # v2: rows are what entries' attestations sign (a v1 mirror may hold edited hints)
    path = Path(cache_dir) / "remote-ledgers" / (
        hashlib.sha256(f"v2\0{url}".encode()).hexdigest()[:24] + ".sqlite")
    make_dirs(path.parent)
    led = Ledger.open(path)
    db = led.db
    db.executescript(_MIRROR)
    remote = RemoteStore(url, create=False)  # a query writes nothing there
    if not remote.fs.exists(remote.base):
        led.close()
        # a mistyped folder or bucket would otherwise read as a remote where nobody ran anything
        raise SharkError(f"remote {url}: nothing is there (no such folder or bucket; "
                         "has anything been pushed to it?)")
    seen = {r[0] for r in db.execute("SELECT path FROM mirror_seen")}
    new = [p for p in remote.entry_paths() if p not in seen]
    for entry_path in new:
        try:
            entry = remote.get_entry(entry_path)
            signed = _as_signed(entry, f"{url}/{entry_path}")
            line: bytes | None
            if signed is not None:
                # the row shows what the entry's attestation signs, and that attestation
                # is the one judged: an edited hint shows neither as signed
                data = signed.to_dict()
                line = json.dumps(entry.attestation).encode()
            else:
                data = entry.to_dict()
                line = _first_line(remote, data)
        except StoreError as exc:
            sys.stderr.write(f"sharklib: warning: {exc}; skipped\n")
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            ledger_sql.ensure(db)
            ledger_sql.put(db, data)
            db.execute("INSERT OR REPLACE INTO mirror_seen VALUES (?,?)", (entry_path, entry.run_id))
            if line is not None:
                db.execute("INSERT OR REPLACE INTO mirror_envelopes VALUES (?,?)",
                           (entry.run_id, line))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def envelope(run: dict[str, Any]) -> bytes | None:
        row = db.execute("SELECT line FROM mirror_envelopes WHERE run_id=?",
                         (run["run_id"],)).fetchone()
        return bytes(row[0]) if row else None

    return led, envelope


def _as_signed(entry: IndexEntry, where: str) -> IndexEntry | None:
    """The entry as its attestation signs it (None for an entry from before entries were
    signed); a hint that differs from it is said in one warning line."""
    from sharklib.attest.dsse import payload_of
    from sharklib.cache.entry import IndexEntry
    from sharklib.runner.proof import PREDICATE_TYPE

    envelope = entry.attestation
    if not isinstance(envelope, dict):
        return None
    try:
        statement = json.loads(payload_of(envelope))
        if not isinstance(statement, dict) or statement.get("predicateType") != PREDICATE_TYPE:
            raise ValueError("not a cache-entry statement")
        signed_dict = statement["predicate"]["entry"]
        signed = IndexEntry.from_dict(signed_dict, where)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise StoreError(f"its attestation is malformed ({exc})", where) from None
    if signed.run_id != entry.run_id:
        raise StoreError("its attestation is another run's", where)
    canonical = partial(json.dumps, sort_keys=True, separators=(",", ":"))
    if canonical(entry.signed_part()) != canonical(signed_dict):
        sys.stderr.write(f"sharklib: warning: {where}: the entry differs from what its "
                         "attestation signs; shown as signed\n")
    return signed


def _first_line(remote: Any, data: dict[str, Any]) -> bytes | None:
    """The run's own attestation: the first line of one of its stored sidecars, if any."""
    for o in data.get("objects") or []:
        if o.get("role") == "output" and str(o.get("path", "")).endswith(ledger_sql.SIDECAR_SUFFIX):
            try:
                raw = remote.read(str(o["sha256"]))  # decompressed and checked against its digest
            except StoreError:
                return None
            return raw[:_ENVELOPE_MAX].split(b"\n", 1)[0]
    return None

