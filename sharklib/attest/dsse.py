"""DSSE envelopes around in-toto statements.

Signatures are over the DSSE pre-authentication encoding (PAE), so the payload
type is bound to the signature. An attestation is referred to by the sha256 of
its *payload* (the statement bytes), not of the envelope: a countersignature
adds a signature without changing the payload, so every downstream reference
stays valid.
"""

from __future__ import annotations

import base64
import binascii
import json

from sharklib.errors import SignatureError
from sharklib.model.provenance import PAYLOAD_TYPE

TYPE_CHECKING = False
if TYPE_CHECKING:  # no ``typing`` at run time: a reuse proves a signature through here
    from typing import Any

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from sharklib.attest.keys import SigningKey


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSEv1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def statement_bytes(statement: dict[str, Any]) -> bytes:
    """The payload bytes: compact JSON with sorted keys (deterministic)."""
    return json.dumps(statement, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def payload_of(envelope: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(envelope["payload"], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError) as exc:
        raise ValueError(f"payload is not base64 ({exc})") from None


def attestation_digest(envelope: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the envelope's payload: the attestation's stable name."""
    import hashlib  # OpenSSL, loaded here: a reuse proving a signature never needs it

    return "sha256:" + hashlib.sha256(payload_of(envelope)).hexdigest()


def sign_payload(payload: bytes, key: SigningKey, payload_type: str = PAYLOAD_TYPE) -> dict[str, Any]:
    sig = key.sign(pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": key.keyid, "sig": base64.b64encode(sig).decode("ascii")}],
    }


def sign_statement(statement: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """A DSSE envelope over ``statement`` signed by ``key``."""
    return sign_payload(statement_bytes(statement), key)


def countersign(envelope: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """The same envelope with one more signature (payload unchanged); idempotent per key."""
    payload = payload_of(envelope)
    sigs = [s for s in envelope.get("signatures", []) if s.get("keyid") != key.keyid]
    sig = key.sign(pae(envelope["payloadType"], payload))
    sigs.append({"keyid": key.keyid, "sig": base64.b64encode(sig).decode("ascii")})
    return {**envelope, "signatures": sigs}


def merge_signatures(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two envelopes over one payload as one envelope with the union of signatures."""
    seen = {(s.get("keyid"), s.get("sig")) for s in a.get("signatures", [])}
    extra = [s for s in b.get("signatures", []) if (s.get("keyid"), s.get("sig")) not in seen]
    if not extra:
        return a
    return {**a, "signatures": [*a.get("signatures", []), *extra]}


def envelope_line(envelope: dict[str, Any]) -> bytes:
    """One JSON line (no newline) as stored in a sidecar."""
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("ascii")


def check_signatures(envelope: dict[str, Any], keys: dict[str, Ed25519PublicKey],
                     payload: bytes | None = None) -> tuple[list[str], list[str]]:
    """Key ids whose signatures verify, and a reason for each signature that does not.

    ``payload``: the envelope's payload already decoded (``payload_of(envelope)``) by a
    caller that validated the line, so the base64 is not decoded a second time.
    """
    from cryptography.exceptions import InvalidSignature

    if payload is None:
        payload = payload_of(envelope)
    message = pae(str(envelope.get("payloadType", "")), payload)
    good: list[str] = []
    bad: list[str] = []
    for sig in envelope.get("signatures", []):
        keyid = str(sig.get("keyid", ""))
        pub = keys.get(keyid)
        if pub is None:
            bad.append(f"signature by unknown key {keyid[:16] or '(no keyid)'}")
            continue
        try:
            pub.verify(base64.b64decode(sig.get("sig", ""), validate=True), message)
        except (InvalidSignature, binascii.Error, ValueError):
            bad.append(f"signature by key {keyid[:16]} does not verify")
            continue
        good.append(keyid)
    return good, bad


def verify_envelope(envelope: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> dict[str, Any]:
    """The statement, if at least one signature verifies with a trusted key."""
    good, bad = check_signatures(envelope, keys)
    if not good:
        raise SignatureError("; ".join(bad) or "no signatures")
    statement: dict[str, Any] = json.loads(payload_of(envelope))
    return statement
