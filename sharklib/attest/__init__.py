"""Signing and sidecars: Ed25519 keys, DSSE envelopes, in-toto bundles, verification.

Names are loaded on first use (PEP 562): a captured script signing its
outputs at exit needs the envelope, key and sidecar modules, not verification
(which brings the stat cache and SQLite).
"""

from __future__ import annotations

from sharklib._lazy import lazy_attributes

# ``typing`` is not imported at run time (~2.5 ms): a captured script loads this package
TYPE_CHECKING = False

_WHERE = {
    "attestation_digest": "dsse", "check_signatures": "dsse", "countersign": "dsse",
    "envelope_line": "dsse", "pae": "dsse", "sign_statement": "dsse", "verify_envelope": "dsse",
    "SigningKey": "keys", "default_key_path": "keys", "import_public_key": "keys",
    "load_signing_key": "keys", "trusted_keys": "keys",
    "Bundle": "sidecar", "BundleEntry": "sidecar", "input_attestation": "sidecar",
    "is_sidecar": "naming", "read_bundle": "sidecar", "sidecar_path": "naming",
    "write_bundle": "sidecar", "write_sidecar": "sidecar",
    "attest_run": "sign_run",
    "StepResult": "verify", "VerifyReport": "verify", "verify_file": "verify",
    "Lineage": "lineage", "Step": "lineage", "load_lineage": "lineage",
}

__all__ = [
    "Bundle",
    "BundleEntry",
    "Lineage",
    "SigningKey",
    "Step",
    "StepResult",
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
    "load_lineage",
    "load_signing_key",
    "pae",
    "read_bundle",
    "sidecar_path",
    "sign_statement",
    "trusted_keys",
    "verify_envelope",
    "verify_file",
    "write_bundle",
    "write_sidecar",
]

if TYPE_CHECKING:
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
    from sharklib.attest.lineage import Lineage, Step, load_lineage
    from sharklib.attest.naming import is_sidecar, sidecar_path
    from sharklib.attest.sidecar import (
        Bundle,
        BundleEntry,
        input_attestation,
        read_bundle,
        write_bundle,
        write_sidecar,
    )
    from sharklib.attest.sign_run import attest_run
    from sharklib.attest.verify import StepResult, VerifyReport, verify_file


__getattr__ = lazy_attributes(__name__, _WHERE)
