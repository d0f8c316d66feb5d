"""Package attributes loaded on first use (PEP 562), for every sharklib sub-package.

A captured script, ``sharklib trace`` and a no-op pipeline re-check each need
a small corner of sharklib before the user's work starts; a package that
imported all its modules up front would make every one of them pay for all.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_attributes(package: str, where: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` serving ``name`` from ``package + "." + where[name]``.

    The value is stored in the package's namespace, so each name is looked up once.
    """

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
