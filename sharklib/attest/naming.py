"""Where a file's sidecar lives (the in-toto bundle convention ``X.intoto.jsonl``).

A module of its own, importing nothing: the reuse check and the path rules
need the name at start-up, where loading the bundle reader would cost ~10 ms.
"""

from __future__ import annotations

import os

SUFFIX = ".intoto.jsonl"


def sidecar_path(output: str | os.PathLike[str]) -> str:
    return os.fspath(output) + SUFFIX


def is_sidecar(path: str) -> bool:
    return path.endswith(SUFFIX)
