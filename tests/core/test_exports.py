"""Every name a package exports resolves: ``__all__`` and the lazy (PEP 562) export maps.

A lazy map names the module a name lives in; a typo or a name moved to another
module is an AttributeError only when a user first touches it
(``sharklib.attest.is_sidecar`` was exported from a module that did not define it).
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import sharklib


def _modules() -> list[str]:
    names = ["sharklib"]
    for info in pkgutil.walk_packages(sharklib.__path__, "sharklib."):
        if ".libs." in info.name or info.name.endswith((".__main__", "._bootstrap.sitecustomize")):
            continue  # library patches import their library; start-up hooks run on import
        names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_every_exported_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(getattr(module, "__all__", ()))
    lazy = getattr(module, "__getattr__", None)
    where = getattr(lazy, "where", None)
    if isinstance(where, dict):
        exported += list(where)
    missing = []
    for attr in exported:
        try:
            getattr(module, attr)
        except AttributeError as exc:
            missing.append(f"{attr}: {exc}")
    assert not missing, f"{name} exports names it cannot give: {missing}"
    if isinstance(where, dict):
        assert sorted(where) == sorted(getattr(module, "__all__", where)), \
            f"{name}: the lazy map and __all__ name different things"
