"""The reuse memo: what reusing a Python step needs, in the key's marker file, read without SQLite.

``sharklib run step.py`` (and every Python root under ``sharklib env``) leaves a
marker file per run key in the default cache (``keys/<2>/<digest>``): one
``stat`` tells a captured script that its key was never recorded. This module puts
in that same file, instead of nothing, the signed entry of the newest usable run
(its DSSE envelope) and the bytes of its recorded stdout/stderr when they are
small, zlib-compressed (about 1 KB for a step that prints a line). No file is
added: the marker was there already.

A reuse of such a step then reads one file instead of importing ``sqlite3``,
opening ``index.sqlite`` and ``pack.sqlite``, and installing capture for a
script that will not run. Nothing is decided differently:

* the memo is a hint like an index entry: what is restored is what its
  attestation signs, proved by :func:`sharklib.runner.proof.prove_hint` (a
  signature by a key trusted for reuse, the same checks as every reuse), and the
  replayed bytes must have the digests the signed entry names;
* the decision is :func:`sharklib.runner.decide.judge_with`, the one decision;
* the memo holds only while the index is exactly as it was when the memo was
  written (its files' identity, size and times): a run recorded, removed,
  quarantined or an index edited or damaged sends the lookup to the index, as
  before, and a run removed from the index empties its memo
  (:func:`sharklib.cache.index.forget_memo`);
* anything else — outputs not in place, a memo that fails a check, another
  cache location — falls back to the full lookup (:func:`sharklib.runner.reuse.check`),
  which writes a fresh memo after a reuse.

The trade-off against the cache's footprint: a Python step's marker grows from
0 bytes to about 1 KB (the envelope it already stores in the index, compressed);
it adds no file. Larger streams are not inlined (the memo then only names the
run and the full lookup serves it).
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from sharklib.cache.entry import IndexEntry
    from sharklib.model import RunKeyParts
    from sharklib.runner.restore import ReuseDecision

MAGIC = b"sharklib-reuse-memo-v1\n"
#: the most stream bytes a memo carries inline (all streams together, before compression)
INLINE_MAX = 8192
_READ_MAX = 1 << 20
_ROLES = ("stdout", "stderr", "streams")


def memo_path(directory: str | os.PathLike[str], key: str) -> str:
    """The marker (and memo) file of ``key`` in the cache at ``directory``."""
    digest = key.split(":", 1)[-1]
    return os.path.join(os.fspath(directory), "keys", digest[:2], digest)


def index_stamp(directory: str | os.PathLike[str]) -> str | None:
    """The identity of the run index's files now (None: no index)."""
    parts: list[str] = []
    for name in ("index.sqlite", "index.sqlite-wal"):
        try:
            st = os.stat(os.path.join(os.fspath(directory), name))
        except FileNotFoundError:
            if not parts:
                return None
            parts.append("-")
            continue
        except OSError:
            return None
        parts.append(f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}")
    return " ".join(parts)


def _sha256(data: bytes) -> str:
    from sharklib.model.runkey import sha256_constructor

    h = sha256_constructor()()
    h.update(data)
    return str(h.hexdigest())


def write(directory: str | os.PathLike[str], entry: IndexEntry, found: Iterable[bytes]) -> bool:
    """Make ``entry``'s memo the marker of its key (the index must be closed by now).

    ``found``: byte strings among which its recorded streams are (what the run printed),
    matched by digest. Without an attestation, with a stream not among them or too large,
    the marker is left (or made) empty. Never raises; True when a memo was written.
    """
    path = memo_path(directory, entry.key)
    try:
        from sharklib.config import make_dirs

        make_dirs(os.path.dirname(path))
        body = _memo_body(directory, entry, found)
        if body is None:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
                             | os.O_NOFOLLOW, 0o644))
            return False
        from sharklib.hashing.atomic import write_temporary

        # no fsync: a memo lost or torn in a crash fails its checks and the index answers
        tmp = write_temporary(os.path.dirname(path), body, 0o644)
        try:
            os.replace(tmp, path)
        except OSError:
            os.unlink(tmp)
            raise
        return True
    except Exception:
        return False


def _memo_body(directory: str | os.PathLike[str], entry: IndexEntry,
               found: Iterable[bytes]) -> bytes | None:
    import binascii
    import json
    import zlib

    envelope = entry.attestation
    stamp = index_stamp(directory)
    if not isinstance(envelope, dict) or stamp is None:
        return None
    by_digest = {_sha256(data): data for data in found if data is not None}
    streams = {}
    total = 0
    for role in _ROLES:
        obj = entry.stream(role)
        if obj is None:
            continue
        data = by_digest.get(obj.sha256)
        if data is None:
            return None
        total += len(data)
        if total > INLINE_MAX:
            return None
        streams[role] = binascii.b2a_base64(data, newline=False).decode("ascii")
    memo: dict[str, Any] = {"stamp": stamp, "key": entry.key, "run_id": entry.run_id,
                            "envelope": envelope, "streams": streams}
    payload = envelope.get("payload")
    if isinstance(payload, str):
        try:  # the statement as text compresses, its base64 hardly
            text = binascii.a2b_base64(payload).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            text = None
        if text is not None and binascii.b2a_base64(text.encode("utf-8"), newline=False) \
                .decode("ascii") == payload:
            memo["envelope"] = {k: v for k, v in envelope.items() if k != "payload"}
            memo["statement"] = text
    return MAGIC + zlib.compress(json.dumps(memo, separators=(",", ":")).encode("utf-8"), 6)


def _read(path: str, directory: str, key: str) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    """(the envelope, the inline streams by role) of a memo that holds now, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        raw = os.read(fd, _READ_MAX)
    finally:
        os.close(fd)
    if not raw.startswith(MAGIC):
        return None
    import binascii
    import json
    import zlib

    try:
        memo = json.loads(zlib.decompress(raw[len(MAGIC):]))
        if not isinstance(memo, dict) or memo.get("key") != key or \
                memo.get("stamp") != index_stamp(directory):
            return None
        envelope = memo["envelope"]
        if not isinstance(envelope, dict):
            return None
        if "statement" in memo:
            envelope = dict(envelope, payload=binascii.b2a_base64(
                str(memo["statement"]).encode("utf-8"), newline=False).decode("ascii"))
        streams = {str(role): binascii.a2b_base64(str(text))
                   for role, text in dict(memo.get("streams") or {}).items()}
    except (ValueError, TypeError, KeyError, zlib.error, RecursionError):
        return None
    return envelope, streams


class _InPlaceOnly:
    """What :func:`sharklib.runner.restore.restore_outputs` asks of a cache when every output
    is already in place: only the stat cache (nothing is read from the store)."""

    def __init__(self, statcache: Any) -> None:
        self.statcache = statcache


def reuse(key_parts: RunKeyParts, *, cwd: str, root: str, directory: str | os.PathLike[str],
          environ: Mapping[str, str] | None = None) -> ReuseDecision | None:
    """The reuse the memo of this key proves, outputs in place, ready to replay; else None.

    None says nothing about reuse: the caller asks the index (the full lookup). Nothing
    is written but the outputs' times (as any reuse) and one line of the uses journal.
    """
    started = time.monotonic()
    key = key_parts.digest()
    directory = os.fspath(directory)
    got = _read(memo_path(directory, key), directory, key)
    if got is None:
        return None
    envelope, streams = got
    import json

    from sharklib.cache.entry import IndexEntry
    from sharklib.errors import StoreError
    from sharklib.runner import decide, proof
    from sharklib.runner.downloads import default_policy

    trusted = proof.trusted_key_ids()
    if not trusted:
        return None
    try:
        from sharklib.attest.dsse import payload_of

        statement = json.loads(payload_of(envelope))
        hint = IndexEntry.from_dict(statement["predicate"]["entry"], memo_path(directory, key))
    except Exception:
        return None
    hint.attestation = envelope
    entry = proof.prove_hint(hint, key, trusted)
    if entry is None:
        return None
    # the streams to replay are the signed ones, byte for byte
    replay: dict[str, bytes] = {}
    for role in _ROLES:
        obj = entry.stream(role)
        if obj is None:
            continue
        data = streams.get(role)
        if data is None or len(data) != obj.size or _sha256(data) != obj.sha256:
            return None
        replay[role] = data
    statcache = None
    if entry.inputs or entry.modules or entry.outputs():
        from sharklib.hashing.statcache import StatCache

        statcache = StatCache()  # the one RunCache uses
    try:
        policy = default_policy()
        judged = decide.judge_with(entry, root, statcache, policy, None, trusted=trusted,
                                   environ=environ)
        if isinstance(judged, str):
            return None
        in_place = 0
        if entry.outputs():
            from sharklib.runner.restore import checked_relpath, restore_outputs

            assert statcache is not None
            for obj in entry.outputs():
                dest = checked_relpath(root, obj.path)
                if os.path.islink(dest) or not statcache.unchanged(dest, obj.sha256):
                    return None  # something to restore from the store: the full lookup does
            restored, in_place = restore_outputs(entry, root, _InPlaceOnly(statcache))  # type: ignore[arg-type]
            if restored:
                return None
    except StoreError:
        return None
    finally:
        if statcache is not None:
            statcache.close()
    from sharklib.runner.restore import ReuseDecision, reuse_message

    saved = max(0.0, entry.duration - (time.monotonic() - started))
    decision = ReuseDecision(entry=entry, exit_status=entry.exit_status or 0,
                             stdout=replay.get("stdout", b""), stderr=replay.get("stderr", b""),
                             saved=saved, restored=[], in_place=in_place, checked=judged.checked,
                             downloads=judged.downloads, policy=policy,
                             streams=replay.get("streams", b""))
    decision.message = reuse_message(decision)
    from sharklib.cache import uses

    user, host = uses.who()
    uses.append(os.path.join(directory, uses.JOURNAL), entry.run_id, time.time(), saved, user,
                host)
    return decision
