"""Helpers for the bulk phases of planning a pipeline (tens of thousands of stages)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: Freeze (:func:`gc.freeze`) what a bulk phase leaves behind. Set by the command line,
#: whose process ends with the pipeline: everything planning makes lives until then, and
#: once frozen the collector never rescans it (without this, about 40 ms of a 10,000-stage
#: no-op re-run go to collections that free nothing). A library caller planning in a
#: long-lived process leaves it off: frozen cyclic garbage would never be collected.
freeze_after = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for one bulk phase (reentrant).

    Building, planning and linking allocate a dozen objects per stage, and all of
    them stay alive: the collector would rescan the growing heap again and again
    — about a third of a 10,000-stage no-op plan — and find nothing to free.
    Collection resumes afterwards, so any cycle made meanwhile is still freed
    (unless :data:`freeze_after` says the process is about to end anyway).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if freeze_after:
                gc.freeze()
            gc.enable()
