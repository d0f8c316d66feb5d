"""Digests of files, fast and never twice.

* :func:`sha256_file` reads a file once into a reused buffer (``readinto``
  beat ``mmap`` on this machine) so hashing runs at the speed of sha256 itself.
* :func:`hash_files` hashes many files in parallel threads: ``hashlib``
  releases the GIL for large updates, so the cores are all used.
* :class:`StatCache` remembers digests by (device, inode, size, mtime_ns,
  ctime_ns) in SQLite so an unchanged file is answered with one ``stat``.
* :func:`atomic_write` is how every sharklib file is written.
"""

from __future__ import annotations

from sharklib._lazy import lazy_attributes

# ``typing`` is not imported at run time (~2.5 ms): a captured script loads this package
TYPE_CHECKING = False

# Names are loaded on first use (PEP 562): ``atomic_write`` or the digest functions must not
# bring in the stat cache, whose ``sqlite3`` import would also apply sharklib's own sqlite3
# patch inside a captured script that never uses SQLite.
_WHERE = {
    "atomic_write": "atomic",
    "StreamingDigest": "digest", "hash_files": "digest", "listing_digest": "digest",
    "on_disk": "digest", "sha256_bytes": "digest", "sha256_file": "digest",
    "StatCache": "statcache",
}

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

if TYPE_CHECKING:
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


__getattr__ = lazy_attributes(__name__, _WHERE)
