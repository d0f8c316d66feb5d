"""fiona: vector files are read and written by GDAL/OGR in C (the wheel bundles its own GDAL).

``fiona.open`` is wrapped to record the file and its companions (a
shapefile's ``.shx``, ``.dbf``, ``.prj``...) by mode: ``r`` reads, ``w``
creates, ``a`` updates. ``Collection.close`` (also reached from ``with`` and
from the collection's ``__del__``) reports written files finished after OGR
flushed them. File objects and URLs are left to the audit hook and other
patches.
"""

from __future__ import annotations

from typing import Any

from sharklib.capture.libs.recording import (
    OpenMode,
    dataset_files,
    guarded,
    local_path,
    record_finished,
    record_open,
    recorder,
    wrap_each,
)

_MODES: dict[str, OpenMode] = {"r": "read", "w": "create", "a": "update"}


def _open(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    collection = wrapped(*args, **kwargs)
    with guarded("fiona.open"):
        rec = recorder()
        if rec is not None:
            fp = args[0] if args else kwargs.get("fp")
            mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
            path = local_path(fp, allow_bytes=False)
            how = _MODES.get(mode)
            if path is not None and how is not None:
                record_open(rec, dataset_files(path) if how != "create" else [path], how)
    return collection


def _close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    path = None
    how: OpenMode = "create"
    with guarded("fiona close"):
        if recorder() is not None and not instance.closed and instance.mode in ("w", "a"):
            how = _MODES[instance.mode]
            path = local_path(instance.path, allow_bytes=False)
    result = wrapped(*args, **kwargs)
    if path is not None:
        with guarded("fiona close"):
            rec = recorder()
            if rec is not None:
                record_finished(rec, path, how)
    return result


def patch(module: Any) -> None:
    """Wrap ``fiona.open`` (and its alias ``fiona.collection``) and ``Collection.close``."""
    original = getattr(module, "open", None)
    wrap_each(module, [("open", _open), ("Collection.close", _close)])
    if original is not None and getattr(module, "collection", None) is original:
        module.collection = module.open
