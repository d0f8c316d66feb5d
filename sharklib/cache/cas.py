"""The default store: a content-addressed directory of read-only objects.

Layout under the store root::

    objects/ab/abcdef...   one file per sha256, mode 0444, mtime pinned
    pack.sqlite            objects of at most 16 KiB, one row each (see sharklib.cache.pack)
    tmp/                   partial writes (renamed into objects/ when complete)
    quarantine/            objects that failed verification, kept for inspection

An object is written to ``tmp/`` while its digest is computed, checked, then
renamed into place, so a killed writer leaves at most an orphan in ``tmp/``
and never a wrong object under a right name. Serving goes through the stat
cache: an object is re-hashed only when its stat signature changed since it
was last verified, so a multi-gigabyte restore by reflink costs milliseconds
and a tampered object (any write changes mtime and ctime) is still caught.
The objects' mtime is pinned to a fixed old value so a fresh object is never
"racy" in the stat cache's sense.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from sharklib.cache.links import copy_hashing, materialise, reflink, write_beside
from sharklib.cache.pack import PACK, PACK_MAX, Pack
from sharklib.cache.store import (
    CacheUnsafe,
    LinkMode,
    ObjectInfo,
    ObjectStore,
    Restored,
    check_digest,
)
from sharklib.config import make_dirs
from sharklib.errors import StoreError
from sharklib.hashing import StatCache, StreamingDigest, sha256_file
from sharklib.hashing.digest import sha256_copy, signature

_NO_REFLINK = frozenset({errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS})

#: every object's mtime (seconds since the epoch): fixed, old, meaningless.
PINNED_MTIME_NS = 1_000_000_000 * 1_000_000_000


_UNUSED = " (runs are neither reused nor cached while it is there)"

#: (the store's tmp directory, real path, absolute source path) -> (the source's signature
#: when it was copied, sha256, size, the copy in tmp/): outputs hashed while they were copied
#: into the store (:meth:`ContentStore.spool`), waiting for :meth:`ContentStore.put` to
#: commit them; what is never put is removed by :func:`discard_spooled`
_SPOOLED: dict[tuple[str, str], tuple[tuple[int, int, int, int, int], str, int, str]] = {}


def discard_spooled(paths: Iterable[str] | None = None) -> None:
    """Remove the copies :meth:`ContentStore.spool` made (of ``paths``, else all) that no
    ``put`` committed.

    Called when the run will not be recorded after all. Steps traced at once from threads
    of one process (a pipeline) each name their own outputs, so one never removes a copy
    another is about to commit. A copy left by a killed process is a partial write in
    ``tmp/``, which ``clean_tmp`` removes.
    """
    wanted = None if paths is None else {os.path.abspath(p) for p in paths}
    for key in list(_SPOOLED):
        if wanted is None or key[1] in wanted:
            entry = _SPOOLED.pop(key, None)
            if entry is not None:
                with contextlib.suppress(OSError):
                    os.unlink(entry[3])


def refuse_link(path: str, root: str) -> None:
    """Refuse a symlink (or other non-directory) where the cache keeps one of its directories.

    A shared cache directory is writable by others: a planted ``objects/ab -> elsewhere``
    would receive objects (and let ``gc`` delete files) in a place the cache does not own, a
    planted ``tmp`` link would receive every partial write. Checked with ``lstat`` before each
    use; the error names the link in one line.
    """
    st = refuse_file_link(path, root)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise CacheUnsafe(f"refusing to use {os.path.relpath(path, root)}: not a directory"
                          f"{_UNUSED}", root)


def refuse_file_link(path: str, root: str) -> os.stat_result | None:
    """Refuse a symlink in the place of one of the cache's own files (objects, the index).

    Returns the ``lstat`` of what is there (None when nothing is).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise CacheUnsafe(f"refusing to follow a symlink planted in the cache: "
                          f"{os.path.relpath(path, root)} -> {target}{_UNUSED}", root)
    return st


class ContentStore(ObjectStore):
    """Objects by sha256 in a directory; restore by reflink, hardlink (opt-in) or copy."""

    name = "cas"

    def __init__(self, root: str | os.PathLike[str] | None = None,
                 statcache: StatCache | None = None) -> None:
        if root is None:
            from sharklib.config import cache_dir

            root = cache_dir()
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.quarantined = self.root / "quarantine"
        self._where = str(self.root)
        for d in (self.objects, self.tmp, self.quarantined):
            refuse_link(str(d), self._where)
            make_dirs(d)
            refuse_link(str(d), self._where)
        self._objects = str(self.objects)
        self._tmp = str(self.tmp)
        self._no_reflink: set[int] = set()  # devices whose files cannot be cloned into the store
        self._fanout_ok: set[str] = set()  # fan-out directories checked to be real directories
        if statcache is None:
            refuse_file_link(str(self.root / "objects-stat.sqlite"), self._where)
        self.statcache = statcache if statcache is not None else StatCache(
            self.root / "objects-stat.sqlite")
        #: small objects, one row each instead of one file each (sharklib.cache.pack)
        self.pack = Pack(self.root / PACK)
        #: small objects put inside :meth:`batch`, written together at its end (or with the
        #: run's kept entry: :meth:`take_pending`)
        self._pending: dict[str, bytes] | None = None

    def describe(self) -> str:
        return str(self.root)

    def path(self, sha256: str) -> Path:
        return Path(self._path(sha256))

    def _path(self, sha256: str) -> str:
        check_digest(sha256, self._where)
        fan = sha256[:2]
        if fan not in self._fanout_ok:
            # once per fan-out directory and process: a link planted later is still refused
            # by the object's own lstat below and by the O_NOFOLLOW opens
            refuse_link(f"{self._objects}/{fan}", self._where)
            if os.path.isdir(f"{self._objects}/{fan}"):
                self._fanout_ok.add(fan)
        path = f"{self._objects}/{fan}/{sha256}"
        refuse_file_link(path, self._where)
        return path

    # -- writing -------------------------------------------------------------------------
    def _tmpfile(self) -> str:
        import tempfile  # on the first write only: a re-check that restores nothing never needs it

        refuse_link(self._tmp, self._where)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        os.close(fd)
        return tmp

    def _commit(self, tmp: str, sha256: str, size: int) -> ObjectInfo:
        final = self._path(sha256)
        os.chmod(tmp, 0o444)
        os.utime(tmp, ns=(PINNED_MTIME_NS, PINNED_MTIME_NS))
        if os.path.exists(final) and self.verify(sha256):
            os.unlink(tmp)
            return ObjectInfo(sha256, size)
        try:
            os.replace(tmp, final)
        except FileNotFoundError:  # the first object of this fan-out directory
            make_dirs(os.path.dirname(final))
            refuse_link(os.path.dirname(final), self._where)
            os.replace(tmp, final)
        self._remember(final, sha256)
        return ObjectInfo(sha256, size)

    def _remember(self, final: str, sha256: str) -> None:
        remember = getattr(self.statcache, "remember", None)
        if remember is not None:
            remember(final, sha256)
        else:  # prime the stat cache (re-reads once; later serves are a stat)
            self.statcache.digest(final)

    def spool(self, path: str) -> tuple[str, int] | None:
        """Digest and size of ``path``, hashed while its bytes are copied into ``tmp/``.

        For a large output that is about to be recorded: its digest is needed first (for
        the signed record) and its bytes in the store next, and reading it twice cost a
        second full pass. The copy (a reflink where the filesystem clones, then hashed;
        else one read feeding both the hash and the write) waits in ``tmp/`` until
        :meth:`put` of the same path and digest renames it into place, provided the file
        has the same signature (device, inode, size, mtime, ctime) then; otherwise ``put``
        works as without it. None when the file changed while it was copied (its fstat
        after the last byte differs from the one before) or could not be copied: the
        caller then hashes it the ordinary way.
        """
        key = (os.path.realpath(self._tmp), os.path.abspath(path))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        tmp = ""
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                return None
            tmp = self._tmpfile()
            got = self._clone_hashing(fd, tmp, before.st_dev)
            after = os.fstat(fd)
            if signature(after) != signature(before) or got[1] != after.st_size:
                os.unlink(tmp)
                return None
        except OSError:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            return None
        finally:
            os.close(fd)
        old = _SPOOLED.pop(key, None)
        if old is not None:
            with contextlib.suppress(OSError):
                os.unlink(old[3])
        _SPOOLED[key] = (signature(after), got[0], got[1], tmp)
        return got

    def _clone_hashing(self, fd: int, tmp: str, dev: int) -> tuple[str, int]:
        """Put the bytes of ``fd`` into the fresh ``tmp``: reflinked and hashed, or hashed while copied."""
        out = os.open(tmp, os.O_WRONLY | os.O_CLOEXEC)  # no O_TRUNC: see links._into
        try:
            if dev not in self._no_reflink:
                try:
                    import fcntl

                    from sharklib.cache.links import FICLONE

                    fcntl.ioctl(out, FICLONE, fd)
                    return sha256_file(tmp)  # the clone shares the blocks: one read
                except OSError as exc:
                    if exc.errno not in _NO_REFLINK:
                        raise
                    self._no_reflink.add(dev)
            return sha256_copy(fd, out)
        finally:
            os.close(out)

    def _take_spooled(self, path: str, sha256: str | None) -> ObjectInfo | None:
        """Commit the copy :meth:`spool` made of ``path``, when it still stands for the file."""
        if not _SPOOLED:
            return None
        entry = _SPOOLED.pop((os.path.realpath(self._tmp), os.path.abspath(path)), None)
        if entry is None:
            return None
        sig, got, size, tmp = entry
        try:
            same = signature(os.stat(path)) == sig
        except OSError:
            same = False
        if not same or (sha256 is not None and got != sha256):
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return None
        try:
            return self._commit(tmp, got, size)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def put(self, path: str, sha256: str | None = None) -> ObjectInfo:
        spooled = self._take_spooled(path, sha256)
        if spooled is not None:
            return spooled
        if sha256 is not None:
            check_digest(sha256, path)
            existing = self._path(sha256)
            if os.path.exists(existing) and self.verify(sha256):
                return ObjectInfo(sha256, os.stat(existing).st_size)
        small = self._small(path)
        if small is not None:
            return self._put_small(small, sha256, path)
        tmp = self._tmpfile()
        try:
            dev = os.stat(path).st_dev
            try:
                if dev in self._no_reflink:
                    raise OSError(errno.EOPNOTSUPP, "no reflinks from this filesystem")
                reflink(path, tmp)
                got, size = sha256_file(tmp)
            except OSError as exc:
                if exc.errno in _NO_REFLINK:  # e.g. ext4: not tried again (two opens) per object
                    self._no_reflink.add(dev)
                sd = StreamingDigest()
                size = copy_hashing(path, tmp, sd.update)
                got = sd.hexdigest()
            if sha256 is not None and got != sha256:
                raise StoreError(f"file changed since it was recorded (sha256 {got[:12]}…, "
                                 f"expected {sha256[:12]}…)", path)
            return self._commit(tmp, got, size)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @staticmethod
    def _small(path: str) -> bytes | None:
        """The bytes of ``path`` when it is small enough to pack (one open, one read)."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if os.fstat(fd).st_size > PACK_MAX:
                return None
            data = os.read(fd, PACK_MAX + 1)
            if len(data) > PACK_MAX:  # it grew meanwhile: a file of its own after all
                return None
            while chunk := os.read(fd, PACK_MAX + 1 - len(data)):
                data += chunk
                if len(data) > PACK_MAX:
                    return None
            return data
        finally:
            os.close(fd)

    def _put_small(self, data: bytes, sha256: str | None, where: str) -> ObjectInfo:
        sd = StreamingDigest()
        sd.update(data)
        got = sd.hexdigest()
        if sha256 is not None and got != sha256:
            raise StoreError(f"file changed since it was recorded (sha256 {got[:12]}…, "
                             f"expected {sha256[:12]}…)", where)
        if self._pending is not None:
            self._pending[got] = data
        elif not self._packed_ok(got):
            self.pack.put_object(got, data)
        return ObjectInfo(got, len(data))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Small objects put meanwhile are written in one transaction (see :meth:`take_pending`)."""
        self._pending = {}
        try:
            yield
            self.pack.put_many(self.take_pending())
        finally:
            self._pending = None

    def take_pending(self) -> list[tuple[str, bytes]]:
        """The small objects put in the current :meth:`batch` and not yet written (now the
        caller's to write, before anything names them)."""
        if not self._pending:
            return []
        got = [(sha, data) for sha, data in self._pending.items() if not self._packed_ok(sha)]
        self._pending = {}
        return got

    def _packed_ok(self, sha256: str) -> bool:
        data = self.pack.get_object(sha256)
        if data is None:
            return False
        from sharklib.hashing import sha256_bytes

        return sha256_bytes(data) == sha256

    def put_bytes(self, data: bytes) -> ObjectInfo:
        if len(data) <= PACK_MAX:
            return self._put_small(data, None, str(self.root))
        sd = StreamingDigest()
        sd.update(data)
        sha = sd.hexdigest()
        if self.path(sha).exists() and self.verify(sha):
            return ObjectInfo(sha, len(data))
        tmp = self._tmpfile()
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            return self._commit(tmp, sha, len(data))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def put_stream(self, stream: BinaryIO, sha256: str) -> ObjectInfo:
        """Store bytes read from ``stream`` (a remote pull); they must hash to ``sha256``."""
        check_digest(sha256)
        head = stream.read(PACK_MAX + 1)
        if len(head) <= PACK_MAX:
            sd = StreamingDigest()
            sd.update(head)
            if sd.hexdigest() != sha256:
                raise StoreError(f"object {sha256} arrived with different bytes "
                                 f"(sha256 {sd.hexdigest()[:12]}…)", str(self.root))
            return self._put_small(head, sha256, str(self.root))
        tmp = self._tmpfile()
        try:
            sd = StreamingDigest()
            with open(tmp, "wb") as fh:
                sd.update(head)
                fh.write(head)
                while chunk := stream.read(1 << 20):
                    sd.update(chunk)
                    fh.write(chunk)
            if sd.hexdigest() != sha256:
                raise StoreError(f"object {sha256} arrived with different bytes "
                                 f"(sha256 {sd.hexdigest()[:12]}…)", str(self.root))
            return self._commit(tmp, sha256, sd.size)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    # -- reading -------------------------------------------------------------------------
    def has(self, sha256: str) -> bool:
        return os.path.isfile(self._path(sha256)) or self.pack.has_object(sha256) or \
            (self._pending is not None and sha256 in self._pending)

    def open(self, sha256: str) -> BinaryIO:
        try:
            fd = os.open(self._path(sha256), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            data = self.pack.get_object(sha256)
            if data is None:
                raise StoreError(f"object {sha256} is not in the store",
                                 str(self.root)) from None
            import io

            return io.BytesIO(data)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise CacheUnsafe(f"refusing to follow a symlink planted in the cache: "
                                  f"object {sha256}{_UNUSED}", str(self.root)) from None
            raise
        return os.fdopen(fd, "rb")

    def verify(self, sha256: str, *, full: bool = False) -> bool:
        p = self._path(sha256)
        if not os.path.lexists(p):
            return self._packed_ok(sha256)  # small: hashing it is as cheap as a stat
        if full:
            try:
                return sha256_file(p)[0] == sha256
            except OSError:
                return False
        got = self.statcache.digest(p)
        return got is not None and got[0] == sha256

    def restore(self, sha256: str, dest: str, *, link: LinkMode = "auto",
                read_only: bool = False) -> Restored:
        if not os.path.lexists(self._path(sha256)):
            return self._restore_packed(sha256, dest, read_only)
        if not self.has(sha256):
            raise StoreError(f"object {sha256} is not in the store", str(self.root))
        if not self.verify(sha256):
            self.quarantine(sha256)
            raise StoreError(f"object {sha256} does not match its digest (quarantined)",
                             str(self.path(sha256)))
        strategy = materialise(str(self.path(sha256)), dest, link=link, read_only=read_only)
        if strategy == "copy" and not self._same_bytes(dest, sha256):
            with contextlib.suppress(OSError):
                os.unlink(dest)
            self.quarantine(sha256)
            raise StoreError(f"object {sha256} changed during restore (quarantined)",
                             str(self.path(sha256)))
        return Restored(dest, strategy)

    def _restore_packed(self, sha256: str, dest: str, read_only: bool) -> Restored:
        """Write a packed object to ``dest``: verified bytes, temp file beside it, rename."""
        data = self.pack.get_object(sha256)
        if data is None:
            raise StoreError(f"object {sha256} is not in the store", str(self.root))
        from sharklib.hashing import sha256_bytes

        if sha256_bytes(data) != sha256:
            self.quarantine(sha256)
            raise StoreError(f"object {sha256} does not match its digest (quarantined)",
                             str(self.pack.path))
        write_beside(dest, lambda fh: fh.write(data), read_only)
        return Restored(dest, "copy")

    def _same_bytes(self, path: str, sha256: str) -> bool:
        # a copy is cheap to double-check only if the object's stat did not move under us
        return self.verify(sha256)

    # -- housekeeping --------------------------------------------------------------------
    def delete(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(sha256))
        self.pack.delete_object(sha256)

    def quarantine(self, sha256: str) -> None:
        src = self.path(sha256)
        refuse_link(str(self.quarantined), self._where)
        with contextlib.suppress(FileNotFoundError):
            os.replace(src, self.quarantined / sha256)
        data = self.pack.get_object(sha256)
        if data is not None:  # kept for inspection as a file, like any quarantined object
            from sharklib.hashing import atomic_write

            refuse_file_link(str(self.quarantined / sha256), self._where)
            atomic_write(self.quarantined / sha256, data, mode=0o444, fsync=False)
            self.pack.delete_object(sha256)

    def list(self) -> Iterator[ObjectInfo]:
        refuse_link(self._objects, self._where)
        for sub in sorted(self.objects.iterdir()):
            if len(sub.name) == 2:
                refuse_link(str(sub), self._where)
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub):
                name = entry.name
                if len(name) == 64 and name.startswith(sub.name) and entry.is_file():
                    yield ObjectInfo(name, entry.stat().st_size)
        for sha256, size in self.pack.objects():
            yield ObjectInfo(sha256, size)

    def clean_tmp(self, older_than: float | None = None) -> int:
        """Remove partial writes left by killed writers; returns how many.

        ``older_than`` (seconds since the epoch): only those last modified before it, for a
        caller that does not hold the exclusive lock (a live writer's file is recent).
        """
        refuse_link(self._tmp, self._where)  # never delete inside a directory the cache does not own
        n = 0
        for entry in os.scandir(self.tmp):
            with contextlib.suppress(OSError):
                if older_than is not None and entry.stat(follow_symlinks=False).st_mtime >= older_than:
                    continue
                os.unlink(entry.path)
                n += 1
        return n

    def close(self) -> None:
        self.statcache.close()
        self.pack.close()
