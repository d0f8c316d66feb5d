"""The proof behind a reuse: a run-index entry is a hint, its signed attestation the proof.

An index entry (``index.sqlite`` locally, ``runs/<key>/<id>.json.zst`` on a
remote) only says where to look. Anyone with write access to a shared cache
directory or bucket can edit one: empty its recorded inputs (a stale result
is served for changed inputs), point an output at another valid object, add
an output ``.git/hooks/pre-commit``, or one overwriting the user's script.

So :func:`attach` signs every entry when it is recorded: a DSSE envelope over
an in-toto statement whose subjects are every object the entry restores or
replays (path, digest, mode) and whose predicate is the whole entry (run key,
root, recorded inputs and modules, the run). Before a reuse, :func:`prove`
returns the entry *as signed*, and only when

* a signature verifies against a key the user trusts for reuse (their own
  key by default; ``[reuse] trusted = [...]`` in ``<config>/trust.toml``,
  see docs/trust.md),
* the statement is about this run key and names every object it restores,
* and the hint agrees with it byte for byte.

A hint that disagrees with its own trusted attestation was edited: it is
quarantined (removed from the local index, moved to the remote's
``quarantine/runs/``) and named in one warning; the step then runs. An entry
signed only by keys the user does not trust for reuse (a colleague's, an
attacker's), or not signed at all (recorded by an older sharklib), is passed
over silently: the step runs and is recorded under the user's own key.

Checking an Ed25519 signature needs ``cryptography`` (~7 ms to import, and the
key to load), on every reuse. So a signature that verified once, or that this
user just made, is remembered in ``<config>/verified/``: an empty file named by
the sha256 of (key id, payload type, payload, signature). That directory is the
user's own, 0700 beside their private key, never the (maybe shared) cache, so
someone who can write the cache cannot add to it; and any change to the entry,
its envelope or its signature names another file, which is not there, so the
signature is checked in full. Whom the user trusts is still decided every time:
the own key's id is remembered with the key file's identity (device, inode,
size, times) and used only while no ``trust.toml`` exists (a policy's keys can
expire, so with one every key is loaded as before).

No subject may lie inside a version-control or scheduler directory
(``.git/``, ``.hg/``, ``.snakemake/``, ...): a run that wrote there is not
cached, and an entry naming such a path is never restored.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Collection, Mapping

from sharklib.errors import SharkError, StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:  # no ``typing`` at run time (a reuse from its memo proves here)
    from typing import Any

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from sharklib.attest.keys import SigningKey
    from sharklib.cache.entry import IndexEntry
    from sharklib.cache.runcache import RunCache

PREDICATE_TYPE = "https://sharklib.dev/cache-entry/v1"
#: directories that belong to a version-control system or a workflow scheduler, never to a step
PRIVATE_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs", ".jj", ".pijul", "CVS",
                          ".sharklib", ".snakemake", ".nextflow", ".dvc", ".doit.db"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

Warn = Callable[[str], None]


def private_dir(path: str) -> str | None:
    """The version-control/scheduler directory a recorded (root-relative) path lies in, if any."""
    for part in path.replace("\\", "/").split("/"):
        if part in PRIVATE_DIRS:
            return part
    return None


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def entry_statement(entry: IndexEntry) -> dict[str, Any]:
    """The in-toto statement signed for an entry: its objects as subjects, itself as predicate."""
    from sharklib.model.provenance import STATEMENT_TYPE
    from sharklib.model.run import encode_path

    subjects = [{"name": encode_path(o.path) if o.role == "output" else o.role,
                 "digest": {"sha256": o.sha256},
                 "annotations": {"role": o.role, "size": o.size, "mode": o.mode}}
                for o in entry.objects]
    if not subjects:  # an in-toto statement has at least one subject: the run itself then
        subjects = [{"name": f"run/{entry.run_id}", "digest": {"sha256": entry.key[7:]},
                     "annotations": {"role": "run"}}]
    return {"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": PREDICATE_TYPE,
            "predicate": {"entry": entry.signed_part()}}


def attach(entry: IndexEntry, key: SigningKey | None = None) -> str:
    """Sign ``entry`` with the user's key (the one sidecars are signed with), in place.

    Returns the id of the key it was signed with.

    Raises :class:`StoreError` for a run that wrote inside a version-control or
    scheduler directory: a reuse never restores there, so it is not cached.
    """
    for obj in entry.objects:
        where = private_dir(obj.path) if obj.role == "output" else None
        if where is not None:
            raise StoreError(f"it wrote {obj.path}, inside {where}/, which a reuse never "
                             f"restores into")
    from sharklib.attest.dsse import sign_payload
    from sharklib.attest.keys import load_signing_key

    try:
        key = key or load_signing_key()
    except SharkError as exc:
        raise StoreError(f"the run cannot be signed ({exc})") from None
    entry.attestation = sign_payload(_canonical(entry_statement(entry)), key)
    # made just now with this key: the first reuse need not load cryptography to check it
    _remember_verified(entry.attestation, [key.keyid])
    if reuse_key_ids() is None:
        _note_own_key(key.keyid, str(key.path))
    return key.keyid


# -- whom the user trusts for reuse -----------------------------------------------------------
def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _key_stamp(path: str) -> str | None:
    """The identity of a key file as text: any replacement or edit changes it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _memo_dir() -> str:
    from sharklib.config import config_dir

    return os.path.join(str(config_dir()), "verified")


def _own_key_path() -> str:
    from sharklib.config import ENV_KEY, config_dir

    return os.environ.get(ENV_KEY) or os.path.join(str(config_dir()), "keys", "default.pem")


_ids_memo: dict[str, frozenset[str]] = {}


def reuse_key_ids() -> frozenset[str] | None:
    """The ids of the keys trusted for reuse when known without loading any key, else None.

    Only the own key, remembered by :func:`_note_own_key`, and only while there is no
    ``trust.toml`` (see the module docstring). The same object is returned while the
    key file stays the same.
    """
    from sharklib.config import config_dir

    if os.path.exists(os.path.join(str(config_dir()), "trust.toml")):
        return None
    stamp = _key_stamp(_own_key_path())
    if stamp is None:
        return None
    known = _ids_memo.get(stamp)
    if known is not None:
        return known
    try:
        with open(os.path.join(_memo_dir(), "own-key"), encoding="ascii") as fh:
            remembered, _, keyid = fh.read().strip().partition(" ")
    except (OSError, ValueError):
        return None
    if remembered != stamp or not _HEX64.match(keyid):
        return None
    _ids_memo.clear()
    _ids_memo[stamp] = known = frozenset({keyid})
    return known


def trusted_key_ids() -> Collection[str]:
    """The ids of the keys trusted for reuse: :func:`reuse_key_ids` when they are known
    without loading a key, else those of :func:`reuse_keys` (a dict by id)."""
    ids = reuse_key_ids()
    return ids if ids is not None else reuse_keys()


def _note_own_key(keyid: str, path: str) -> None:
    """Remember the own key's id beside its file's identity (best effort)."""
    if os.path.abspath(path) != os.path.abspath(_own_key_path()):
        return
    stamp = _key_stamp(path)
    if stamp is None:
        return
    try:
        from pathlib import Path

        from sharklib.config import private_dir as make_private
        from sharklib.hashing import atomic_write

        make_private(Path(_memo_dir()))
        atomic_write(Path(_memo_dir()) / "own-key", f"{stamp} {keyid}\n".encode("ascii"))
    except Exception:
        pass  # a later reuse loads the key, as without the memo


def _signature_memo(keyid: str, envelope: Mapping[str, Any], sig: str) -> str:
    from sharklib.model.runkey import sha256_constructor

    h = sha256_constructor()()
    for part in ("sharklib-verified-signature-v1", keyid, str(envelope.get("payloadType", "")),
                 str(envelope.get("payload", "")), sig):
        data = part.encode("utf-8", "surrogateescape")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    name: str = h.hexdigest()
    return os.path.join(_memo_dir(), name[:2], name)


def _verified_before(envelope: Mapping[str, Any], ids: Collection[str]) -> str | None:
    """The id of a key of ``ids`` whose signature of ``envelope`` verified before (or which
    this user just made), else None."""
    for s in envelope.get("signatures") or []:
        keyid = str(s.get("keyid", ""))
        if keyid in ids and isinstance(s.get("sig"), str) and \
                os.path.isfile(_signature_memo(keyid, envelope, s["sig"])):
            return keyid
    return None


def _remember_verified(envelope: Mapping[str, Any], keyids: list[str]) -> None:
    """Note that the signatures by ``keyids`` of ``envelope`` verify (best effort)."""
    try:
        from pathlib import Path

        from sharklib.config import private_dir as make_private

        for s in envelope.get("signatures") or []:
            keyid = str(s.get("keyid", ""))
            if keyid not in keyids or not isinstance(s.get("sig"), str):
                continue
            path = _signature_memo(keyid, envelope, s["sig"])
            make_private(Path(os.path.dirname(path)))
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW,
                                 0o600))
    except Exception:
        pass  # the next reuse checks the signature in full


_keys_memo: dict[tuple[Any, ...], dict[str, Ed25519PublicKey]] = {}


def reuse_keys() -> dict[str, Ed25519PublicKey]:
    """Key id -> public key of every key whose signed entries this user reuses.

    The own signing key always; more only by the ``[reuse]`` table of
    ``<config>/trust.toml``. Read once per process while the files stay the same.
    """
    from sharklib.attest.keys import default_key_path, trusted_dir
    from sharklib.config import ENV_KEY, config_dir

    own = os.environ.get(ENV_KEY) or str(default_key_path())
    policy = str(config_dir() / "trust.toml")
    tdir = str(trusted_dir())
    memo = (own, _stamp(own), policy, _stamp(policy), tdir, _stamp(tdir))
    known = _keys_memo.get(memo)
    if known is None:
        known = _load_reuse_keys(own, policy)
        _keys_memo.clear()
        _keys_memo[memo] = known
        if len(known) == 1 and not os.path.exists(policy):
            _note_own_key(next(iter(known)), own)
    return known


def _load_reuse_keys(own: str, policy: str) -> dict[str, Ed25519PublicKey]:
    from sharklib.attest.keys import load_signing_key

    keys: dict[str, Ed25519PublicKey] = {}
    if os.path.exists(own):
        try:
            k = load_signing_key(own, create=False)
        except SharkError:
            pass  # no usable own key: nothing of one's own to reuse; recording says why
        else:
            keys[k.keyid] = k.public
    if os.path.isfile(policy):
        keys.update(_policy_reuse_keys(policy))
    return keys


def _fail(path: str, message: str) -> StoreError:
    return StoreError(f"trust policy: {message}", path)


def _policy_reuse_keys(path: str) -> dict[str, Ed25519PublicKey]:
    """The keys ``[reuse] trusted`` names: keys of ``[keys]``, groups, imported names, ids."""
    import datetime as _dt
    import tomllib

    from sharklib.attest.keys import imported_key_labels, keyid_of, load_public_key, trusted_keys

    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise _fail(path, f"cannot read it ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path, f"not valid TOML ({exc})") from None
    section = doc.get("reuse")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise _fail(path, "[reuse] must be a table")
    names = section.get("trusted", [])
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _fail(path, "reuse.trusted must be a list of key names")
    groups = doc.get("groups") or {}
    table = doc.get("keys") or {}
    if not isinstance(groups, dict) or not isinstance(table, dict):
        raise _fail(path, "[keys] and [groups] must be tables")
    imported = imported_key_labels()
    known = trusted_keys(include_own=False)
    today = _dt.datetime.now(_dt.UTC).date()
    out: dict[str, Ed25519PublicKey] = {}
    pending = list(names)
    seen: set[str] = set()
    while pending:
        name = pending.pop(0)
        if name in seen or name == "own":
            continue
        seen.add(name)
        if name in groups:
            members = groups[name]
            pending.extend([members] if isinstance(members, str) else list(members))
            continue
        spec = table.get(name)
        if isinstance(spec, dict):
            expires = spec.get("expires")
            if isinstance(expires, _dt.datetime):
                expires = expires.date()
            if isinstance(expires, str):
                try:
                    expires = _dt.date.fromisoformat(expires)
                except ValueError:
                    raise _fail(path, f"keys.{name}.expires must be a date like 2027-06-30") \
                        from None
            if isinstance(expires, _dt.date) and today > expires:
                continue  # her signatures no longer count, for reuse as for verify
            if "pem" in spec:
                pem = os.path.join(os.path.dirname(path), str(spec["pem"]))
                try:
                    with open(pem, "rb") as fh:
                        pub = load_public_key(fh.read(), pem)
                except OSError as exc:
                    raise _fail(path, f"keys.{name}: cannot read {pem}: {exc.strerror}") \
                        from None
                out[keyid_of(pub)] = pub
                continue
            wanted = str(spec.get("id", "")).lower() if "id" in spec else None
            if wanted is None and "imported" in spec:
                hits = [kid for kid, label in imported if label == str(spec["imported"])]
                if not hits:
                    raise _fail(path, f"keys.{name}: no imported key named "
                                      f"{spec['imported']!r} (sharklib keys import FILE --name NAME)")
                wanted = hits[0]
            if wanted is None or not _HEX64.match(wanted):
                raise _fail(path, f"keys.{name} needs one of id, imported or pem")
        elif _HEX64.match(name.lower()):
            wanted = name.lower()
        else:
            hits = [kid for kid, label in imported if label == name]
            if not hits:
                raise _fail(path, f"reuse.trusted names unknown key or group {name!r}")
            wanted = hits[0]
        trusted = known.get(wanted)
        if trusted is None:
            raise _fail(path, f"reuse.trusted: key {wanted[:16]} ({name}) is not imported "
                              f"(sharklib keys import FILE --name {name})")
        out[wanted] = trusted
    return out


# -- the check ---------------------------------------------------------------------------------
def _first_difference(hint: Mapping[str, Any], signed: Mapping[str, Any]) -> str:
    for name in ("key", "root", "objects", "inputs", "probes", "modules", "run", "version"):
        if _canonical(hint.get(name)) != _canonical(signed.get(name)):
            return {"objects": "its outputs", "inputs": "its recorded inputs",
                    "probes": "its recorded probes",
                    "modules": "its recorded modules"}.get(name, f"its {name}")
    return "its content"


def prove(entry: IndexEntry, key: str, cache: RunCache, warn: Warn) -> IndexEntry | None:
    """``entry`` as its trusted attestation signs it, or None (the step then runs).

    None, silently: no attestation (an older sharklib), or no signature by a
    key trusted for reuse. None with one warning, the entry quarantined: a
    signature by a trusted key that does not verify, a statement about
    another run key or other objects, or a hint that differs from what is
    signed. Raises :class:`StoreError` for a broken reuse trust policy.
    """
    envelope = entry.attestation
    if not isinstance(envelope, dict):
        return None
    # the own key's id without loading it (no trust.toml), else every trusted key, loaded
    trusted = trusted_key_ids()
    if not trusted:
        return None
    # an entry object never changes once parsed (the index hands the same one out again): a
    # runner re-checking thousands of steps verifies each signature once per process
    memo = _proven.get(entry.run_id)
    if memo is not None and memo[0] is entry and memo[1] is trusted:
        return memo[2]
    got = _prove(entry, envelope, trusted, key, cache, warn)
    signed = None if got is None else got[0]
    if signed is not None:
        if len(_proven) >= 4096:
            _proven.clear()
        _proven[entry.run_id] = (entry, trusted, signed)
    return signed


_proven: dict[str, tuple[IndexEntry, Collection[str], IndexEntry]] = {}


def _prove(entry: IndexEntry, envelope: dict[str, Any], trusted: Collection[str],
           key: str, cache: RunCache, warn: Warn,
           remember: bool = True) -> tuple[IndexEntry, str] | None:
    """The entry as signed and the id of a trusted key whose signature on it verifies.

    ``trusted``: the loaded keys by id, or only the own key's id (:func:`reuse_key_ids`).
    """
    from sharklib.attest.dsse import payload_of
    from sharklib.cache.entry import IndexEntry

    sigs = envelope.get("signatures")
    if not isinstance(sigs, list) or not all(isinstance(s, dict) for s in sigs):
        _quarantine(entry, cache, warn, "its attestation has no signature list")
        return None
    if not any(str(s.get("keyid", "")) in trusted for s in sigs):
        return None  # signed by no one trusted for reuse: not ours to judge, just not reused
    try:
        signer = _verified_before(envelope, trusted)
        if signer is None:
            from sharklib.attest.dsse import check_signatures

            keys = trusted if isinstance(trusted, dict) else reuse_keys()
            good, _bad = check_signatures(envelope, keys)
            if not good:
                _quarantine(entry, cache, warn, "its attestation's signature does not verify")
                return None
            if remember:
                _remember_verified(envelope, good)
            signer = good[0]
        if envelope.get("payloadType") != "application/vnd.in-toto+json":
            raise ValueError("wrong payload type")
        statement = json.loads(payload_of(envelope))
        if not isinstance(statement, dict) or statement.get("predicateType") != PREDICATE_TYPE:
            raise ValueError("not a cache-entry statement")
        signed_dict = statement["predicate"]["entry"]
        signed = IndexEntry.from_dict(signed_dict, entry.where)
    except (ValueError, KeyError, TypeError, RecursionError, StoreError) as exc:
        _quarantine(entry, cache, warn, f"its attestation is malformed ({exc})")
        return None
    if signed.key != key or signed.run_id != entry.run_id:
        _quarantine(entry, cache, warn, "its attestation is about another run")
        return None
    if _canonical(statement.get("subject")) != _canonical(entry_statement(signed)["subject"]):
        _quarantine(entry, cache, warn, "its attestation's subjects are not its objects")
        return None
    hint = entry.signed_part()
    if _canonical(hint) != _canonical(signed_dict):
        _quarantine(entry, cache, warn, f"{_first_difference(hint, signed_dict)} "
                                        f"differ from what its attestation signs")
        return None
    for obj in signed.objects:
        where = private_dir(obj.path) if obj.role == "output" else None
        if where is not None:
            _quarantine(entry, cache, warn, f"it names {obj.path}, inside {where}/")
            return None
    signed.attestation = envelope
    return signed, signer


def why_not(entry: IndexEntry, key: str) -> str | None:
    """Why ``entry`` would not be reused for lack of proof, in words; None if it would be.

    For ``--explain`` and the planner: nothing is quarantined or written here
    (:func:`prove` does that when a run is actually looked up).
    """
    return proven_by(entry, key)[1]


def proven_by(entry: IndexEntry, key: str) -> tuple[str | None, str | None]:
    """(the id of a key trusted for reuse whose signature on ``entry`` verifies and which
    the entry agrees with, None) or (None, why not, in words). Nothing is quarantined or
    written here.
    """
    from sharklib.cache.facts import claimed_signers
    from sharklib.runner.decide import signer_reason

    envelope = entry.attestation
    keys = reuse_keys()
    ids = claimed_signers(envelope)
    reason = signer_reason(entry.run_id, ids, keys)
    if reason is not None:
        return None, reason
    assert isinstance(envelope, dict)

    def note(_message: str) -> None:
        pass

    class _NoCache:  # quarantine nothing: say it instead
        def quarantine_entry(self, _entry: IndexEntry) -> str:
            return ""

    got = _prove(entry, envelope, keys, key, _NoCache(), note,  # type: ignore[arg-type]
                 remember=False)
    if got is None:
        return None, f"past run {entry.run_id[:12]} disagrees with its signed attestation"
    return got[1], None


class _NoQuarantine:
    """A hint that is no index entry (the reuse memo) is refused, never quarantined: the
    index, asked next, judges its own entry."""

    def quarantine_entry(self, _entry: IndexEntry) -> str:
        return ""


def prove_hint(entry: IndexEntry, key: str, trusted: Collection[str]) -> IndexEntry | None:
    """:func:`prove` for a hint kept outside the index (:mod:`sharklib.runner.memo`): the entry
    as signed by a key of ``trusted`` (:func:`trusted_key_ids`), or None, silently."""
    envelope = entry.attestation
    if not isinstance(envelope, dict) or not trusted:
        return None

    def ignore(_message: str) -> None:
        pass

    got = _prove(entry, envelope, trusted, key, _NoQuarantine(), ignore)  # type: ignore[arg-type]
    return None if got is None else got[0]


def _quarantine(entry: IndexEntry, cache: RunCache, warn: Warn, why: str) -> None:
    where = cache.quarantine_entry(entry)
    warn(f"{where}: run {entry.run_id[:12]} disagrees with its signed attestation: {why} "
         f"(quarantined); running the step instead")
