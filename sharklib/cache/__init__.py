"""Stores, the run index and the shared cache: what was made, kept by content.

* :mod:`sharklib.cache.store`: the small :class:`ObjectStore` interface and the backend registry;
* backends: :mod:`~sharklib.cache.cas` (default), :mod:`~sharklib.cache.btrfs`,
  :mod:`~sharklib.cache.zfs`, :mod:`~sharklib.cache.remote` (any fsspec URL);
* :mod:`sharklib.cache.index`: the SQLite run index, whose rows hold entries in the format of
  :mod:`sharklib.cache.entry` and the reuse facts of :mod:`sharklib.cache.facts`;
* :mod:`sharklib.cache.runcache`: the three put together for the runner;
* :mod:`sharklib.cache.maintenance`: ls, du, gc, verify, push, pull.
"""

from __future__ import annotations

from sharklib._lazy import lazy_attributes

TYPE_CHECKING = False

_WHERE = {"IndexEntry": "entry", "StoredObject": "entry", "RunIndex": "index",
          "RunCache": "runcache", "ObjectInfo": "store", "ObjectStore": "store",
          "Restored": "store", "open_store": "store"}

if TYPE_CHECKING:
    from sharklib.cache.entry import IndexEntry, StoredObject
    from sharklib.cache.index import RunIndex
    from sharklib.cache.runcache import RunCache
    from sharklib.cache.store import ObjectInfo, ObjectStore, Restored, open_store

# loaded on first use: reading an entry (the reuse memo's path) must not import sqlite3
__getattr__ = lazy_attributes(__name__, _WHERE)

__all__ = ["IndexEntry", "ObjectInfo", "ObjectStore", "Restored", "RunCache", "RunIndex",
           "StoredObject", "open_store"]
