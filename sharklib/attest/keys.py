"""Ed25519 signing keys: created on first use, kept private, trusted explicitly.

The private key lives in ``config_dir()/keys/default.pem`` (PKCS#8 PEM, mode
0600) unless ``SHARKLIB_KEY`` or an explicit path names another. Public keys of
colleagues and institutions are imported into ``config_dir()/trusted/`` and
together with the own key form the set :func:`trusted_keys` verifies against.

A key id is the hex sha256 of the raw 32-byte public key: short to compare,
independent of the PEM encoding.

Signing happens at the end of every captured script that wrote something, so
loading the own key avoids ``cryptography``'s serialization package (~20 ms
of imports): an unencrypted PKCS#8 Ed25519 key is a fixed 48-byte structure
(RFC 8410) whose last 32 bytes are the seed, read directly; any other PEM goes
through ``load_pem_private_key``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sharklib.config import ENV_KEY, config_dir, private_dir
from sharklib.errors import KeyMaterialError
from sharklib.hashing import atomic_write

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

_NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


def keys_dir() -> Path:
    return config_dir() / "keys"


def trusted_dir() -> Path:
    return config_dir() / "trusted"


def _key_dir(directory: Path) -> None:
    """A key's directory: 0700 whatever the umask inside the config directory (see
    :func:`sharklib.config.private_dir`); elsewhere (``--out``) as the user makes it, 0700."""
    if config_dir() in directory.parents or directory == config_dir():
        private_dir(directory)
    else:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)


_warned_readable: set[Path] = set()


def _warn_if_readable(path: Path) -> None:
    """One warning per key and process when others may read the private key."""
    if path in _warned_readable:
        return
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return
    if mode & 0o077:
        _warned_readable.add(path)
        with contextlib.suppress(OSError):
            sys.stderr.write(f"sharklib: warning: signing key {path} is readable by other users "
                             f"(mode {mode:04o}); anyone who can read it can sign as you: "
                             f"chmod 600 {path}\n")


def default_key_path() -> Path:
    return keys_dir() / "default.pem"


def keyid_of(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes_raw()).hexdigest()


def public_pem(public: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


class SigningKey:
    """A private key able to sign, with its public half and id.

    A plain class (not a dataclass: that import is ~8 ms at the end of a
    captured script that did not import it already); immutable by convention.
    """

    __slots__ = ("_keyid", "path", "private")

    def __init__(self, private: Ed25519PrivateKey, path: Path) -> None:
        self.private = private
        self.path = path
        self._keyid: str | None = None

    def __repr__(self) -> str:
        return f"SigningKey(keyid={self.keyid[:16]!r}, path={str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SigningKey) and (self.keyid, self.path) == (other.keyid, other.path)

    def __hash__(self) -> int:
        return hash((self.keyid, self.path))

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def keyid(self) -> str:
        if self._keyid is None:
            self._keyid = keyid_of(self.public)
        return self._keyid

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    def public_pem(self) -> bytes:
        return public_pem(self.public)


def _private_pem() -> tuple[Ed25519PrivateKey, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return private, pem


def generate_key(path: Path) -> SigningKey:
    """Create a new Ed25519 key at ``path`` (0600, parent 0700), atomically (replacing any)."""
    private, pem = _private_pem()
    try:
        _key_dir(path.parent)
        atomic_write(path, pem, mode=0o600)
    except OSError as exc:
        raise KeyMaterialError(f"cannot create signing key: {exc.strerror}", path) from None
    return SigningKey(private, path)


def _create_once(path: Path) -> tuple[SigningKey, bool]:
    """Create the key at ``path`` unless another process just did; (key, created by us).

    ``os.link`` refuses to replace an existing file, so when two processes
    create the default key at once one wins and the other loads the winner's:
    nothing is ever signed with a key that is then overwritten.
    """
    private, pem = _private_pem()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        _key_dir(path.parent)
        atomic_write(tmp, pem, mode=0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _load_private(path), False
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise KeyMaterialError(f"cannot create signing key: {exc.strerror}", path) from None
    return SigningKey(private, path), True


#: DER prefix of an unencrypted PKCS#8 Ed25519 private key (RFC 8410); the 32-byte seed follows
_PKCS8_ED25519 = bytes.fromhex("302e020100300506032b657004220420")


def _ed25519_seed(pem: bytes) -> bytes | None:
    """The seed of an unencrypted PKCS#8 Ed25519 PEM key, or None for any other PEM."""
    lines = pem.strip().splitlines()
    if len(lines) < 3 or lines[0].strip() != b"-----BEGIN PRIVATE KEY-----" \
            or lines[-1].strip() != b"-----END PRIVATE KEY-----":
        return None
    try:
        der = base64.b64decode(b"".join(line.strip() for line in lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(der) != len(_PKCS8_ED25519) + 32 or not der.startswith(_PKCS8_ED25519):
        return None
    return der[len(_PKCS8_ED25519):]


def _load_private(path: Path) -> SigningKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyMaterialError("signing key not found", path) from None
    except OSError as exc:
        raise KeyMaterialError(f"cannot read signing key: {exc.strerror}", path) from None
    seed = _ed25519_seed(data)
    if seed is not None:
        return SigningKey(Ed25519PrivateKey.from_private_bytes(seed), path)
    from cryptography.hazmat.primitives import serialization

    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(f"not a usable PEM private key ({exc})", path) from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyMaterialError("not an Ed25519 private key", path)
    return SigningKey(private, path)


_loaded: dict[Path, SigningKey] = {}


def load_signing_key(path: str | os.PathLike[str] | None = None, create: bool = True) -> SigningKey:
    """The key to sign with: ``path``, else ``$SHARKLIB_KEY``, else the default key.

    Only the default key is created when missing (and its id printed once);
    an explicitly named key that is missing is an error, never replaced.
    """
    explicit = path if path is not None else os.environ.get(ENV_KEY) or None
    target = Path(explicit) if explicit else default_key_path()
    cached = _loaded.get(target)
    if cached is not None:
        return cached
    if explicit is None and create and not target.exists():
        key, created = _create_once(target)
        if created:
            from sharklib.common.safety import notice

            # past the replay copy: a reuse of this run must not say it again
            notice(f"created signing key {key.keyid[:16]} at {target}")
    else:
        key = _load_private(target)
        _warn_if_readable(target)
    _loaded[target] = key
    return key


def load_public_key(data: bytes, source: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Parse a PEM public key (or the public half of a PEM private key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    try:
        if b"PRIVATE KEY" in data:
            priv = serialization.load_pem_private_key(data, password=None)
            if not isinstance(priv, Ed25519PrivateKey):
                raise ValueError("not Ed25519")
            return priv.public_key()
        pub = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(f"not a usable PEM key ({exc})", source) from None
    if not isinstance(pub, Ed25519PublicKey):
        raise KeyMaterialError("not an Ed25519 public key", source)
    return pub


def import_public_key(source: str | os.PathLike[str], name: str | None = None) -> tuple[str, Path]:
    """Trust a public key from a PEM file; returns its id and where it was stored."""
    src = Path(source)
    try:
        data = src.read_bytes()
    except OSError as exc:
        raise KeyMaterialError(f"cannot read key: {exc.strerror}", src) from None
    pub = load_public_key(data, src)
    keyid = keyid_of(pub)
    label = name or src.stem
    if not _NAME_RE.match(label):
        raise KeyMaterialError(f"key name {label!r} must be 1-64 letters, digits, '.', '_', '@', '-'")
    dest = trusted_dir() / f"{label}.{keyid[:16]}.pem"
    _refuse_second_name(keyid, label, dest)
    private_dir(trusted_dir())
    atomic_write(dest, public_pem(pub))
    return keyid, dest


def _refuse_second_name(keyid: str, label: str, dest: Path) -> None:
    """One key, one name; one name, one key.

    A key imported twice under two names kept only the last in ``keys
    show``/:func:`trusted_key_names` (keyed by key id), so a trust policy's
    ``imported = "FIRST"`` stopped resolving; a name given to two keys made
    ``imported = NAME`` pick one of them silently. Both are refused, naming
    what is already there; importing the same key under the same name again
    is a no-op.
    """
    for kid, name in imported_key_labels():
        if kid == keyid and name != label:
            raise KeyMaterialError(f"key {keyid[:16]} is already trusted as {name!r}; "
                                   f"a key has one name (remove {name}.{keyid[:16]}.pem from "
                                   f"{trusted_dir()} to rename it)")
        if name == label and kid != keyid:
            raise KeyMaterialError(f"the name {label!r} is already given to key {kid[:16]}; "
                                   "choose another --name")


def trusted_keys(include_own: bool = True) -> dict[str, Ed25519PublicKey]:
    """Key id -> public key for the own default key (if it exists) and every imported key.

    An unreadable file in the trusted directory is skipped with a warning line
    rather than breaking verification of everything else.
    """
    keys: dict[str, Ed25519PublicKey] = {}
    if include_own:
        own = Path(os.environ.get(ENV_KEY) or default_key_path())
        if own.exists():
            with contextlib.suppress(KeyMaterialError):
                k = load_signing_key(own, create=False)
                keys[k.keyid] = k.public
    tdir = trusted_dir()
    if tdir.is_dir():
        for pem in sorted(tdir.glob("*.pem")):
            try:
                pub = load_public_key(pem.read_bytes(), pem)
            except (KeyMaterialError, OSError) as exc:
                sys.stderr.write(f"sharklib: warning: skipping trusted key: {exc}\n")
                continue
            keys[keyid_of(pub)] = pub
    return keys


def imported_key_labels() -> list[tuple[str, str]]:
    """(key id, name) of every imported key file, all of them.

    Unlike :func:`trusted_key_names` (one label per key id, for display), a
    key imported under two names before such imports were refused keeps both
    here, so a trust policy's ``imported = NAME`` resolves either.
    """
    labels: list[tuple[str, str]] = []
    tdir = trusted_dir()
    if tdir.is_dir():
        for pem in sorted(tdir.glob("*.pem")):
            label, _, short = pem.name[: -len(".pem")].rpartition(".")
            with contextlib.suppress(KeyMaterialError, OSError):
                labels.append((keyid_of(load_public_key(pem.read_bytes(), pem)), label or short))
    return labels


def trusted_key_names(include_own: bool = True) -> dict[str, str]:
    """Key id -> a human label (the name it was imported under, or 'own')."""
    names: dict[str, str] = {}
    tdir = trusted_dir()
    if tdir.is_dir():
        for pem in sorted(tdir.glob("*.pem")):
            stem = pem.name[: -len(".pem")]
            label, _, short = stem.rpartition(".")
            with contextlib.suppress(KeyMaterialError, OSError):
                names[keyid_of(load_public_key(pem.read_bytes(), pem))] = label or short
    own = Path(os.environ.get(ENV_KEY) or default_key_path())
    if include_own and own.exists():
        with contextlib.suppress(KeyMaterialError):
            names[load_signing_key(own, create=False).keyid] = "own"
    return names
