"""``sharklib keys``: the signing key and the keys this user trusts, in plain words.

Thin over :mod:`sharklib.attest.keys` (which creates the default key on first
use, 0600, and prints its id once): here are the user-facing operations —
show, export the public half, import a colleague's or an institution's public
key under a name, generate a new key at a chosen path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sharklib.attest.keys import (
    default_key_path,
    generate_key,
    import_public_key,
    load_signing_key,
    trusted_dir,
    trusted_key_names,
    trusted_keys,
)
from sharklib.errors import KeyMaterialError


@dataclass(slots=True)
class KeyInfo:
    keyid: str
    path: str
    public_pem: str


@dataclass(slots=True)
class TrustedKey:
    keyid: str
    name: str


def key_info(path: str | None = None) -> KeyInfo:
    """The signing key (``path``, ``$SHARKLIB_KEY`` or the default, created on first use)."""
    key = load_signing_key(path)
    return KeyInfo(key.keyid, str(key.path), key.public_pem().decode("ascii"))


def trusted_list() -> list[TrustedKey]:
    names = trusted_key_names()
    return [TrustedKey(kid, names.get(kid, "?")) for kid in sorted(trusted_keys())]


def export_public(path: str | None = None, out: str | None = None) -> str:
    """The public key PEM; written to ``out`` (atomically) when given."""
    from sharklib.views.output import write_output

    pem = key_info(path).public_pem
    if out:
        write_output(out, pem.encode("ascii"))
    return pem


def import_key(source: str, name: str | None = None) -> tuple[str, str]:
    """Trust the public key in ``source``; returns its id and where it is kept."""
    keyid, dest = import_public_key(source, name)
    return keyid, str(dest)


def generate(out: str | None = None, force: bool = False) -> KeyInfo:
    """A new Ed25519 key at ``out`` (default: the default key path); never overwrites silently."""
    target = Path(out) if out else default_key_path()
    if target.exists() and not force:
        raise KeyMaterialError("a key already exists here (use --force to replace it)", target)
    key = generate_key(target)
    return KeyInfo(key.keyid, str(key.path), key.public_pem().decode("ascii"))


def trusted_directory() -> str:
    return os.fspath(trusted_dir())
