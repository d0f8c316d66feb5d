"""rasterio: rasters are read and written by GDAL in C, never through Python's ``open``.

``rasterio.open`` is wrapped: a dataset opened ``r`` records every file GDAL
uses for it (``dataset.files``: the raster, its ``.aux.xml``, ``.ovr``...);
``r+`` records them as updated; ``w``/``w+`` as created. ``close`` of the
writer classes (reached from ``with`` too) reports the written files finished
after GDAL flushed them. ``rasterio.shutil.copy`` reads its source and
finishes its destination. File objects, ``MemoryFile`` and URLs are not local
files and are left alone.
"""

from __future__ import annotations

from typing import Any

from sharklib.capture.libs.recording import (
    OpenMode,
    guarded,
    local_path,
    record_finished,
    record_open,
    recorder,
    wrap_each,
)

_MODES: dict[str, OpenMode] = {"r": "read", "r+": "update", "w": "create", "w+": "create"}


def _local_files(dataset: Any) -> list[str]:
    files = [p for p in (local_path(f) for f in (dataset.files or [])) if p is not None]
    if not files:
        name = local_path(getattr(dataset, "name", None))
        files = [name] if name is not None else []
    return files


def _open(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    dataset = wrapped(*args, **kwargs)
    with guarded("rasterio.open"):
        rec = recorder()
        if rec is not None:
            fp = args[0] if args else kwargs.get("fp")
            mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
            path = local_path(fp)
            how = _MODES.get(mode)
            if path is not None and how is not None:
                files = _local_files(dataset) if how != "create" else [path]
                record_open(rec, files, how)
    return dataset


def _close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    files: list[str] = []
    how: OpenMode = "create"
    with guarded("rasterio close"):
        if recorder() is not None and not instance.closed and instance.mode in _MODES:
            how = _MODES[instance.mode]
            if how != "read":
                files = _local_files(instance)
    result = wrapped(*args, **kwargs)
    if files:
        with guarded("rasterio close"):
            rec = recorder()
            if rec is not None:
                for path in files:
                    record_finished(rec, path, how)
    return result


def _copy(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    with guarded("rasterio.shutil.copy"):
        rec = recorder()
        if rec is not None:
            src = args[0] if args else kwargs.get("src")
            dst = args[1] if len(args) > 1 else kwargs.get("dst")
            src_path = local_path(src)
            if src_path is not None:
                rec.read(src_path)
            dst_path = local_path(dst)
            if dst_path is not None:
                rec.write(dst_path)
                record_finished(rec, dst_path, "create")
    return result


def patch(module: Any) -> None:
    """Wrap ``rasterio.open`` and the writers' ``close`` (each only where this release has it)."""
    import importlib

    wrap_each(module, [("open", _open)])
    try:
        io = importlib.import_module(f"{module.__name__}.io")
    except ImportError:
        io = None
    if io is not None:
        wrap_each(io, [(f"{name}.close", _close)
                       for name in ("DatasetWriter", "BufferedDatasetWriter")])


def patch_shutil(module: Any) -> None:
    """Wrap ``rasterio.shutil.copy``."""
    wrap_each(module, [("copy", _copy)])
