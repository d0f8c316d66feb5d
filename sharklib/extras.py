"""Optional dependencies: which ``pip install 'sharklib[…]'`` brings which import.

A feature that needs an extra calls :func:`require` before it starts, so a
base install answers with the one command to run instead of an internal error
ending "please report it" (``prov``, ``rocrate``… are not bugs to report).
Layer: beside ``errors`` (imports nothing of sharklib above it).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from sharklib.errors import SharkError

#: top-level import name -> (extra, distribution on PyPI); mirrors pyproject's optional deps
EXTRAS: dict[str, tuple[str, str]] = {
    "prov": ("export", "prov"),
    "rocrate": ("export", "rocrate"),
    "openlineage": ("export", "openlineage-python"),
    "s3fs": ("remote", "s3fs"),
    "dask": ("dask", "dask"),
    "distributed": ("dask", "distributed"),
    "proxy": ("proxy", "proxy.py"),
    "blake3": ("fast", "blake3"),
}


class MissingExtra(SharkError):
    """An optional dependency is not installed; ``str()`` names the pip command."""


def missing_extra(module: str, needed_for: str) -> MissingExtra:
    """The one-line error for ``module`` missing when ``needed_for`` needs it."""
    extra, dist = EXTRAS[module.split(".", 1)[0]]
    return MissingExtra(f"{needed_for} needs {dist}, which is not installed: "
                        f"pip install 'sharklib[{extra}]'")


def require(module: str, needed_for: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise missing_extra(module, needed_for) from None
