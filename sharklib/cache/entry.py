"""The run-index entry format: one recorded run as the cache keeps and exchanges it.

An :class:`IndexEntry` is stored as JSON in the SQLite run index
(:mod:`sharklib.cache.index`) and is also the unit exchanged with a remote cache
(:mod:`sharklib.cache.remote`), so it is parsed as untrusted input:
:meth:`IndexEntry.from_dict` refuses anything of the wrong shape with a one-line
:class:`~sharklib.errors.StoreError`. Kept apart from the SQLite code because a
remote and the runner need the format without the database.
"""

from __future__ import annotations

import json

from sharklib.cache.compact import entry_value, pack_entry
from sharklib.cache.store import check_digest
from sharklib.errors import StoreError
from sharklib.model import Run
from sharklib.model.run import decode_path, encode_path, probes_from

TYPE_CHECKING = False
if TYPE_CHECKING:  # no ``typing`` at run time: a reuse from its memo parses an entry
    from typing import Any

ENTRY_VERSION = 1
#: ``streams``: both streams as one ordered (descriptor, bytes) log, replayed as the run wrote it
ROLES = ("output", "stdout", "stderr", "streams")


class StoredObject:
    """An object a run left: an output file (``path`` relative to the root) or a stream.

    A plain class, not a dataclass: generating a dataclass's methods costs ~2 ms of
    start-up in every process that opens the index, a captured script's reuse check
    included. Treated as immutable (compared and hashed by value).
    """

    __slots__ = ("mode", "path", "role", "sha256", "size")

    def __init__(self, role: str, path: str, sha256: str, size: int, mode: int = 0o644) -> None:
        self.role, self.path, self.sha256, self.size, self.mode = role, path, sha256, size, mode

    def _fields(self) -> tuple[str, str, str, int, int]:
        return (self.role, self.path, self.sha256, self.size, self.mode)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredObject) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (f"StoredObject(role={self.role!r}, path={self.path!r}, sha256={self.sha256!r}, "
                f"size={self.size!r}, mode={self.mode!r})")

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "path": encode_path(self.path), "sha256": self.sha256,
                "size": self.size, "mode": self.mode}


class IndexEntry:
    """One recorded run as the cache keeps it.

    ``inputs`` are ``(path, sha256)`` pairs with paths relative to the project
    root when they were inside it (so a colleague's checkout elsewhere matches),
    absolute otherwise; ``modules`` likewise for local code modules; ``probes``
    ``(path, answer)`` pairs of project files the run asked about without reading
    them (``os.path.exists``...), answer as :func:`sharklib.model.run.probe_text`.

    Parsed from storage, the full :class:`~sharklib.model.Run` is built only when
    asked for (:attr:`run`): a no-op re-check needs just the few facts kept
    as attributes (id, start, end, exit status), which keeps a check cheap even
    for runs that read 100,000 files.
    """

    __slots__ = ("_run", "_run_dict", "_where", "attestation", "ended", "exit_status", "inputs",
                 "key", "key_parts", "modules", "objects", "probes", "root", "run_id", "started")

    def __init__(self, key: str, run: Run | None, root: str, objects: list[StoredObject],
                 inputs: list[tuple[str, str]] | None = None,
                 modules: list[tuple[str, str]] | None = None, *,
                 run_dict: dict[str, Any] | None = None, where: str | None = None,
                 key_parts: dict[str, Any] | None = None,
                 attestation: dict[str, Any] | None = None,
                 probes: list[tuple[str, str]] | None = None) -> None:
        self.key = key
        #: what the key was digested from (``RunKeyParts.to_dict``), so ``--explain`` can
        #: name the first difference when a key is not found; None in older entries
        self.key_parts = key_parts
        #: the DSSE envelope, signed at record time, over :meth:`signed_part`: the entry's proof.
        #: Everything else here is a hint for finding the run (it may come from a shared remote
        #: anyone with write access can edit); reuse acts only on what this envelope signs.
        self.attestation = attestation
        self.root = root
        self.objects = objects
        self.inputs = inputs or []
        self.modules = modules or []
        self.probes = probes or []
        self._run = run
        self._run_dict = run_dict
        self._where = where
        if run is not None:
            self.run_id, self.started, self.ended = run.run_id, run.started, run.ended
            self.exit_status = run.exit_status
        else:
            assert run_dict is not None
            self.run_id = str(run_dict["run_id"])
            self.started = float(run_dict["started"])
            ended = run_dict.get("ended")
            self.ended = None if ended is None else float(ended)
            status = run_dict.get("exit_status")
            self.exit_status = None if status is None else int(status)

    @property
    def run(self) -> Run:
        if self._run is None:
            try:
                self._run = Run.from_dict(self._run_dict or {})
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise StoreError(f"malformed run in cache index entry: {exc}",
                                 self._where) from None
        return self._run

    def run_data(self) -> dict[str, Any]:
        """The run as plain JSON data (no parsing cost when it came from storage)."""
        return self._run_dict if self._run_dict is not None else self.run.to_dict()

    @property
    def duration(self) -> float:
        return 0.0 if self.ended is None else max(0.0, self.ended - self.started)

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)

    def outputs(self) -> list[StoredObject]:
        return [o for o in self.objects if o.role == "output"]

    def stream(self, role: str) -> StoredObject | None:
        return next((o for o in self.objects if o.role == role), None)

    @property
    def where(self) -> str | None:
        """Where the entry was read from (a remote entry's URL), if known."""
        return self._where

    def signed_part(self) -> dict[str, Any]:
        """The entry without its attestation: what the attestation signs."""
        return {
            "version": ENTRY_VERSION, "key": self.key, "root": encode_path(self.root),
            "run": self.run_data(), "objects": [o.to_dict() for o in self.objects],
            "inputs": [[encode_path(p), s] for p, s in self.inputs],
            "modules": [[encode_path(p), s] for p, s in self.modules],
            **({"key_parts": self.key_parts} if self.key_parts is not None else {}),
            # only when there are some: an entry signed before probes existed verifies as signed
            **({"probes": [[encode_path(p), t] for p, t in self.probes]} if self.probes else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        d = self.signed_part()
        if self.attestation is not None:
            d["attestation"] = self.attestation
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Any, where: str | None = None) -> IndexEntry:
        """Parse an untrusted entry; any deviation is a one-line StoreError naming ``where``.

        Object digests are checked strictly (they become paths and URLs); input
        digests are only ever compared, so they are only checked to be strings.
        """
        try:
            if not isinstance(d, dict) or d.get("version") != ENTRY_VERSION:
                raise ValueError("unknown entry version")
            key = d["key"]
            if not (isinstance(key, str) and key.startswith("sha256:")):
                raise ValueError("bad run key")
            check_digest(key[7:], where)
            run_dict = d["run"]
            if not isinstance(run_dict, dict):
                raise ValueError("run is not an object")
            if run_dict.get("run_key") not in (None, key):
                raise ValueError("run key does not match the entry")
            objects = []
            for o in d["objects"]:
                role = o["role"]
                if role not in ROLES:
                    raise ValueError(f"unknown object role {role!r}")
                mode = int(o.get("mode", 0o644)) & 0o777
                objects.append(StoredObject(role, decode_path(str(o["path"])),
                                            check_digest(o["sha256"], where), int(o["size"]),
                                            mode))
            pairs: dict[str, list[tuple[str, str]]] = {}
            for name in ("inputs", "modules"):
                items = d.get(name, [])
                if not isinstance(items, list):
                    raise ValueError(f"{name} is not a list")
                pairs[name] = [(decode_path(p), s) if isinstance(p, str) and isinstance(s, str)
                               else _bad_pair(name) for p, s in items]
            probes = list(probes_from(d.get("probes")).items())
            attestation = d.get("attestation")
            if attestation is not None and not isinstance(attestation, dict):
                raise ValueError("attestation is not an object")
            return cls(key=key, run=None, root=decode_path(str(d["root"])), objects=objects,
                       inputs=pairs["inputs"], modules=pairs["modules"], run_dict=run_dict,
                       where=where, attestation=attestation, probes=probes,
                       key_parts=d["key_parts"] if isinstance(d.get("key_parts"), dict) else None)
        except StoreError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"malformed cache index entry: {exc}", where) from None

    @classmethod
    def from_json(cls, text: str | bytes, where: str | None = None) -> IndexEntry:
        """Parse an entry's JSON, or the compact bytes the index and packs keep
        (:func:`sharklib.cache.compact.pack_entry`), as untrusted input."""
        try:
            data = entry_value(text)
        except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise StoreError(f"cache index entry is not JSON: {exc}", where) from None
        return cls.from_dict(data, where)

    def to_stored(self) -> bytes:
        """The compact bytes the index keeps (:func:`sharklib.cache.compact.pack_entry`)."""
        return pack_entry(self.to_dict())


def _bad_pair(name: str) -> tuple[str, str]:
    raise ValueError(f"malformed {name} entry")
