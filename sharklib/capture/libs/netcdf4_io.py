"""netCDF4: datasets are opened by the netCDF-C library, never through Python's ``open``.

``netCDF4.Dataset`` is a Cython type whose methods cannot be wrapped, and
``close()``/``with`` must be seen to know when an output is final. So the
module's ``Dataset`` name is replaced by :data:`Dataset`, a slot-less
subclass that only adds bookkeeping around ``__init__`` and ``close``. Its
metaclass answers ``isinstance``/``issubclass`` as the original type would
(``Group``, ``MFDataset`` and datasets made before the patch still count), and
its name and module are the original's so ``repr`` output is unchanged. The
subclass is kept alive on purpose (one extra reference): netCDF4's
``__dealloc__`` looks attributes up through the type, which fails with a
printed ``AttributeError`` if the interpreter's final garbage collection clears
a Python subclass before its last instance. ``MFDataset`` opens its members
internally; the files it aggregates are recorded as reads.

Modes: ``r`` reads; ``w``/``x`` create; ``r+``/``a`` update (the trailing ``s``
for shared access changes nothing); ``memory=`` datasets and ``diskless``
datasets without ``persist`` never touch a file.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Protocol

import wrapt

from sharklib.capture.libs.recording import (
    OpenMode,
    guarded,
    local_path,
    record_finished,
    record_open,
    recorder,
)

_MODES: dict[str, OpenMode] = {"r": "read", "w": "create", "x": "create", "r+": "update",
                               "a": "update"}
_ARGS = ("filename", "mode", "clobber", "format", "diskless", "persist", "keepweakref", "memory")


def _opened(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str | None, OpenMode | None]:
    """The local file a ``Dataset(...)`` call names and how it uses it."""
    given = dict(zip(_ARGS, args, strict=False))
    given.update({k: v for k, v in kwargs.items() if k in _ARGS})
    path = local_path(given.get("filename"))
    mode = str(given.get("mode", "r")).replace("s", "")
    if given.get("memory") is not None or (given.get("diskless") and not given.get("persist")):
        return None, None
    return path, _MODES.get(mode)


class _Dataset(Protocol):
    """What the patch uses of netCDF4's (untyped, Cython) ``Dataset`` type."""

    def close(self) -> object: ...


def make_dataset_class(original: type[_Dataset]) -> type[_Dataset]:
    """A subclass of netCDF4's ``Dataset`` that reports its opens and closes."""

    class _Meta(type(original)):  # type: ignore[misc]
        def __instancecheck__(cls, obj: Any) -> bool:
            return isinstance(obj, original)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, original)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        rec = recorder()
        path: str | None = None
        how: OpenMode | None = None
        if rec is not None:
            with guarded("netCDF4.Dataset"):
                path, how = _opened(args, kwargs)
                if how == "update" and path is not None and not os.path.exists(path):
                    how = "create"
        _written.pop(id(self), None)
        original.__init__(self, *args, **kwargs)
        if rec is not None and path is not None and how is not None:
            with guarded("netCDF4.Dataset"):
                record_open(rec, [path], how)
                if how != "read":
                    _written[id(self)] = (path, how)

    def close(self: Any) -> Any:
        written = _written.pop(id(self), None)
        result = original.close(self)
        if written is not None:
            with guarded("netCDF4.Dataset.close"):
                rec = recorder()
                if rec is not None:
                    record_finished(rec, written[0], written[1])
        return result

    # ``_sharklib_original`` marks the module as patched (see :func:`patch`)
    namespace = {"__slots__": (), "__init__": __init__, "close": close,
                 "_sharklib_original": original,
                 "__module__": original.__module__, "__qualname__": original.__qualname__,
                 "__doc__": original.__doc__}
    cls = _Meta(original.__name__, (original,), namespace)
    import ctypes

    ctypes.pythonapi.Py_IncRef(ctypes.py_object(cls))
    return cls


#: id(dataset) -> (path, mode) of datasets open for writing (the type has no room for attributes)
_written: dict[int, tuple[str, OpenMode]] = {}


def _mfdataset(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    with guarded("netCDF4.MFDataset"):
        rec = recorder()
        files = args[0] if args else kwargs.get("files")
        if rec is not None:
            names = sorted(glob.glob(files)) if isinstance(files, str) else list(files)
            for name in names:
                path = local_path(name)
                if path is not None:
                    rec.read(path)
    return result


def patch(module: Any) -> None:
    """Replace ``netCDF4.Dataset`` by the reporting subclass and wrap ``MFDataset``."""
    original = module.Dataset
    if getattr(original, "_sharklib_original", None) is not None:
        return
    cls = make_dataset_class(original)
    module.Dataset = cls
    wrapt.wrap_function_wrapper(module, "MFDataset", _mfdataset)
