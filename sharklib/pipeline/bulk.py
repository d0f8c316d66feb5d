"""Helpers for the bulk phases of planning a pipeline (tens of thousands of stages)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for one bulk phase (reentrant).

    Building, planning and linking allocate a dozen objects per stage, and all of
    them stay alive: the collector would rescan the growing heap again and again
    — about a third of a 10,000-stage no-op plan — and find nothing to free.
    Collection resumes afterwards, so any cycle made meanwhile is still freed.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
