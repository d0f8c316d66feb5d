"""Looking at lineage: show, why, diff, graph, verify with a trust policy, exports, pipeline-from.

Everything here reads sidecars (through :mod:`sharklib.attest.lineage`) and
never writes beside the user's files except where a command is asked to
(``sign --countersign`` rewrites one sidecar, ``graph -o``/``export -o`` write
their output). The queries across all runs (:mod:`sharklib.views.queries`)
read the run index instead.

The names below load :mod:`sharklib.attest.lineage` on first use, so a command
that never reads a sidecar (``uses``, ``impact``) does not pay for its imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sharklib.attest.lineage import Lineage, Step, load_lineage

__all__ = ["Lineage", "Step", "load_lineage"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sharklib.attest import lineage

        return getattr(lineage, name)
    raise AttributeError(f"module 'sharklib.views' has no attribute {name!r}")
