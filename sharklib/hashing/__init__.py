"""Digests of files, fast and never twice.

* :func:`sha256_file` reads a file once into a reused buffer (``readinto``
  beat ``mmap`` on this machine) so hashing runs at the speed of sha256 itself.
* :func:`hash_files` hashes many files in parallel threads: ``hashlib``
  releases the GIL for large updates, so the cores are all used.
* :class:`StatCache` remembers digests by (device, inode, size, mtime_ns,
  ctime_ns) in SQLite so an unchanged file is answered with one ``stat``.
* :func:`atomic_write` is how every sharklib file is written.
"""

from sharklib.hashing.atomic import atomic_write
from sharklib.hashing.digest import (
    StreamingDigest,
    hash_files,
    listing_digest,
    on_disk,
    sha256_bytes,
    sha256_file,
)
from sharklib.hashing.statcache import StatCache

__all__ = [
    "StatCache",
    "StreamingDigest",
    "atomic_write",
    "hash_files",
    "listing_digest",
    "on_disk",
    "sha256_bytes",
    "sha256_file",
]
