"""Run a function right after a named module is imported, without importing it (or wrapt).

``wrapt.register_post_import_hook`` does this, but importing ``wrapt`` 2.x
pulls in ``asyncio`` and ``importlib.metadata`` (30-50 ms here), a cost every
captured process would pay at start-up even if it never imports a patched
library. This module is the same mechanism in a page: a finder at the front of
``sys.meta_path`` that, for the few names it watches, asks the other finders
for the module's spec and chains its loader so the hook runs once the module
has executed. The module's ``__loader__`` and ``__spec__.loader`` are set back
to the real loader, as wrapt does. ``wrapt`` itself is imported only when a
patch is applied.
"""

from __future__ import annotations

import _thread  # not ``threading``: ~1 ms of every captured script's start-up for two locks
import sys
from collections.abc import Callable

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False

if TYPE_CHECKING:
    from importlib.abc import Loader as _LoaderBase
    from types import ModuleType
    from typing import Any
else:
    _LoaderBase = object  # importlib.abc is not imported at run time either

Hook = Callable[["ModuleType"], None]

_hooks: dict[str, list[Hook]] = {}
#: modules sharklib imported for its own work while the script ran (``wrapt`` for a patch,
#: ``cryptography`` for a notebook's signing): not distributions the script used
own_imports: set[str] = set()
_lock = _thread.RLock()
_local = _thread._local()


def when_imported(name: str, hook: Hook) -> None:
    """Call ``hook(module)`` once ``name`` is imported; at once if it already is."""
    with _lock:
        _ensure_finder()
        module = sys.modules.get(name)
        if module is None:
            _hooks.setdefault(name, []).append(hook)
            return
    hook(module)


def _fire(module: ModuleType) -> None:
    with _lock:
        hooks = _hooks.pop(module.__name__, [])
    if not hooks:
        return
    before = set(sys.modules)
    try:
        for hook in hooks:
            hook(module)
    finally:
        own_imports.update(set(sys.modules) - before)


class _ChainedLoader(_LoaderBase):
    """The real loader, plus the hooks once the module body has run."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if getattr(module, "__loader__", None) in (None, self):
            module.__loader__ = self.loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self.loader
        self.loader.exec_module(module)
        _fire(sys.modules.get(module.__name__, module))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class _PostImportFinder:
    """A meta-path finder that only ever answers for the watched names."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in _hooks:
            return None
        busy: set[str] = _local.__dict__.setdefault("busy", set())
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            import importlib.util

            spec = importlib.util.find_spec(fullname)
        finally:
            busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _ChainedLoader(spec.loader)
        return spec


_finder = _PostImportFinder()


def _ensure_finder() -> None:
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
