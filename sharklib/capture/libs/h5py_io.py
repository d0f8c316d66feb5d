"""h5py: HDF5 files are opened by the C library, never through Python's ``open``.

``File.__init__`` is wrapped to record the file by its mode once it opened
(``r`` reads; ``w``/``w-``/``x`` create; ``r+`` updates; ``a`` updates an
existing file or creates a new one), and ``File.close`` (also reached from
``with``) reports a written file finished after HDF5 flushed it. Files opened
from Python file objects are seen by the audit hook instead; the ``core``
driver without a backing store writes nothing to disk.
"""

from __future__ import annotations

import os
from typing import Any

import wrapt

from sharklib.capture.libs.recording import (
    OpenMode,
    guarded,
    local_path,
    record_finished,
    record_open,
    recorder,
)

_MODES: dict[str, OpenMode] = {"r": "read", "r+": "update", "w": "create", "w-": "create",
                               "x": "create"}


def _init(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    rec = recorder()
    if rec is None:
        return wrapped(*args, **kwargs)
    path = mode = None
    existed = False
    with guarded("h5py.File"):
        path = local_path(args[0] if args else kwargs.get("name"))
        mode = args[1] if len(args) > 1 else kwargs.get("mode")
        mode = "r" if mode is None else mode
        if kwargs.get("driver") == "core" and not kwargs.get("backing_store", True):
            path = None
        existed = path is not None and os.path.exists(path)
    result = wrapped(*args, **kwargs)
    with guarded("h5py.File"):
        if path is not None:
            how = _MODES.get(mode) if mode != "a" else ("update" if existed else "create")
            if how is not None:
                record_open(rec, [path], how)
    return result


def _close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    path = None
    with guarded("h5py.File.close"):
        if recorder() is not None and instance.id.valid and instance.mode == "r+":
            path = local_path(instance.filename)
            if instance.driver == "core":
                backing = instance.id.get_access_plist().get_fapl_core()[1]
                path = path if backing else None
    result = wrapped(*args, **kwargs)
    with guarded("h5py.File.close"):
        rec = recorder()
        if path is not None and rec is not None:
            record_finished(rec, path, "update")
    return result


def patch(module: Any) -> None:
    """Wrap ``h5py.File.__init__`` and ``h5py.File.close``."""
    from h5py._hl import files

    wrapt.wrap_function_wrapper(files, "File.__init__", _init)
    wrapt.wrap_function_wrapper(files, "File.close", _close)
