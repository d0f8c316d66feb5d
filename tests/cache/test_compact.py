"""Compact bytes for kept entries and packed objects (sharklib/cache/compact.py).

An entry is kept once (its signed statement holds it; the base64 payload is stored as its
bytes) and deflated against a preset dictionary; a sidecar's DSSE payloads likewise. What
must hold: everything comes back exactly (an object byte for byte, an entry as the same JSON
value with its signature), rows an older sharklib wrote (JSON text in the index, zlib in the
pack) read as before, and damaged bytes are one-line errors, never a traceback.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from sharklib.cache.compact import (
    ENTRY_PLAIN,
    ENTRY_SIGNED,
    FAST_FROM,
    OBJECT,
    entry_json,
    entry_value,
    pack_entry,
    pack_object,
    unpack_object,
)
from sharklib.cache.entry import IndexEntry
from sharklib.cache.index import RunIndex
from sharklib.cache.pack import PACK, Pack
from sharklib.errors import StoreError


def _signed(entry: dict[str, object], *, ascii_only: bool = True) -> dict[str, object]:
    statement = {"_type": "https://in-toto.io/Statement/v1", "subject": [],
                 "predicateType": "https://sharklib.dev/cache-entry/v1",
                 "predicate": {"entry": entry}}
    raw = json.dumps(statement, sort_keys=True, separators=(",", ":"),
                     ensure_ascii=ascii_only).encode()
    return {**entry, "attestation": {"payload": base64.b64encode(raw).decode(),
                                     "payloadType": "application/vnd.in-toto+json",
                                     "signatures": [{"keyid": "k1", "sig": "c2ln"}]}}


ENTRY = {"version": 1, "key": "sha256:" + "ab" * 32, "root": "/p", "objects": [],
         "inputs": [["in/å.txt", "cd" * 32]], "modules": [],
         "run": {"run_id": "r1", "started": 1.5, "ended": 2.25, "exit_status": 0,
                 "argv": ["cp", "in/å.txt", "out/å.txt"]}}


@pytest.mark.parametrize("ascii_only", [True, False])
def test_a_signed_entry_is_kept_once_and_comes_back_exactly(ascii_only: bool) -> None:
    entry = _signed(ENTRY, ascii_only=ascii_only)
    stored = pack_entry(entry)
    assert stored[:1] == ENTRY_SIGNED
    assert entry_value(stored) == entry
    assert entry_value(stored)["attestation"]["payload"] == entry["attestation"]["payload"]
    assert len(stored) < len(json.dumps(entry)) / 3
    assert json.loads(entry_json(stored)) == entry


def test_a_large_entry_is_packed_fast_and_comes_back_exactly() -> None:
    """An entry past FAST_FROM (a traced step with thousands of inputs) is deflated at the
    fast level; it reads back the same, signed or plain."""
    big = {**ENTRY, "inputs": [[f"in/f{i:05d}.txt", f"{i:064x}"] for i in range(5000)]}
    for entry in (_signed(big), big):
        stored = pack_entry(entry)
        assert len(json.dumps(entry)) > FAST_FROM
        assert entry_value(stored) == entry
        assert json.loads(entry_json(stored)) == entry


def test_an_entry_its_statement_does_not_hold_is_kept_plain() -> None:
    forged = _signed(ENTRY)
    forged["inputs"] = []  # the hint no longer says what the signature says: kept as it is
    stored = pack_entry(forged)
    assert stored[:1] == ENTRY_PLAIN and entry_value(stored) == forged
    odd = {**ENTRY, "attestation": {"payload": "not base64!", "signatures": []}}
    assert entry_value(pack_entry(odd)) == odd
    assert entry_value(pack_entry(ENTRY)) == ENTRY


def test_objects_come_back_byte_for_byte() -> None:
    line = json.dumps({"payload": base64.b64encode(b'{"a":1}').decode(), "payloadType": "t",
                       "signatures": []}).encode()
    odd = b'{"payload":"QQ="}\n'  # base64 that does not encode back the same: kept as it is
    for data in (b"", b"0\n", line + b"\n" + line + b"\n", b"\x00\x01binary" * 50, odd,
                 b'{"payload":"' + base64.b64encode(b"\x00" * 40) + b'"}'):
        stored = pack_object(data)
        assert unpack_object(stored) == data
    assert pack_object(line)[:1] == OBJECT
    assert unpack_object(zlib.compress(b"an older pack's row")) == b"an older pack's row"
    for bad in (OBJECT + b"\xff\xfe", OBJECT + zlib.compress(b"x")[2:-4]):
        with pytest.raises(ValueError):
            unpack_object(bad)


def test_damaged_compact_entries_are_one_line_errors() -> None:
    for bad in (ENTRY_SIGNED + b"\x00garbage", ENTRY_PLAIN + b"", pack_entry(ENTRY)[:-3]):
        with pytest.raises(StoreError, match="cache index entry is not JSON") as exc:
            IndexEntry.from_json(bad, "index (run r1)")
        assert "\n" not in str(exc.value)


def test_rows_older_sharklibs_wrote_are_read_as_before(tmp_path: Path) -> None:
    """An index entry kept as JSON text, a pack entry and object as zlib (b"D"/b"J" forms)."""
    entry = _signed(ENTRY)
    index = RunIndex(tmp_path / "index.sqlite")
    index.close()
    db = sqlite3.connect(tmp_path / "index.sqlite")
    with db:
        db.execute("INSERT INTO runs (run_id, key, created, duration, exit_status, entry, bytes, "
                   "indexed, last_used) VALUES ('r1', ?, 1.5, 0.75, 0, ?, 0, 1, 1)",
                   (ENTRY["key"], json.dumps(entry, sort_keys=True, separators=(",", ":"))))
    db.close()
    index = RunIndex(tmp_path / "index.sqlite")
    (got,) = index.candidates(str(ENTRY["key"]))
    assert got.attestation == entry["attestation"] and got.run_id == "r1"
    assert [e.run_id for e in index.entries_containing('"argv":["cp"')] == ["r1"]
    assert [r.argv for r in index.rows()] == [["cp", "in/å.txt", "out/å.txt"]]
    index.close()

    pack = Pack(tmp_path / PACK)
    pack.put_object("0" * 64, b"placeholder")  # creates the tables
    pack.close()
    att = entry["attestation"]
    assert isinstance(att, dict)
    rest = {**entry, "attestation": {**att, "payload": None}}
    old_d = b"D" + json.dumps(rest, sort_keys=True, separators=(",", ":")).encode() + b"\n" + \
        base64.b64decode(att["payload"])
    db = sqlite3.connect(tmp_path / PACK)
    with db:
        db.execute("INSERT INTO entries VALUES ('r1', 'k', ?)", (zlib.compress(old_d),))
        db.execute("INSERT INTO entries VALUES ('r2', 'k', ?)", (zlib.compress(
            b"J" + json.dumps(ENTRY).encode()),))
        db.execute("INSERT INTO objects VALUES (?, 5, ?)", ("1" * 64, zlib.compress(b"old\n")))
    db.close()
    pack = Pack(tmp_path / PACK)
    kept = dict(pack.entries())
    assert json.loads(kept["r1"] or b"") == entry and json.loads(kept["r2"] or b"") == ENTRY
    assert pack.get_object("1" * 64) == b"old\n"
    pack.close()


def test_a_hint_search_finds_compact_entries_in_both_spellings(tmp_path: Path) -> None:
    index = RunIndex(tmp_path / "index.sqlite")
    db = sqlite3.connect(tmp_path / "index.sqlite")
    with db:
        for rid, ascii_only in (("r1", True), ("r2", False)):
            e = _signed({**ENTRY, "run": {**ENTRY["run"], "run_id": rid}},  # type: ignore[dict-item]
                        ascii_only=ascii_only)
            db.execute("INSERT INTO runs (run_id, key, created, duration, exit_status, entry, "
                       "bytes, indexed, last_used) VALUES (?, ?, 1.5, 0.75, 0, ?, 0, 1, 1)",
                       (rid, ENTRY["key"], pack_entry(e)))
    db.close()
    needle = '"argv":' + json.dumps(["cp", "in/å.txt", "out/å.txt"], separators=(",", ":"))
    assert sorted(e.run_id for e in index.entries_containing(needle)) == ["r1", "r2"]
    assert index.entries_containing('"argv":["mv"') == []
    index.close()


def test_the_cli_reads_a_compact_index_end_to_end(tmp_path: Path) -> None:
    """``cache ls`` names the command of a run whose entry is kept compact."""
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "s.py").write_text("open('out.txt', 'w').write('x')\n")
    env = {"SHARKLIB_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "sharklib", "run", "s.py"], cwd=proj, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    db = sqlite3.connect(tmp_path / "home" / "cache" / "index.sqlite")
    (kind,) = db.execute("SELECT typeof(entry) FROM runs").fetchone()
    db.close()
    assert kind == "blob"
    ls = subprocess.run([sys.executable, "-m", "sharklib", "cache", "ls"], cwd=proj, env=env,
                        capture_output=True, text=True, timeout=120)
    assert ls.returncode == 0 and "s.py" in ls.stdout, ls.stdout + ls.stderr


def test_a_countersignature_added_in_place_is_kept() -> None:
    """Packing the same entry twice in a row is answered from memory; never a stale answer."""
    entry = _signed(ENTRY)
    first = pack_entry(entry)
    assert pack_entry(entry) == first
    att = entry["attestation"]
    assert isinstance(att, dict)
    att["signatures"].append({"keyid": "k2", "sig": "Y291bnRlcg=="})
    again = entry_value(pack_entry(entry))
    assert [s["keyid"] for s in again["attestation"]["signatures"]] == ["k1", "k2"]
