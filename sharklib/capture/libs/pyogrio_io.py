"""pyogrio: vector files are read and written by GDAL/OGR in C (the wheel bundles its own GDAL).

``read_dataframe``, ``read_arrow``, ``open_arrow`` and ``read_info`` read the
file named by their first argument (with its companions: a shapefile is
several files); ``write_dataframe`` and ``write_arrow`` write it and are done
with it when they return (``append=True`` updates). In-memory buffers
(``bytes``, file objects) and URLs are not local files and are left alone.
"""

from __future__ import annotations

from typing import Any

import wrapt

from sharklib.capture.libs.recording import (
    dataset_files,
    guarded,
    local_path,
    record_finished,
    recorder,
)

_READERS = ("read_dataframe", "read_arrow", "open_arrow", "read_info")
_WRITERS = ("write_dataframe", "write_arrow")


def _reader(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    with guarded(f"pyogrio.{getattr(wrapped, '__name__', 'read')}"):
        rec = recorder()
        if rec is not None:
            path = local_path(args[0] if args else kwargs.get("path_or_buffer"),
                              allow_bytes=False)
            if path is not None:
                for p in dataset_files(path):
                    rec.read(p)
    return result


def _writer(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    path = None
    append = bool(kwargs.get("append", False))
    with guarded("pyogrio write"):
        path = local_path(args[1] if len(args) > 1 else kwargs.get("path"), allow_bytes=False)
        rec = recorder()
        if rec is not None and path is not None and append:
            for p in dataset_files(path):
                rec.prior(p)  # appended to: what it held before is an input
    result = wrapped(*args, **kwargs)
    with guarded(f"pyogrio.{getattr(wrapped, '__name__', 'write')}"):
        rec = recorder()
        if rec is not None and path is not None:
            rec.write(path, append=append)
            record_finished(rec, path, "update" if append else "create")
    return result


def patch(module: Any) -> None:
    """Wrap pyogrio's public read and write functions."""
    for name in (*_READERS, *_WRITERS):
        if hasattr(module, name):
            wrapt.wrap_function_wrapper(module, name, _reader if name in _READERS else _writer)
