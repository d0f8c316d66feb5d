"""polars: files are read and written by its Rust engine, never through Python's ``open``.

The public readers (``pl.read_parquet``, ``scan_parquet``, ``read_csv``, ``scan_csv``,
``read_ipc``, ``scan_ipc``, ``read_ndjson``, ``scan_ndjson``, ``read_json``...) are
wrapped in the ``polars`` namespace, and the writers on ``DataFrame``
(``write_parquet``, ``write_csv``, ``write_ipc``, ``write_ndjson``, ``write_json``...)
and ``LazyFrame`` (``sink_parquet``, ``sink_csv``, ``sink_ipc``, ``sink_ndjson``). A
``scan_*`` records its files when the scan is made: the plan is built to read them.
Sources may be a path, a list of paths, a glob (``"data/*.parquet"``) or a directory;
every local file they name is an input, and the folders a glob or a directory is
expanded in are listed inputs (a file added there changes the result). Cloud URIs are
not local files and are not recorded; file objects and bytes are left to the audit hook.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from sharklib.capture.libs.pyarrow_io import arrow_path
from sharklib.capture.libs.recording import guarded, recorder, wrap_function_wrapper

_READERS = ("read_parquet", "scan_parquet", "read_csv", "scan_csv", "read_csv_batched",
            "read_ipc", "scan_ipc", "read_ipc_stream", "read_ndjson", "scan_ndjson",
            "read_json", "read_avro", "read_parquet_schema", "read_ipc_schema")
_DATAFRAME_WRITERS = ("write_parquet", "write_csv", "write_ipc", "write_ipc_stream",
                      "write_ndjson", "write_json", "write_avro")
_LAZY_WRITERS = ("sink_parquet", "sink_csv", "sink_ipc", "sink_ndjson")
_GLOB = ("*", "?", "[")


def _sources(source: Any) -> list[Any]:
    return list(source) if isinstance(source, (list, tuple)) else [source]


def _record_reads(source: Any) -> None:
    rec = recorder()
    if rec is None:
        return
    for s in _sources(source):
        path = arrow_path(s)
        if path is None:
            continue
        if any(c in path for c in _GLOB):
            fixed = path.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
            folder = os.path.dirname(fixed) or "."
            for f in sorted(glob.glob(path, recursive=True)):
                if os.path.isfile(f):
                    rec.read(f)
            if os.path.isdir(folder):
                for d, _dirs, _files in os.walk(folder):
                    rec.read_dir(d)
        elif os.path.isdir(path):
            for d, dirs, files in os.walk(path):
                dirs.sort()
                rec.read_dir(d)
                for name in sorted(files):
                    rec.read(os.path.join(d, name))
        else:
            rec.read(path)


def _reader(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    with guarded(f"polars.{getattr(wrapped, '__name__', 'read')}"):
        if recorder() is not None:
            _record_reads(args[0] if args else kwargs.get("source"))
    return result


def _writer(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    path = None
    rec = recorder()
    if rec is not None:
        with guarded(f"polars.{getattr(wrapped, '__name__', 'write')}"):
            target = args[0] if args else kwargs.get("file", kwargs.get("path"))
            path = arrow_path(target)
            if path is not None:
                rec.write_event(path, append=False)
    result = wrapped(*args, **kwargs)
    if path is not None:
        with guarded(f"polars.{getattr(wrapped, '__name__', 'write')}"):
            rec = recorder()
            if rec is not None:
                if os.path.isdir(path):  # a partitioned sink: every file under it
                    for d, _dirs, files in os.walk(path):
                        for name in files:
                            rec.write(os.path.join(d, name))
                            rec.closed(os.path.join(d, name))
                            rec.dataset_part(os.path.join(d, name))
                else:
                    rec.write(path)
                    rec.closed(path)
    return result


def patch(module: Any) -> None:
    """Wrap polars' public readers and the DataFrame/LazyFrame writers (``module`` is ``polars``)."""
    for name in _READERS:
        if callable(getattr(module, name, None)):
            wrap_function_wrapper(module, name, _reader)
    for cls, names in (("DataFrame", _DATAFRAME_WRITERS), ("LazyFrame", _LAZY_WRITERS)):
        for name in names:
            if callable(getattr(getattr(module, cls), name, None)):
                wrap_function_wrapper(module, f"{cls}.{name}", _writer)
