"""GDAL/OGR (``osgeo``): datasets are read and written in C, never through Python's ``open``.

Opening functions record by access mode: ``gdal.Open``/``OpenShared``
(``GA_Update``), ``gdal.OpenEx`` (``OF_UPDATE``), ``ogr.Open`` and
``ogr.Driver.Open`` (``update``) read every file GDAL lists for the dataset
(``GetFileList``) and, in update mode, write them. ``Driver.Create``,
``Driver.CreateCopy``, ``ogr.Driver.CreateDataSource`` and ``CopyDataSource``
create. The command-line utilities (``Warp``, ``Translate``,
``VectorTranslate``, ``Rasterize``, ``BuildVRT``, ``DEMProcessing``, ``Grid``)
read their sources given by name and create their destination;
``RasterizeLayer`` updates the dataset it burns into.

GDAL finishes writing a dataset when the Python object is released
(``ds = None``, ``del ds``, end of scope) or, from GDAL 3.8, on ``Close()``;
a ``weakref.finalize`` on the dataset object (and a wrapped ``Close``) reports
the written files finished then. The callback runs a moment before GDAL's own
close, which is fine because the recorder hashes outputs at exit.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
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

#: dataset object -> the finalizer that reports its written files finished
_outputs: weakref.WeakKeyDictionary[Any, weakref.finalize] = weakref.WeakKeyDictionary()


def _files(ds: Any, name: str | None) -> list[str]:
    """The local files behind a dataset: GDAL's own list, else the name it was opened with."""
    listed: list[str] = []
    try:
        listed = [p for p in (local_path(f) for f in (ds.GetFileList() or [])) if p is not None]
    except Exception:
        listed = []
    if not listed and name is not None:
        listed = [name]
    return listed


def _finished(files: list[str], how: OpenMode) -> None:
    with guarded("GDAL dataset closed"):
        rec = recorder()
        if rec is not None:
            for path in files:
                record_finished(rec, path, how)


def _track(ds: Any, files: list[str], how: OpenMode) -> None:
    """Report ``files`` finished when ``ds`` is released or closed."""
    if ds is None or not files or ds in _outputs:
        return
    _outputs[ds] = weakref.finalize(ds, _finished, files, how)


def _record(ds: Any, target: Any, how: OpenMode) -> None:
    rec = recorder()
    if rec is None or ds is None or isinstance(ds, int | bool):
        return
    name = local_path(target)
    if name is None and how != "update":
        return
    files = _files(ds, name) if how != "create" else ([name] if name else [])
    record_open(rec, files, how)
    if how != "read":
        _track(ds, files, how)


def _opener(path_arg: int, update: Callable[[tuple[Any, ...], dict[str, Any]], bool]) -> Any:
    """A wrapper for a function opening the dataset named by argument ``path_arg``."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        ds = wrapped(*args, **kwargs)
        with guarded(f"GDAL {getattr(wrapped, '__name__', 'open')}"):
            if recorder() is not None:
                target = args[path_arg] if len(args) > path_arg else (
                    kwargs.get("utf8_path") or kwargs.get("pszName"))
                _record(ds, target, "update" if update(args, kwargs) else "read")
        return ds

    return wrapper


def _flag(index: int, names: tuple[str, ...], bit: int) -> Callable[[tuple[Any, ...], dict[str, Any]], bool]:
    def is_update(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        value = args[index] if len(args) > index else next(
            (kwargs[n] for n in names if n in kwargs), 0)
        try:
            return bool(int(value) & bit)
        except (TypeError, ValueError):
            return False

    return is_update


def _creator(path_arg: int, sources: tuple[int, ...] = ()) -> Any:
    """A wrapper for a method creating the dataset named by argument ``path_arg``."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        ds = wrapped(*args, **kwargs)
        with guarded(f"GDAL {getattr(wrapped, '__name__', 'create')}"):
            rec = recorder()
            if rec is not None:
                for index in sources:
                    if len(args) > index:
                        _read_sources(rec, args[index])
                target = args[path_arg] if len(args) > path_arg else kwargs.get("utf8_path")
                _record(ds, target, "create")
        return ds

    return wrapper


def _read_sources(rec: Any, src: Any) -> None:
    """Sources given by name are read by GDAL itself; opened datasets were recorded already."""
    for item in src if isinstance(src, list | tuple) else [src]:
        path = local_path(item, allow_bytes=False)
        if path is not None:
            rec.read(path)


def _utility(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``gdal.Warp(dest, src, ...)`` and friends: read the sources, create the destination."""
    result = wrapped(*args, **kwargs)
    with guarded(f"gdal.{getattr(wrapped, '__name__', 'utility')}"):
        rec = recorder()
        if rec is not None:
            dest = args[0] if args else next(
                (kwargs[k] for k in ("destNameOrDestDS", "destName") if k in kwargs), None)
            src = args[1] if len(args) > 1 else next(
                (kwargs[k] for k in ("srcDS", "srcDSOrSrcDSTab") if k in kwargs), None)
            _read_sources(rec, src)
            path = local_path(dest, allow_bytes=False)
            if path is not None:
                rec.write(path)
                if hasattr(result, "GetFileList"):
                    _track(result, [path], "create")
                elif result:
                    _finished([path], "create")
            elif hasattr(dest, "GetFileList"):
                _record(dest, None, "update")
    return result


def _rasterize_layer(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    with guarded("gdal.RasterizeLayer"):
        ds = args[0] if args else kwargs.get("dataset")
        if recorder() is not None and ds is not None:
            _record(ds, None, "update")
    return result


def _close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    fin = None
    with guarded("GDAL Close"):
        fin = _outputs.pop(instance, None)
    result = wrapped(*args, **kwargs)
    if fin is not None:
        fin()
    return result


#: ``(module, "Owner.method", wrapper)`` of ``osgeo.ogr`` whose owner did not exist yet when
#: ``osgeo.ogr`` finished importing: from GDAL 3.8 the bindings define ``ogr.Driver`` only once
#: ``osgeo.gdal`` has finished importing, so those are applied when it has
_pending: list[tuple[Any, str, Any]] = []


def patch_gdal(module: Any) -> None:
    """Wrap the opening, creating and utility functions of ``osgeo.gdal``."""
    update = int(getattr(module, "OF_UPDATE", 1))
    table: list[tuple[str, Any]] = [
        ("Open", _opener(0, _flag(1, ("eAccess",), 1))),
        ("OpenShared", _opener(0, _flag(1, ("eAccess",), 1))),
        ("OpenEx", _opener(0, _flag(1, ("nOpenFlags",), update))),
        ("Driver.Create", _creator(0)),
        ("Driver.CreateCopy", _creator(0)),
        *((name, _utility) for name in ("Warp", "Translate", "VectorTranslate", "Rasterize",
                                        "BuildVRT", "DEMProcessing", "Grid")),
        ("RasterizeLayer", _rasterize_layer),
        ("Dataset.Close", _close),
    ]
    wrap_each(module, table)
    late, _pending[:] = list(_pending), []
    for ogr, name, wrapper in late:
        wrap_each(ogr, [(name, wrapper)])


def patch_ogr(module: Any) -> None:
    """Wrap ``ogr.Open`` and the data-source methods of ``ogr.Driver``."""
    table: list[tuple[str, Any]] = [
        ("Open", _opener(0, _flag(1, ("update",), 1))),
        ("Driver.Open", _opener(0, _flag(1, ("update",), 1))),
        ("Driver.CreateDataSource", _creator(0)),
        ("Driver.CopyDataSource", _creator(1)),
        ("DataSource.Close", _close),
    ]
    _pending.extend(wrap_each(module, table))
