"""Looking at lineage: show, why, diff, graph, verify with a trust policy, exports, pipeline-from.

Everything here reads sidecars (through :mod:`sharklib.views.lineage`) and
never writes beside the user's files except where a command is asked to
(``sign --countersign`` rewrites one sidecar, ``graph -o``/``export -o`` write
their output).
"""

from sharklib.views.lineage import Lineage, Step, load_lineage

__all__ = ["Lineage", "Step", "load_lineage"]
