"""The one small interface every object store implements, and the registry of backends.

A store keeps files by their sha256 and hands them back. Everything else (which
run made which object, when it was last used) lives in the run index
(:mod:`sharklib.cache.index`), so a backend is about a page: the
content-addressed directory, btrfs and ZFS snapshots, and an fsspec remote all
answer the same questions. Like fsspec, a registry maps a backend name to the
module that implements it, imported only when used.

Every object is verified against its digest before it is served
(:meth:`ObjectStore.read`, :meth:`ObjectStore.restore`); a mismatch quarantines
the object and raises :class:`~sharklib.errors.StoreError`.
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator

from sharklib.errors import StoreError
from sharklib.model.run import FrozenRecord

TYPE_CHECKING = False
if TYPE_CHECKING:  # ``typing`` costs a reuse ~2.5 ms of start-up (runner/memo.py reads entries)
    from typing import Any, BinaryIO, Literal

    LinkMode = Literal["auto", "reflink", "hardlink", "copy"]
else:
    LinkMode = str

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_digest(sha256: str, where: str | None = None) -> str:
    """Refuse anything but a lower-case hex sha256: object names become paths and URLs."""
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise StoreError(f"not a sha256 digest: {str(sha256)[:80]!r}", where)
    return sha256


class RemoteUnreachable(StoreError):
    """A remote did not answer (refused, no route, name lookup, timeout).

    Its own class so that a lookup treats it as a miss (the step runs, one line
    says why), ``push``/``pull`` stop at the first one instead of timing out once
    per run, and the CLI prints it as one line rather than as an internal error.
    """


class CacheReadOnly(StoreError):
    """The cache directory cannot be written (permissions, a read-only mount).

    Said as such, naming the directory, instead of SQLite's "unable to open
    database file"; the same line from the lookup and the record, so a run
    prints it once (runs still happen, they are just neither reused nor cached).
    """


class CacheDamaged(CacheReadOnly):
    """The run index is damaged (not a database, a malformed page).

    Unusable like a read-only cache, said once per run with the way out
    (``sharklib cache repair``); the run itself happens, neither reused nor cached.
    """


class CacheUnsafe(CacheReadOnly):
    """A symlink planted where the cache keeps its own directories or files.

    Unusable like a read-only cache (the same one line from the lookup and the
    record), never followed: see :func:`sharklib.cache.cas.refuse_link`.
    """


class ObjectInfo(FrozenRecord):
    """One stored object: its digest and size in bytes (immutable).

    Not a dataclass: every reuse check and record imports this module, and
    ``dataclasses`` (with ``inspect``) cost them ~6 ms.
    """

    __slots__ = ("sha256", "size")
    _fields = __match_args__ = ("sha256", "size")
    sha256: str
    size: int

    def __init__(self, sha256: str, size: int) -> None:
        self._set(sha256=sha256, size=size)


class Restored(FrozenRecord):
    """What :meth:`ObjectStore.restore` did: the path written and the link strategy used."""

    __slots__ = ("path", "strategy")
    _fields = __match_args__ = ("path", "strategy")
    path: str
    strategy: str

    def __init__(self, path: str, strategy: str) -> None:
        self._set(path=path, strategy=strategy)


class ObjectStore(ABC):
    """Files by sha256. Implementations must make every write atomic and verify every read.

    ``snapshot`` is the hook for copy-on-write backends: called once per recorded
    run before its outputs are put, so those backends can freeze the workspace
    and serve the outputs from the frozen copy. Plain stores ignore it.
    """

    name: str = ""

    @abstractmethod
    def put(self, path: str, sha256: str | None = None) -> ObjectInfo:
        """Store the file at ``path``; when ``sha256`` is given the stored bytes must match it."""

    @abstractmethod
    def put_bytes(self, data: bytes) -> ObjectInfo:
        """Store a small byte string (recorded stdout/stderr)."""

    @abstractmethod
    def has(self, sha256: str) -> bool:
        """Whether the object is present (not whether it is intact: see :meth:`verify`)."""

    @abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """The object's bytes as a stream, *unverified*; callers that serve use read/restore."""

    @abstractmethod
    def restore(self, sha256: str, dest: str, *, link: LinkMode = "auto",
                read_only: bool = False) -> Restored:
        """Write the verified object atomically to ``dest`` (temp file beside it, then rename)."""

    @abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove the object; a missing object is not an error."""

    @abstractmethod
    def list(self) -> Iterator[ObjectInfo]:
        """Every object present."""

    @abstractmethod
    def verify(self, sha256: str, *, full: bool = False) -> bool:
        """True when the object's bytes match its name; ``full`` re-reads even if unchanged."""

    @abstractmethod
    def quarantine(self, sha256: str) -> None:
        """Move a bad object aside so it is never served again (kept for inspection)."""

    def read(self, sha256: str) -> bytes:
        """The verified bytes of a (small) object: hashing what was read is the check."""
        with self.open(sha256) as fh:
            data = fh.read()
        from sharklib.hashing import sha256_bytes

        if sha256_bytes(data) != sha256:
            self.quarantine(sha256)
            raise StoreError(f"object {sha256} does not match its digest (quarantined)",
                             self.describe())
        return data

    def snapshot(self, run_id: str, root: str) -> str | None:
        """Freeze the workspace for one run (copy-on-write backends); None when not supported."""
        return None

    def describe(self) -> str:
        """Where the store lives, for messages."""
        return self.name

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (database handles, clones)."""


#: backend name -> "module:Class"; imported only when asked for.
REGISTRY: dict[str, str] = {
    "cas": "sharklib.cache.cas:ContentStore",
    "btrfs": "sharklib.cache.btrfs:BtrfsStore",
    "zfs": "sharklib.cache.zfs:ZfsStore",
    "remote": "sharklib.cache.remote:RemoteStore",
}


def store_class(name: str) -> type[ObjectStore]:
    """The class registered under ``name``."""
    try:
        target = REGISTRY[name]
    except KeyError:
        raise StoreError(f"unknown store backend {name!r} (known: {', '.join(REGISTRY)})") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def open_store(name: str, **options: Any) -> ObjectStore:
    """Instantiate a backend by name (``cas``, ``btrfs``, ``zfs``, ``remote``)."""
    return store_class(name)(**options)
