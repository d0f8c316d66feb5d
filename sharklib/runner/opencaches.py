"""Open caches kept for a batch of commands (a pipeline run), one per thread and project root.

Opening a :class:`~sharklib.cache.runcache.RunCache` means reading the
project's settings and opening three SQLite databases; for a trivial stage
that costs more than the stage. Within :func:`kept_open`, every command run
from a thread reuses that thread's open cache (SQLite connections and their
transactions must not be shared between threads), and all of them are closed
when the batch ends.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sharklib.cache.runcache import RunCache

T = TypeVar("T")


class _Batch:
    def __init__(self) -> None:
        self.local = threading.local()
        self.opened: list[RunCache] = []
        self.lock = threading.Lock()
        self.memo: dict[Hashable, Any] = {}

    def get(self, root: str) -> RunCache:
        mine: dict[str, RunCache] | None = getattr(self.local, "caches", None)
        if mine is None:
            mine = self.local.caches = {}
        cache = mine.get(root)
        if cache is None:
            from sharklib.cache.runcache import RunCache

            cache = mine[root] = RunCache.from_env(root)
            with self.lock:
                self.opened.append(cache)
        return cache

    def close(self) -> None:
        with self.lock:
            opened, self.opened = self.opened, []
        for cache in opened:
            with contextlib.suppress(Exception):
                cache.close()


_batch: _Batch | None = None


def memo(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, remembered for the rest of the batch (always computed outside one).

    For what every stage of a batch works out identically (the stage environment, a
    directory's project root): the runner's own environment variables and the project's
    layout are taken as fixed while a batch (a pipeline run) runs.
    """
    batch = _batch
    if batch is None:
        return compute()
    try:
        return batch.memo[key]
    except KeyError:
        value = batch.memo[key] = compute()
        return value


def kept(root: str) -> RunCache | None:
    """This thread's open cache for ``root`` inside :func:`kept_open`, else ``None``."""
    batch = _batch
    if batch is None:
        return None
    try:
        return batch.get(root)
    except Exception:  # the runner opens (and reports on) its own cache then
        return None


@contextlib.contextmanager
def kept_open() -> Iterator[None]:
    """Keep caches open across the commands run inside the block (nesting is harmless)."""
    global _batch
    if _batch is not None:
        yield
        return
    _batch = batch = _Batch()
    try:
        yield
    finally:
        _batch = None
        batch.close()
