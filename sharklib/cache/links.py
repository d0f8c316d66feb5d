"""Ways to materialise a stored object at a path: reflink, hardlink, copy.

Tried in that order (dvc-data's link chain): a reflink (``FICLONE``) shares
blocks copy-on-write, costs milliseconds for gigabytes and leaves the user a
private, writable file; a hardlink shares the inode, so it is used only when
the user opted into read-only outputs (editing one would corrupt the store);
a copy always works. Every function writes to a temporary name in the
destination directory and renames, so a reader never sees a partial file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable
from typing import BinaryIO

from sharklib.cache.store import LinkMode

FICLONE = 0x40049409  # _IOW(0x94, 9, int) from linux/fs.h
_BUFSIZE = 1 << 20

#: errors meaning "this filesystem cannot do that link", so the next strategy is tried.
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS,
                errno.EPERM, errno.EMLINK}


def temp_beside(dest: str) -> str:
    """A fresh, unique temporary name in ``dest``'s directory (same filesystem, so rename works)."""
    d, base = os.path.split(os.path.abspath(dest))
    import tempfile  # here and below, on the first restore: a re-check that restores nothing never does

    fd, tmp = tempfile.mkstemp(prefix=f".{base[:64]}.", suffix=".sharklib-tmp", dir=d)
    os.close(fd)
    return tmp


def write_beside(dest: str, fill: Callable[[BinaryIO], object], read_only: bool) -> None:
    """Put ``dest`` in place whole: ``fill`` writes a fresh temporary beside it, then a rename.

    A reader never sees a half-written output, and a failure leaves ``dest`` as it was.
    """
    tmp = temp_beside(dest)
    try:
        with _into(tmp) as fh:
            fill(fh)
        os.chmod(tmp, 0o444 if read_only else 0o644)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _into(dst: str) -> BinaryIO:
    """Open the fresh, empty temporary ``dst`` for writing *without* ``O_TRUNC``.

    Truncating a file on ext4 (even an empty one) marks it for "replace via
    truncate" protection, which forces its blocks to be allocated and written
    back when it is closed: a gigabyte copy then spent as long in ``close`` as
    in copying.
    """
    return open(dst, "r+b")


def reflink(src: str, dst: str) -> None:
    """Clone ``src``'s blocks into the fresh temporary ``dst`` (OSError where unsupported)."""
    with open(src, "rb") as s, _into(dst) as d:
        fcntl.ioctl(d.fileno(), FICLONE, s.fileno())


def copy_into(src: str, dst: str) -> None:
    """Copy ``src`` into the fresh temporary ``dst`` in the kernel (sendfile), no truncation."""
    with open(src, "rb") as s, _into(dst) as d:
        infd, outfd = s.fileno(), d.fileno()
        offset = 0
        try:
            while True:
                sent = os.sendfile(outfd, infd, offset, 1 << 30)
                if not sent:
                    return
                offset += sent
        except OSError as exc:
            if offset or exc.errno not in (errno.EINVAL, errno.ENOSYS):
                raise
        import shutil

        shutil.copyfileobj(s, d, _BUFSIZE)


def copy_hashing(src: str, dst: str, update: Callable[[bytes | memoryview], object] | None = None,
                 ) -> int:
    """Copy bytes with one reused buffer, feeding each chunk to ``update``; returns the size."""
    total = 0
    with open(src, "rb") as s, _into(dst) as d:
        # a small file needs a small buffer (zeroing a large one costs more than the copy)
        buf = bytearray(min(_BUFSIZE, os.fstat(s.fileno()).st_size + 1 or _BUFSIZE))
        view = memoryview(buf)
        while True:
            n = s.readinto(buf)
            if not n:
                break
            chunk = view[:n]
            if update is not None:
                update(chunk)
            d.write(chunk)
            total += n
    return total


def materialise(src: str, dest: str, *, link: LinkMode = "auto", read_only: bool = False) -> str:
    """Put ``src``'s content at ``dest`` atomically; returns the strategy used.

    ``auto`` tries reflink, then hardlink (only with ``read_only``), then copy.
    The result is mode 0644 (0444 when ``read_only``).
    """
    order: list[str]
    if link == "auto":
        order = ["reflink", "hardlink", "copy"] if read_only else ["reflink", "copy"]
    else:
        order = [link]
    last: OSError | None = None
    for strategy in order:
        tmp = temp_beside(dest)
        try:
            if strategy == "reflink":
                reflink(src, tmp)
            elif strategy == "hardlink":
                os.unlink(tmp)
                os.link(src, tmp)
            else:
                copy_into(src, tmp)  # sendfile: no user-space copy
            if strategy != "hardlink":
                os.chmod(tmp, 0o444 if read_only else 0o644)
            os.replace(tmp, dest)
            return strategy
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if exc.errno not in _UNSUPPORTED or link != "auto":
                raise
            last = exc
    assert last is not None
    raise last
