"""``sharklib sign --countersign FILE``: add a signature to a file's own attestation.

The payload is unchanged (:func:`sharklib.attest.countersign`), so the
attestation's digest — which downstream sidecars use to link to it — stays the
same: copies of this envelope in downstream sidecars remain valid with the
signatures they already carry and are not rewritten. Only the file's own
sidecar is rewritten, atomically, under a lock so two countersigners cannot
lose each other's signature.

A countersignature vouches for bytes, so it is refused when the file on disk
no longer matches its record, or when no existing signature verifies with a
key this user trusts.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from sharklib.attest import (
    check_signatures,
    countersign,
    load_signing_key,
    sidecar_path,
    trusted_keys,
    write_bundle,
)
from sharklib.attest.lineage import lineage_from_entries, read_entries
from sharklib.errors import SignatureError
from sharklib.hashing import sha256_file


@dataclass(slots=True)
class Countersigned:
    sidecar: str
    keyid: str
    signatures: int
    attestation: str


def _lock_path(sidecar: str) -> str:
    from sharklib.config import cache_dir, make_dirs

    d = cache_dir() / "locks"
    make_dirs(d)
    return str(d / (hashlib.sha256(os.fsencode(sidecar)).hexdigest()[:32] + ".lock"))


def countersign_file(path: str | os.PathLike[str], key_path: str | None = None,
                     require_trusted: bool = True) -> Countersigned:
    from filelock import FileLock

    p = os.path.abspath(os.fspath(path))
    key = load_signing_key(key_path)
    sidecar = sidecar_path(p)
    with FileLock(_lock_path(sidecar), timeout=60):
        entries = read_entries(sidecar)
        lineage = lineage_from_entries(p, sidecar, entries)
        head = lineage.head
        try:
            now, _ = sha256_file(p)
        except OSError as exc:
            raise SignatureError(f"cannot read the file to countersign: {exc.strerror}", p) from None
        if now != head.output.sha256:
            raise SignatureError("file changed since it was recorded; refusing to countersign "
                                 f"(recorded {head.output.sha256[:12]}, now {now[:12]})", p)
        if require_trusted:
            good, bad = check_signatures(head.entry.envelope, trusted_keys())
            if not good:
                raise SignatureError("its attestation is not signed by a key you trust ("
                                     + ("; ".join(bad) or "no signatures")
                                     + "); import the signer's key first", sidecar, head.line)
        new_head = countersign(head.entry.envelope, key)
        write_bundle(sidecar, [new_head, *(e.envelope for e in entries[1:])])
    return Countersigned(sidecar, key.keyid, len(new_head["signatures"]), head.digest)
