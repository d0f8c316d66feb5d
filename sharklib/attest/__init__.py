"""Signing and sidecars: Ed25519 keys, DSSE envelopes, in-toto bundles, verification."""

from sharklib.attest.dsse import (
    attestation_digest,
    check_signatures,
    countersign,
    envelope_line,
    pae,
    sign_statement,
    verify_envelope,
)
from sharklib.attest.keys import (
    SigningKey,
    default_key_path,
    import_public_key,
    load_signing_key,
    trusted_keys,
)
from sharklib.attest.sidecar import (
    Bundle,
    BundleEntry,
    input_attestation,
    is_sidecar,
    read_bundle,
    sidecar_path,
    write_bundle,
)
from sharklib.attest.sign_run import attest_run
from sharklib.attest.verify import VerifyReport, verify_bundle, verify_file

__all__ = [
    "Bundle",
    "BundleEntry",
    "SigningKey",
    "VerifyReport",
    "attest_run",
    "attestation_digest",
    "check_signatures",
    "countersign",
    "default_key_path",
    "envelope_line",
    "import_public_key",
    "input_attestation",
    "is_sidecar",
    "load_signing_key",
    "pae",
    "read_bundle",
    "sidecar_path",
    "sign_statement",
    "trusted_keys",
    "verify_bundle",
    "verify_envelope",
    "verify_file",
    "write_bundle",
]
