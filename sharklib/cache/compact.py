"""Compact bytes for what the cache keeps of every run: its entry and its small objects.

A trivial pipeline stage (``cp in/a out/a``) left ~13 KB in the cache, most of it JSON
written twice: the index entry keeps the run, and its attestation's payload is the same run
again as base64 (hidden from any compressor); the stage's sidecar is a DSSE line whose
payload is base64 too. Kept here, a payload is stored as the bytes it encodes, and the rest
is deflated against a preset dictionary of the JSON every run repeats (key names, statement
and predicate types), which is most of a small run's bytes: an entry of 5.6 KB keeps as
~0.4 KB, a sidecar of 2.3 KB as ~0.3 KB.

The forms are told apart by their first byte, so rows written before (zlib streams, which
start with ``0x78``; an index entry as JSON text) read as they always did:

- ``\\x01`` + raw deflate with dictionary 1 of :func:`_split` (payloads cut out) — objects;
- ``\\x02`` + raw deflate with dictionary 1 of an entry's attestation envelope, its payload
  as the statement's bytes — entries whose statement's predicate *is* the entry (every
  signed entry), which is then read back from the statement;
- ``\\x03`` + the same for an entry kept as plain compact JSON (unsigned, or any other).

A form is kept only when it gives back the input (an object byte for byte: its payloads
are joined back and compared before it is kept; an entry as the same JSON value: the
statement's predicate must equal the rest of the entry); otherwise the plain form is kept. The dictionary is part of the format: never edit ``_ZDICT_V1``, add a ``_V2``.
What is read back is as untrusted as before: an object is hashed before it is served, an
entry is parsed as hostile input and its signature checked before anything is restored.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from typing import Any

OBJECT = b"\x01"
ENTRY_SIGNED = b"\x02"
ENTRY_PLAIN = b"\x03"

# one signed trivial stage's sidecar line and entry with their digests, ids, signatures, times
# and paths taken out: the strings every run repeats, the most frequent (the entry's) last
_ZDICT_V1 = (
    b'{"payload":null,"payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":'
    b'"","sig":""}]}{"_type":"https://in-toto.io/Statement/v1","predicate":{"buildDefiniti'
    b'on":{"buildType":"https://sharklib.dev/run/v1","externalParameters":{"argv":["/bin/s'
    b'h","-c","cp in/.txt out/.txt"],"cwd":"/home/user/project"},"internalParameters":{"ba'
    b'ckend":"ebpf","environment":{"distributions":{},"interpreter":"","platform":"Linux-x'
    b'86_64-with-glibc","prefix":"","python_version":"","tag":null,"variables":{}},"host":'
    b'"vm","pid":,"runKey":null,"user":"root"},"resolvedDependencies":[{"annotations":{"ro'
    b'le":"input","size":2},"digest":{"sha256":""},"name":".txt","uri":"file:///home/user/'
    b'project/in/.txt"}]},"runDetails":{"builder":{"id":"https://sharklib.dev/builder/ebpf'
    b'"},"byproducts":[{"annotations":{"children":[],"connects":[],"execs":[{"argv":["/bin'
    b'/sh","-c","cp in/.txt out/.txt"],"cwd":"/home/user/project","parent_pid":null,"path"'
    b':"/bin/sh","pid":},{"argv":["cp","in/.txt","out/.txt"],"cwd":"/home/user/project","p'
    b'arent_pid":,"path":"/usr/bin/cp","pid":}],"exitStatus":0,"parent":null,"removed":[],'
    b'"temporaries":[],"warnings":[]},"name":"sharklib/run"}],"metadata":{"finishedOn":"",'
    b'"invocationId":"","startedOn":""}}},"predicateType":"https://slsa.dev/provenance/v1"'
    b',"subject":[{"annotations":{"size":2},"digest":{"sha256":""},"name":"out/.txt"}]}\n{"'
    b'payload":null,"payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":""'
    b',"sig":""}]}{"_type":"https://in-toto.io/Statement/v1","predicate":{"entry":{"inputs'
    b'":[["in/.txt",""]],"key":"sha256:","key_parts":{"argv":["/bin/sh","-c","cp in/.txt o'
    b'ut/.txt"],"code":{"kind":"stage"},"cwd":".","environment":{"env:LANG":"C.UTF-8","imp'
    b'lementation":"cpython","programs":"cp=/usr/bin/cp","python":"3.11.7","stage-env":"ho'
    b'st"},"v":"sharklib-runkey-v4"},"modules":[],"objects":[{"mode":420,"path":"out/.txt"'
    b',"role":"output","sha256":"","size":2},{"mode":420,"path":"out/.txt.intoto.jsonl","r'
    b'ole":"output","sha256":"","size":}],"root":"/home/user/project","run":{"argv":["/bin'
    b'/sh","-c","cp in/.txt out/.txt"],"backend":"merged","children":[""],"code":{"git":nu'
    b'll,"modules":[],"script":null},"connects":[],"cwd":"/home/user/project","downloads":'
    b'[],"ended":,"environment":{"distributions":{},"interpreter":"","platform":"","prefix'
    b'":"","python_version":"","tag":null,"variables":{}},"execs":[{"argv":["/bin/sh","-c"'
    b',"cp in/.txt out/.txt"],"cwd":"/home/user/project","parent_pid":null,"path":"/bin/sh'
    b'","pid":},{"argv":["cp","in/.txt","out/.txt"],"cwd":"/home/user/project","parent_pid'
    b'":,"path":"/usr/bin/cp","pid":}],"exit_status":0,"host":"vm","inputs":[{"path":"/hom'
    b'e/user/project/in/.txt","sha256":"","size":2}],"outputs":[{"path":"/home/user/projec'
    b't/out/.txt","sha256":"","size":2}],"parent":null,"pid":,"removed":[],"run_id":"","ru'
    b'n_key":"sha256:","schema":1,"started":,"stdin":null,"temporaries":[],"user":"root","'
    b'warnings":[]},"version":1}},"predicateType":"https://sharklib.dev/cache-entry/v1","s'
    b'ubject":[{"annotations":{"mode":420,"role":"output","size":2},"digest":{"sha256":""}'
    b',"name":"out/.txt"},{"annotations":{"mode":420,"role":"output","size":},"digest":{"s'
    b'ha256":""},"name":"out/.txt.intoto.jsonl"}]}'
)

_PAYLOAD = re.compile(rb'"payload":"([A-Za-z0-9+/]*={0,2})"')
_HOLE = b'"payload":"\x00"'


#: from this size on, entries are deflated at level 1: a traced step's entry with 5,000 inputs
#: (1 MB of statement) took 74 ms at level 9 and takes 20 ms at level 1 for 4 % more bytes;
#: below it, where the footprint of a trivial stage's entry is what counts, level 9 costs
#: next to nothing. Any level inflates the same way.
FAST_FROM = 64 << 10


def _deflate(data: bytes) -> bytes:
    level = 1 if len(data) >= FAST_FROM else 9
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, zdict=_ZDICT_V1)
    return c.compress(data) + c.flush()


def _inflate(data: bytes) -> bytes:
    d = zlib.decompressobj(-15, zdict=_ZDICT_V1)
    try:
        out = d.decompress(data) + d.flush()
    except zlib.error as exc:
        raise ValueError(f"damaged compact data: {exc}") from None
    if not d.eof:
        raise ValueError("truncated compact data")
    return out


def _split(data: bytes) -> bytes | None:
    """``data`` with each base64 DSSE payload replaced by the bytes it encodes, or None.

    Layout: 4-byte length of the text, the text with every payload a NUL hole, then each
    payload's bytes behind a 4-byte length. Only for text without NULs (JSON lines), whose
    payloads encode back to the same base64.
    """
    if b"\x00" in data:
        return None
    raws: list[bytes] = []

    def cut(m: re.Match[bytes]) -> bytes:
        try:
            raw = base64.b64decode(m.group(1), validate=True)
        except (binascii.Error, ValueError):
            return m.group(0)
        if base64.b64encode(raw) != m.group(1):
            return m.group(0)
        raws.append(raw)
        return _HOLE

    text = _PAYLOAD.sub(cut, data)
    return len(text).to_bytes(4, "big") + text + b"".join(
        len(r).to_bytes(4, "big") + r for r in raws)


def _join(data: bytes) -> bytes:
    n = int.from_bytes(data[:4], "big")
    text, rest = data[4:4 + n], memoryview(data)[4 + n:]
    if len(text) != n:
        raise ValueError("truncated compact object")
    parts = text.split(_HOLE)
    out = [parts[0]]
    for part in parts[1:]:
        size = int.from_bytes(rest[:4], "big")
        raw = bytes(rest[4:4 + size])
        if len(rest) < 4 + size:
            raise ValueError("truncated compact object")
        rest = rest[4 + size:]
        out += [b'"payload":"', base64.b64encode(raw), b'"', part]
    if len(rest):
        raise ValueError("trailing bytes in compact object")
    return b"".join(out)


# -- objects ---------------------------------------------------------------------------------
def pack_object(data: bytes) -> bytes:
    """A small object's stored bytes: compact when that gives ``data`` back, else zlib."""
    split = _split(data)
    if split is not None:
        packed = OBJECT + _deflate(split)
        try:
            if _join(split) == data:
                return packed
        except ValueError:
            pass
    return zlib.compress(data, 6)


def unpack_object(stored: bytes) -> bytes:
    """An object's bytes from :func:`pack_object` (or an older pack's zlib stream).

    Raises ValueError or ``zlib.error`` for bytes that are neither.
    """
    if stored[:1] == OBJECT:
        return _join(_inflate(stored[1:]))
    return zlib.decompress(stored)


# -- entries ---------------------------------------------------------------------------------
def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


#: the last signed entry packed: (its envelope without the payload, as bytes; the payload; the
#: predicate it signs, parsed here; the packed bytes). A run's entry is packed twice in a row,
#: for the index and for the pack's kept copy. Nothing in it is the caller's (mutable) data.
_last: tuple[bytes, str, Any, bytes] | None = None


def pack_entry(entry: dict[str, Any]) -> bytes:
    """An entry's (:meth:`~sharklib.cache.entry.IndexEntry.to_dict`) stored bytes.

    A signed entry is kept as its envelope alone when its statement's predicate holds
    exactly the rest of the entry: the entry is then stored once, not twice.
    """
    global _last
    att = entry.get("attestation")
    payload = att.get("payload") if isinstance(att, dict) else None
    if isinstance(att, dict) and isinstance(payload, str):
        rest = {k: v for k, v in entry.items() if k != "attestation"}
        head = _dumps({**att, "payload": None})
        last = _last
        if last is not None and last[0] == head and last[1] == payload and last[2] == rest:
            return last[3]
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if raw and base64.b64encode(raw).decode("ascii") == payload:
            try:
                signed = json.loads(raw)["predicate"]["entry"]
            except (ValueError, KeyError, TypeError):
                signed = None
            if signed == rest:
                packed = ENTRY_SIGNED + _deflate(head + b"\n" + raw)
                _last = (head, payload, signed, packed)
                return packed
    return ENTRY_PLAIN + _deflate(_dumps(entry))


def entry_value(stored: str | bytes) -> Any:
    """An entry as parsed JSON, from what the index or a pack keeps: :func:`pack_entry`'s
    bytes, or the JSON text an older sharklib stored.

    Raises ValueError, ``KeyError`` or ``TypeError`` for damaged bytes.
    """
    if isinstance(stored, str) or stored[:1] not in (ENTRY_SIGNED, ENTRY_PLAIN):
        return json.loads(stored)
    data = _inflate(stored[1:])
    if stored[:1] == ENTRY_PLAIN:
        return json.loads(data)
    head, _, raw = data.partition(b"\n")  # compact JSON holds no raw newline
    att = json.loads(head)
    entry = json.loads(raw)["predicate"]["entry"]
    if not isinstance(att, dict) or not isinstance(entry, dict):
        raise ValueError("malformed compact entry")
    att["payload"] = base64.b64encode(raw).decode("ascii")
    entry["attestation"] = att
    return entry


def inflated_entry(stored: bytes) -> bytes:
    """A compact entry's bytes inflated, not parsed: JSON text (the signed form's envelope, a
    newline, its statement as signed); for a cheap substring search. Raises ValueError."""
    if stored[:1] not in (ENTRY_SIGNED, ENTRY_PLAIN):
        raise ValueError("not a compact entry")
    return _inflate(stored[1:])


def entry_json(stored: str | bytes) -> str | bytes:
    """:func:`entry_value` as JSON text (older rows returned as they are)."""
    if isinstance(stored, str) or stored[:1] not in (ENTRY_SIGNED, ENTRY_PLAIN):
        return stored
    return _dumps(entry_value(stored))
