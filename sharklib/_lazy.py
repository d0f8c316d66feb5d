"""Package attributes loaded on first use (PEP 562), for every sharklib sub-package.

A captured script, ``sharklib trace`` and a no-op pipeline re-check each need
a small corner of sharklib before the user's work starts; a package that
imported all its modules up front would make every one of them pay for all.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping


class LazyAttributes:
    """A module ``__getattr__`` serving ``name`` from ``package + "." + where[name]``.

    The value is stored in the package's namespace, so each name is looked up
    once. ``where`` stays readable, so a test can check that every name resolves.
    """

    def __init__(self, package: str, where: Mapping[str, str]) -> None:
        self.package = package
        self.where = dict(where)

    def __call__(self, name: str) -> object:
        module = self.where.get(name)
        if module is None:
            raise AttributeError(f"module {self.package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{self.package}.{module}"), name)
        setattr(sys.modules[self.package], name, value)
        return value


def lazy_attributes(package: str, where: Mapping[str, str]) -> LazyAttributes:
    """The ``__getattr__`` of a package whose names are loaded on first use."""
    return LazyAttributes(package, where)
