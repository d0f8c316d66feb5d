"""A shared cache at any fsspec URL: zstd-compressed objects and index entries.

Layout under the URL (``s3://bucket/prefix``, ``file:///shared/cache``, ...)::

    objects/ab/abcdef....zst          one compressed object per sha256
    runs/<key hex>/<run id>.json.zst  one compressed index entry per recorded run
    quarantine/                       objects that failed verification

Colleagues point their caches at the same URL: a local miss pulls the entry
and its objects through, a new run is pushed. Nothing from the remote is
trusted: objects are decompressed while hashed and refused unless the bytes
match their name; entries are parsed as hostile input
(:meth:`~sharklib.cache.entry.IndexEntry.from_dict`).

Writes are atomic: on object stores (S3, GCS) an upload becomes visible only
when complete; on a local or mounted filesystem the object is written under a
temporary name and renamed.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import io
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TypeVar

import fsspec
import zstandard

from sharklib.cache.entry import IndexEntry
from sharklib.cache.links import write_beside
from sharklib.cache.store import (
    LinkMode,
    ObjectInfo,
    ObjectStore,
    RemoteUnreachable,
    Restored,
    check_digest,
)
from sharklib.errors import StoreError
from sharklib.hashing import StreamingDigest, sha256_file

_CHUNK = 1 << 20
#: an index entry larger than this (decompressed) is refused as hostile.
MAX_ENTRY_BYTES = 64 << 20
#: seconds to wait for an S3 connection; botocore's default (60 s, 5 tries with back-off)
#: made a remote that is down cost every run and every push seconds before one line said so.
CONNECT_TIMEOUT = 3.0
#: tries in all (botocore's "standard" retry mode, jittered back-off) for one S3 request.
S3_ATTEMPTS = 2

#: exception class names (anywhere in the MRO or the cause chain) that mean "no answer".
_UNREACHABLE = frozenset({
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "ProxyConnectionError", "ClientConnectorError", "ClientConnectionError",
    "ServerTimeoutError", "ServerDisconnectedError", "FSTimeoutError", "ConnectionError",
    "TimeoutError", "gaierror",
})

_F = TypeVar("_F", bound=Callable[..., Any])


def _unreachable(exc: BaseException) -> BaseException | None:
    """The error in ``exc``'s cause chain that says the remote did not answer, if any."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if any(c.__name__ in _UNREACHABLE for c in type(cur).__mro__):
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def _answering(method: _F) -> _F:
    """Turn "the remote did not answer" into :class:`RemoteUnreachable` naming the URL."""
    @functools.wraps(method)
    def wrapper(self: RemoteStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            cause = _unreachable(exc)
            if cause is None:
                raise
            reason = str(cause).strip() or type(cause).__name__
            raise RemoteUnreachable(f"remote {self.url} unreachable: {reason}") from None
    return wrapper  # type: ignore[return-value]


def default_options(url: str) -> dict[str, Any]:
    """Storage options that bound how long a remote that is down can hold a run up."""
    if url.split("://", 1)[0].lower() in ("s3", "s3a"):
        return {"config_kwargs": {"connect_timeout": CONNECT_TIMEOUT,
                                  "retries": {"total_max_attempts": S3_ATTEMPTS,
                                              "mode": "standard"}}}
    return {}


class RemoteStore(ObjectStore):
    """Objects and index entries under an fsspec URL, zstd-compressed.

    A ``file://`` remote's folder is made on first use (``create``), so a push to a new share
    works; a reader that must write nothing (a query) passes ``create=False``.
    """

    name = "remote"

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None,
                 level: int = 3, threads: int = -1, create: bool = True) -> None:
        self.url = url.rstrip("/")
        options = {**default_options(self.url), **(storage_options or {})}
        try:
            self.fs, self.base = fsspec.core.url_to_fs(self.url, **options)
        except ImportError as exc:  # the protocol's filesystem package is not installed
            from sharklib.extras import missing_extra

            if self.url.startswith(("s3://", "s3a://")):
                raise missing_extra("s3fs", f"the remote cache {self.url}") from None
            raise StoreError(f"the remote cache {self.url}: {exc}") from None
        self.base = self.base.rstrip("/")
        self.level = level
        self.threads = threads
        self._local = "file" in _protocols(self.fs)
        if self._local and create:
            try:
                self.fs.makedirs(self.base, exist_ok=True)
            except OSError as exc:  # a share that is not mounted, a file where a folder belongs
                raise RemoteUnreachable(f"the remote cache folder cannot be used: "
                                        f"{exc.strerror or exc}", self.url) from None

    def describe(self) -> str:
        return self.url

    # -- names -----------------------------------------------------------------------------
    def _obj(self, sha256: str) -> str:
        check_digest(sha256, self.url)
        return self._unlinked(f"{self.base}/objects/{sha256[:2]}/{sha256}.zst")

    def _entry(self, key: str, run_id: str) -> str:
        if not run_id or "/" in run_id or run_id.startswith(".") or len(run_id) > 200:
            raise StoreError(f"unusable run id {run_id[:80]!r}", self.url)
        return self._unlinked(f"{self.base}/runs/{check_digest(key.removeprefix('sha256:'), self.url)}/"
                              f"{run_id}.json.zst")

    def _unlinked(self, path: str) -> str:
        """``path`` on a ``file://`` remote, refusing a symlink planted on the way to it.

        A shared directory is writable by others: ``objects/ab -> elsewhere`` would receive
        uploads (and their temporaries) in a place the remote does not own. Every component
        below the remote's base is checked with ``lstat``; the base itself is the user's.
        """
        if not self._local:
            return path
        from sharklib.cache.cas import _UNUSED, refuse_file_link, refuse_link

        parts = path[len(self.base) + 1:].split("/")
        where = self.base
        try:
            for part in parts[:-1]:
                where = f"{where}/{part}"
                refuse_link(where, self.base)
            st = refuse_file_link(path, self.base)
        except StoreError as exc:  # the remote is refused; the local cache goes on working
            raise StoreError(exc.message.removesuffix(_UNUSED), self.url) from None
        if st is not None and not stat.S_ISREG(st.st_mode):
            # a FIFO planted in a share blocks the reader's open() for ever; a device reads
            # without end
            raise StoreError(f"refusing to open {path[len(self.base) + 1:]}: not a regular "
                             f"file", self.url)
        return path

    # -- atomic upload ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _upload(self, target: str) -> Iterator[BinaryIO]:
        """A writable stream that appears at ``target`` only when closed without error."""
        if self._local:
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            tmp = f"{target}.{uuid.uuid4().hex}.tmp"
        else:
            tmp = target
        try:
            with self.fs.open(tmp, "wb") as fh:
                yield fh
            if tmp != target:
                os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm(tmp)
            raise

    def _compressor(self) -> zstandard.ZstdCompressor:
        return zstandard.ZstdCompressor(level=self.level, threads=self.threads)

    # -- ObjectStore -----------------------------------------------------------------------
    @_answering
    def put(self, path: str, sha256: str | None = None) -> ObjectInfo:
        if sha256 is None:
            sha256, _ = sha256_file(path)
        target = self._obj(sha256)
        if self.fs.exists(target):
            return ObjectInfo(sha256, os.path.getsize(path))
        sd = StreamingDigest()
        try:
            with self._upload(target) as raw, open(path, "rb") as src, \
                    self._compressor().stream_writer(raw, size=os.fstat(src.fileno()).st_size,
                                                     closefd=False) as zw:
                while chunk := src.read(_CHUNK):
                    sd.update(chunk)
                    zw.write(chunk)
                zw.flush(zstandard.FLUSH_FRAME)
                if sd.hexdigest() != sha256:
                    raise StoreError(f"file changed since it was recorded (sha256 "
                                     f"{sd.hexdigest()[:12]}…, expected {sha256[:12]}…)", path)
        except OSError as exc:
            if _unreachable(exc) is not None:
                raise
            raise StoreError(f"cannot upload object {sha256}: {exc}", self.url) from None
        return ObjectInfo(sha256, sd.size)

    @_answering
    def put_bytes(self, data: bytes) -> ObjectInfo:
        sd = StreamingDigest()
        sd.update(data)
        sha = sd.hexdigest()
        target = self._obj(sha)
        if not self.fs.exists(target):
            with self._upload(target) as fh:
                fh.write(self._compressor().compress(data))
        return ObjectInfo(sha, len(data))

    @_answering
    def has(self, sha256: str) -> bool:
        return bool(self.fs.exists(self._obj(sha256)))

    @_answering
    def open(self, sha256: str) -> BinaryIO:
        try:
            raw = self.fs.open(self._obj(sha256), "rb")
        except FileNotFoundError:
            raise StoreError(f"object {sha256} is not in the remote", self.url) from None
        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[return-value]

    def copy_to(self, sha256: str, sink: Any) -> int:
        """Decompress the object into ``sink`` (``write``), raising unless it hashes right."""
        sd = StreamingDigest()
        try:
            with self.open(sha256) as src:
                while chunk := src.read(_CHUNK):
                    sd.update(chunk)
                    sink.write(chunk)
        except zstandard.ZstdError as exc:
            self.quarantine(sha256)
            raise StoreError(f"object {sha256} is not valid zstd ({exc}; quarantined)",
                             self.url) from None
        if sd.hexdigest() != sha256:
            self.quarantine(sha256)
            raise StoreError(f"object {sha256} does not match its digest (quarantined)",
                             self._obj(sha256))
        return sd.size

    def restore(self, sha256: str, dest: str, *, link: LinkMode = "auto",
                read_only: bool = False) -> Restored:
        write_beside(dest, lambda fh: self.copy_to(sha256, fh), read_only)
        return Restored(dest, "download")

    def read(self, sha256: str) -> bytes:
        buf = io.BytesIO()
        self.copy_to(sha256, buf)
        return buf.getvalue()

    def verify(self, sha256: str, *, full: bool = False) -> bool:
        try:
            self.copy_to(sha256, _Null())
        except StoreError:
            return False
        return True

    def quarantine(self, sha256: str) -> None:
        src = self._obj(sha256)
        with contextlib.suppress(Exception):
            if self._local:
                self._unlinked(f"{self.base}/quarantine/{sha256}.zst")
                self.fs.makedirs(f"{self.base}/quarantine", exist_ok=True)
            self.fs.mv(src, f"{self.base}/quarantine/{sha256}.zst")
        with contextlib.suppress(Exception):  # never serve it again, even if the move failed
            if self.fs.exists(src):
                self.fs.rm(src)

    @_answering
    def delete(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._obj(sha256))

    @_answering
    def object_names(self) -> set[str]:
        """The digest of every object the remote holds, from one listing (nothing opened)."""
        try:
            found = self.fs.find(f"{self.base}/objects")
        except (FileNotFoundError, NotADirectoryError):
            return set()
        names = (str(p).rsplit("/", 1)[-1] for p in found)
        return {n[:64] for n in names if n.endswith(".zst") and len(n) == 68}

    @_answering
    def list(self) -> Iterator[ObjectInfo]:
        # gathered before returning, so that a remote going away is raised here, as one line
        root = f"{self.base}/objects"
        try:
            found = self.fs.find(root, detail=True)
        except FileNotFoundError:
            return iter(())
        out = []
        for path, info in sorted(found.items()):
            name = path.rsplit("/", 1)[-1]
            if name.endswith(".zst") and len(name) == 68:
                out.append(ObjectInfo(name[:64], self._content_size(path, info)))
        return iter(out)

    def _content_size(self, path: str, info: dict[str, Any]) -> int:
        """The uncompressed size, from the zstd frame header (compressed size if unknown)."""
        try:
            if self._local and path.startswith(self.base + "/"):
                self._unlinked(path)
            with self.fs.open(path, "rb") as fh:
                size = zstandard.frame_content_size(fh.read(18))
        except (OSError, StoreError, zstandard.ZstdError):
            size = -1
        return size if size >= 0 else int(info.get("size") or 0)

    # -- index entries ---------------------------------------------------------------------
    @_answering
    def put_entry(self, entry: IndexEntry) -> bool:
        """Upload an index entry (after its objects); False if it was already there."""
        target = self._entry(entry.key, entry.run_id)
        if self.fs.exists(target):
            return False
        with self._upload(target) as fh:
            fh.write(self._compressor().compress(entry.to_json().encode()))
        return True

    @_answering
    def entry_paths(self, key: str | None = None) -> builtins.list[str]:  # `list`: the method
        """Entry files for one run key (or all of them)."""
        if key is not None:
            where = f"{self.base}/runs/{check_digest(key.removeprefix('sha256:'), self.url)}"
            try:
                names = self.fs.ls(where, detail=False)
            except FileNotFoundError:
                return []
        else:
            try:
                names = self.fs.find(f"{self.base}/runs")
            except FileNotFoundError:
                return []
        return sorted(str(n) for n in names if str(n).endswith(".json.zst"))

    @_answering
    def get_entry(self, path: str) -> IndexEntry:
        where = f"{self.fs.unstrip_protocol(path)}"
        if self._local and path.startswith(self.base + "/"):
            self._unlinked(path)
        try:
            with self.fs.open(path, "rb") as fh:
                raw = fh.read(MAX_ENTRY_BYTES)
            data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read(
                MAX_ENTRY_BYTES + 1)
            if len(data) > MAX_ENTRY_BYTES:
                raise StoreError("cache index entry is too large", where)
        except zstandard.ZstdError as exc:
            raise StoreError(f"cache index entry is not valid zstd: {exc}", where) from None
        except OSError as exc:
            raise StoreError(f"cannot read cache index entry: {exc}", where) from None
        entry = IndexEntry.from_json(data, where)
        if not path.endswith(f"/{entry.run_id}.json.zst") or \
                f"/runs/{entry.key.removeprefix('sha256:')}/" not in path:
            raise StoreError("cache index entry is filed under another key or run id", where)
        return entry


    @_answering
    def clean_tmp(self, max_age: float, now: float | None = None) -> int:
        """Remove ``*.tmp`` under ``objects/`` and ``runs/`` older than ``max_age`` seconds.

        A push killed mid-upload leaves ``objects/ab/<sha>.zst.<uuid>.tmp`` (the upload's
        temporary, renamed into place only when complete) that nothing else removes. Other
        machines upload without any lock of ours, so only an age tells a leftover from an
        upload in progress. Returns how many were removed.
        """
        import datetime as _dt
        import time

        cutoff = (time.time() if now is None else now) - max_age
        removed = 0
        for area in ("objects", "runs"):
            try:
                found = self.fs.find(f"{self.base}/{area}", detail=True)
            except FileNotFoundError:
                continue
            for path, info in found.items():
                if not str(path).endswith(".tmp"):
                    continue
                when = info.get("mtime", info.get("LastModified", info.get("updated")))
                if isinstance(when, _dt.datetime):
                    when = when.timestamp()
                elif isinstance(when, str):
                    try:
                        when = _dt.datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
                    except ValueError:
                        when = None
                if not isinstance(when, (int, float)) or when >= cutoff:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm(path)
                    removed += 1
        return removed

    def quarantine_entry(self, entry: IndexEntry) -> bool:
        """Move the remote's copy of ``entry`` to ``quarantine/runs/`` if it holds these bytes.

        Called when an entry disagrees with its signed attestation: left in place, every
        machine would pull it and warn again. A copy with other content (an honest one
        under the same name) is left alone. Best effort: False when nothing was moved.
        """
        try:
            path = self._entry(entry.key, entry.run_id)
            if not self.fs.exists(path):
                return False
            there = self.get_entry(path)
            if there.to_json() != entry.to_json():
                return False
            dest = self._unlinked(
                f"{self.base}/quarantine/runs/{entry.run_id}.{uuid.uuid4().hex[:8]}.json.zst")
            if self._local:
                self.fs.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
            self.fs.mv(path, dest)
            return True
        except Exception:
            with contextlib.suppress(Exception):  # never serve it again, even if the move failed
                if self.fs.exists(path):
                    self.fs.rm(path)
            return False


class _Null:
    def write(self, data: bytes) -> int:
        return len(data)


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
