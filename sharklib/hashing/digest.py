"""sha256 of files and streams."""

from __future__ import annotations

import contextlib
import io
import os
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

CHUNK = 1 << 20
#: buffer size of the two-thread read of a large file (see :func:`sha256_file`)
PIPELINE_CHUNK = 4 << 20
_OWN_SUFFIXES = (".intoto.jsonl", ".sharklib-tmp")
_OWN_PREFIXES = (".sharklib-",)
PIPELINE_MIN = 8 << 20


def _sha256(data: bytes = b"") -> Any:
    import hashlib  # on first use: a re-check that hashes nothing never loads OpenSSL (~2.5 ms)

    return hashlib.sha256(data)


def sha256_bytes(data: bytes) -> str:
    return str(_sha256(data).hexdigest())


def sha256_file(path: str | os.PathLike[str], chunk: int = CHUNK) -> tuple[str, int]:
    """Hex sha256 and size of a file, read once.

    A file up to ``chunk`` bytes is read with one ``read`` of its size plus one byte (no
    buffer to allocate and zero: most files a step touches are tiny, and a 1 MiB buffer
    per file cost more than hashing it; a short read is the file's end, so no second
    ``read`` is needed). Larger files are read into one reused buffer; files
    of ``PIPELINE_MIN`` or more are read by a second thread into three alternating
    :data:`PIPELINE_CHUNK` buffers while this one hashes, so reading (which releases the
    GIL) overlaps with hashing (which does too) and the hash function alone sets the pace.
    Measured by the hashing thread's own CPU time (which a loaded machine does not
    distort): with 1 MiB buffers it spent 3.5 % more than hashing the same bytes in
    memory, with 4 MiB 0.5 % (a quarter as many queue hand-overs). ``mmap`` costs no copy
    at all, but a file truncated by another process while it is mapped kills the process
    with SIGBUS, and this runs inside the user's script.
    """
    return _hash_path(os.fspath(path), chunk)


def _hash_path(path: str, chunk: int = CHUNK,
               before_large: Callable[[], None] | None = None) -> tuple[str, int]:
    """:func:`sha256_file`; ``before_large`` is called once the file is known to be large."""
    digest, size, _ = _hash_path_stat(path, chunk, before_large, want_stat=False)
    return digest, size


def _hash_path_stat(path: str, chunk: int = CHUNK,
                    before_large: Callable[[], None] | None = None, want_stat: bool = True,
                    ) -> tuple[str, int, os.stat_result | None]:
    """:func:`_hash_path`, plus the file's ``fstat`` taken *after* its last byte was read.

    A caller that took ``os.stat(path)`` before compares the two signatures: equal
    (same device, inode, size, mtime, ctime) means nothing wrote to the file while it
    was read, so the digest is of one state of it (see :func:`hash_files_stable`).
    Without ``want_stat`` that ``fstat`` is skipped (None): a syscall per tiny file.
    """
    after = _fstat if want_stat else _no_stat
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            size = os.fstat(fd).st_size
        except OSError:
            size = 0
        if size <= chunk:
            # one read of the expected size plus one byte: a short read of a regular file
            # is its end, so a tiny file costs one read (the file may have grown: go on)
            h = _sha256()
            total = 0
            want = size + 1 if size else chunk
            while True:
                data = os.read(fd, want)
                if not data:
                    break
                h.update(data)
                total += len(data)
                if len(data) < want:
                    break
                want = chunk
            return h.hexdigest(), total, after(fd)
        if before_large is not None and size >= SERIAL_BYTES:
            before_large()
        with open(fd, "rb", buffering=0, closefd=False) as fh:
            if size >= PIPELINE_MIN:
                with contextlib.suppress(OSError, AttributeError):  # a larger read-ahead from disk
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
                return (*_sha256_pipelined(fh, max(chunk, PIPELINE_CHUNK)), after(fd))
            h = _sha256()
            buf = _buffer(chunk)
            view = memoryview(buf)
            total = 0
            while True:
                n = fh.readinto(buf)
                if not n:
                    break
                h.update(view[:n])
                total += n
            return h.hexdigest(), total, after(fd)
    finally:
        os.close(fd)


def _no_stat(fd: int) -> None:
    return None


def _fstat(fd: int) -> os.stat_result | None:
    try:
        return os.fstat(fd)
    except OSError:
        return None


def signature(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What must stay equal for a file to be "the same bytes": device, inode, size, mtime, ctime."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


#: how often a file that changed while it was read is read again before it is given up
STABLE_TRIES = 3


_buffers = threading.local()


def _buffer(size: int) -> bytearray:
    """This thread's reused read buffer of ``size`` bytes (allocated and zeroed once)."""
    buf: bytearray | None = getattr(_buffers, "buf", None)
    if buf is None or len(buf) != size:
        buf = _buffers.buf = bytearray(size)
    return buf


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


def sha256_copy(src_fd: int, dst_fd: int, chunk: int = CHUNK) -> tuple[str, int]:
    """Copy ``src_fd`` to ``dst_fd`` from their current offsets and hash the bytes on the way.

    One read of the source serves both the digest and the copy (reading a file twice
    to hash it and then store it cost a second full pass). This thread reads each
    chunk and writes it while a second thread hashes the same buffer (``os.write``
    and ``hashlib`` both release the GIL), so the copy runs at about the speed of
    the slower of the two instead of their sum. A buffer is read into again only
    once it is both written and hashed. Returns (hex sha256, bytes copied).
    """
    h = _sha256()
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
    for _ in range(4):
        free.put(bytearray(chunk))
    failed: list[BaseException] = []

    def hasher() -> None:
        while True:
            item = full.get()
            if item is None:
                return
            buf, n = item
            try:
                h.update(memoryview(buf)[:n])
            except BaseException as exc:  # re-raised in the copying thread
                failed.append(exc)
            free.put(buf)

    t = threading.Thread(target=hasher, name="sharklib-hash-copy", daemon=True)
    t.start()
    total = 0
    try:
        while not failed:
            buf = free.get()
            n = os.readv(src_fd, (buf,))
            if not n:
                free.put(buf)
                break
            full.put((buf, n))
            view = memoryview(buf)[:n]
            while view:
                view = view[os.write(dst_fd, view):]
            total += n
    finally:
        full.put(None)
        t.join()
    if failed:
        raise failed[0]
    return str(h.hexdigest()), total


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


def hash_files(paths: Iterable[str], workers: int | None = None) -> dict[str, tuple[str, int]]:
    """Digests of many files, in parallel once it pays. Unreadable files are left out.

    A path ending in ``/`` stands for a directory listing (:func:`listing_digest`).

    This thread starts hashing the files in order by itself; only once it has hashed
    ``SERIAL_BYTES`` (or meets a file that large) do helper threads join, and then
    every thread takes the next file from one shared position. Tiny files (the
    common case under a tracer: 20,000 files of a few bytes) are therefore hashed by
    a plain serial loop with no thread, future or ``stat`` per file: a thread pool
    with one future per file made them 3.5x slower than the loop, and threads cannot
    help there (hashing a few bytes holds the GIL). Larger files are hashed by
    ``workers`` threads at once, since ``hashlib`` releases the GIL for large updates.
    """
    got = _hash_many(list(dict.fromkeys(paths)), None, workers)
    return {p: (d[0], d[1]) for p, d in got.items()}


def hash_files_stable(stats: dict[str, os.stat_result], workers: int | None = None,
                      ) -> tuple[dict[str, tuple[str, int, os.stat_result]], list[str]]:
    """Digests of files whose ``os.stat`` the caller took just before, proved unchanged.

    Each file's ``fstat`` after its last byte was read must have the signature
    (:func:`signature`) of the stat taken before: then no write happened in between
    and the digest is of one state of the file. A file that changed while it was read
    is read again (with a fresh stat), up to :data:`STABLE_TRIES` times; one that
    keeps changing is returned in the second list and has no digest, so a caller can
    never record a digest of bytes that were never all in the file at once.
    Returns ({path: (digest, size, stat under which it holds)}, [unstable paths]).
    Unreadable and vanished files are in neither.
    """
    out: dict[str, tuple[str, int, os.stat_result]] = {}
    unstable: list[str] = []
    todo = dict(stats)
    for attempt in range(STABLE_TRIES):
        got = _hash_many(list(todo), todo, workers)
        again: dict[str, os.stat_result] = {}
        for p, before in todo.items():
            d = got.get(p)
            if d is None:
                continue
            after = d[2]
            if after is not None and signature(after) == signature(before) and \
                    d[1] == before.st_size:
                out[p] = (d[0], d[1], after)
                continue
            try:  # changed while it was read: read it once more, from a new starting point
                st = os.stat(p)
            except OSError:
                continue
            if attempt + 1 < STABLE_TRIES:
                again[p] = st
            else:
                unstable.append(p)
        if not again:
            break
        todo = again
    return out, unstable


def _hash_many(unique: list[str], stats: dict[str, os.stat_result] | None,
               workers: int | None) -> dict[str, tuple[str, int, os.stat_result | None]]:
    """The loop behind :func:`hash_files` (see there); results carry each file's last fstat."""
    if not unique:
        return {}
    result: dict[str, tuple[str, int, os.stat_result | None]] = {}
    if any(p.endswith("/") for p in unique):
        for p in [p for p in unique if p.endswith("/")]:
            with contextlib.suppress(OSError):
                result[p] = (*listing_digest(p), None)
        unique = [p for p in unique if not p.endswith("/")]
    n_threads = min(workers or os.cpu_count() or 2, len(unique))
    out: list[tuple[str, int, os.stat_result | None] | None] = [None] * len(unique)
    lock = threading.Lock()
    state = {"next": 0, "hashed": 0, "helpers": n_threads <= 1}
    helpers: list[threading.Thread] = []
    # sizes known (the caller's stats): helpers start at once when there are enough bytes
    start_now = stats is not None and n_threads > 1 and \
        sum(st.st_size for st in stats.values()) >= 2 * SERIAL_BYTES

    def take() -> int:
        with lock:
            i = state["next"]
            state["next"] = i + 1
            return i

    def work(main: bool) -> None:
        while True:
            i = take()
            if i >= len(unique):
                return
            try:
                d = _hash_path_stat(unique[i], before_large=start_helpers if main else None,
                                    want_stat=stats is not None)
            except OSError:
                continue
            out[i] = d
            if main and not state["helpers"]:
                state["hashed"] += d[1]
                if state["hashed"] >= SERIAL_BYTES:
                    start_helpers()

    def start_helpers() -> None:
        if state["helpers"]:
            return
        state["helpers"] = True
        try:
            for k in range(n_threads - 1):
                t = threading.Thread(target=work, args=(False,), name=f"sharklib-hash-{k}",
                                     daemon=True)
                t.start()
                helpers.append(t)
        except RuntimeError:  # interpreter shutting down (atexit): no new threads
            pass

    try:
        if start_now:
            start_helpers()
        work(True)
    finally:
        for t in helpers:
            t.join()
    for p, d in zip(unique, out, strict=True):
        if d is not None:
            result[p] = d
    return result


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
        return str(self._h.hexdigest())
