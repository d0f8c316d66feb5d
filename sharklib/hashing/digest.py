"""sha256 of files and streams."""

from __future__ import annotations

import contextlib
import io
import os
import queue
import threading
from collections.abc import Iterable
from typing import Any

CHUNK = 1 << 20
_OWN_SUFFIXES = (".intoto.jsonl", ".sharklib-tmp")
_OWN_PREFIXES = (".sharklib-",)
PIPELINE_MIN = 8 << 20


def _sha256(data: bytes = b"") -> Any:
    import hashlib  # on first use: a re-check that hashes nothing never loads OpenSSL (~2.5 ms)

    return hashlib.sha256(data)


def sha256_bytes(data: bytes) -> str:
    return _sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk: int = CHUNK) -> tuple[str, int]:
    """Hex sha256 and size of a file, read once.

    Large files are read by a second thread into alternating buffers while
    this one hashes, so reading (which releases the GIL) overlaps with hashing
    (which does too) and the hash function alone sets the pace.
    """
    with open(path, "rb", buffering=0) as fh:
        try:
            big = os.fstat(fh.fileno()).st_size >= PIPELINE_MIN
        except OSError:
            big = False
        if big:
            return _sha256_pipelined(fh, chunk)
        h = _sha256()
        buf = bytearray(chunk)
        view = memoryview(buf)
        size = 0
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            size += n
    return h.hexdigest(), size


def _sha256_pipelined(fh: io.RawIOBase, chunk: int) -> tuple[str, int]:
    h = _sha256()
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[bytearray, int] | BaseException | None] = queue.SimpleQueue()
    for _ in range(3):
        free.put(bytearray(chunk))

    def reader() -> None:
        try:
            while True:
                buf = free.get()
                n = fh.readinto(buf)
                if not n:
                    full.put(None)
                    return
                full.put((buf, n))
        except BaseException as exc:  # handed to the hashing thread, re-raised there
            full.put(exc)

    t = threading.Thread(target=reader, name="sharklib-read", daemon=True)
    t.start()
    size = 0
    while True:
        item = full.get()
        if item is None:
            break
        if isinstance(item, BaseException):
            t.join()
            raise item
        buf, n = item
        h.update(memoryview(buf)[:n])
        size += n
        free.put(buf)
    t.join()
    return h.hexdigest(), size


def listing_digest(path: str) -> tuple[str, int]:
    """sha256 of a directory's sorted entry names, and their count.

    A script that lists a directory (``os.listdir``, ``glob``, ``ls``) depends
    on which files are there: such a read is recorded as the directory's path
    with a trailing ``/`` and this digest, so adding a file changes it.
    sharklib's own files (sidecars, temporary files of atomic writes) are not
    data and are left out, so signing or countersigning never changes a listing.
    """
    names = sorted(n for n in os.listdir(path.rstrip("/") or "/")
                   if not n.endswith(_OWN_SUFFIXES) and not n.startswith(_OWN_PREFIXES))
    return _sha256("\0".join(names).encode("utf-8", "surrogateescape")).hexdigest(), len(names)


def on_disk(path: str) -> bool:
    """True when ``path`` can be digested now: a regular file, or a directory listing (``dir/``)."""
    if path.endswith("/"):
        return os.path.isdir(path)
    return os.path.isfile(path)


SERIAL_BYTES = 4 << 20


def _small(paths: list[str]) -> bool:
    """A few small files: hashing them here beats starting a thread pool."""
    if len(paths) > 64:
        return False
    total = 0
    for p in paths:
        with contextlib.suppress(OSError):
            total += os.stat(p).st_size
        if total > SERIAL_BYTES:
            return False
    return True


def hash_files(paths: Iterable[str], workers: int | None = None) -> dict[str, tuple[str, int]]:
    """Digests of many files, in parallel. Unreadable files are left out of the result.

    A path ending in ``/`` stands for a directory listing (:func:`listing_digest`).
    """
    unique = list(dict.fromkeys(paths))
    if not unique:
        return {}
    listings: dict[str, tuple[str, int]] = {}
    for p in [p for p in unique if p.endswith("/")]:
        with contextlib.suppress(OSError):
            listings[p] = listing_digest(p)
    if listings or any(p.endswith("/") for p in unique):
        unique = [p for p in unique if not p.endswith("/")]
        return {**listings, **hash_files(unique, workers)} if unique else listings

    def one(p: str) -> tuple[str, tuple[str, int] | None]:
        try:
            return p, sha256_file(p)
        except OSError:
            return p, None

    if len(unique) == 1 or _small(unique):
        results = [one(p) for p in unique]
    else:
        n = min(workers or os.cpu_count() or 2, len(unique))
        try:
            # imported here: importing it registers an atexit hook, refused during shutdown
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=n, thread_name_prefix="sharklib-hash") as pool:
                results = list(pool.map(one, unique))
        except RuntimeError:  # interpreter shutting down (atexit): no new threads
            results = [one(p) for p in unique]
    return {p: d for p, d in results if d is not None}


class StreamingDigest:
    """sha256 of bytes as they stream past (downloads), without keeping them."""

    __slots__ = ("_h", "size")

    def __init__(self) -> None:
        self._h = _sha256()
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)
        self.size += len(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()
