"""pyarrow: Parquet, Feather, Arrow IPC, CSV and JSON files are opened by Arrow's C++ code.

None of it goes through Python's ``open``, so the audit hook saw nothing: a script
reading ``t.parquet`` was recorded with no input (and reused after the file changed), and
a ``to_parquet`` output was not recorded at all (and not restored after ``rm``). The
patches wrap the *Python-level* entry points that receive a path, record the local file
they name, and call the original unchanged:

- ``pyarrow.parquet``: ``ParquetFile.__init__`` and ``ParquetDataset.__init__`` (what
  ``read_table``, ``read_pandas``, ``read_metadata``/``read_schema`` and pandas'
  ``read_parquet`` use) read; ``ParquetWriter.__init__`` creates and ``close`` finishes
  (``write_table``, ``write_metadata``, pandas' ``to_parquet``);
- ``pyarrow.dataset``: ``dataset(...)`` reads the files the dataset lists (a directory's
  listing is an input too: a file added to it changes the result); ``write_dataset``
  records each file it wrote, through a ``file_visitor`` chained to the program's own;
- ``pyarrow.feather``: ``read_table``/``read_feather`` read, ``write_feather`` writes;
- ``pyarrow.csv``: ``read_csv``/``open_csv`` read, ``write_csv`` and ``CSVWriter`` write;
  ``pyarrow.json.read_json``/``open_json`` read;
- ``pyarrow.ipc``: the four ``RecordBatch{Stream,File}{Reader,Writer}`` classes (what
  ``open_file``/``open_stream``/``new_file``/``new_stream`` make) by their ``__init__``,
  writers finished on ``close``;
- ``pyarrow`` itself: ``memory_map``, ``create_memory_map``, ``input_stream``,
  ``output_stream`` and ``OSFile`` given a path. ``OSFile`` is a Cython type opened in
  ``__cinit__``: the module's name is replaced by a subclass recording around ``__new__``,
  whose metaclass answers ``isinstance`` as the original type would.

Paths may be ``str``, ``os.PathLike`` or ``file://`` URIs; a ``filesystem=`` argument
counts when it is a ``pyarrow.fs.LocalFileSystem`` (or a ``SubTreeFileSystem`` over
one). Remote filesystems (S3, GCS, HDFS) are not local files and are not recorded here
(through fsspec they are downloads, see ``fsspec_io``); file objects are seen by the
audit hook when they are Python files.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from sharklib.capture.libs.recording import guarded, local_path, recorder, wrap_function_wrapper

#: what an output of a writer object is: (path,) kept on the writer until it is closed
_OUT = "_sharklib_output"


# -- paths -----------------------------------------------------------------------------------


def _fs_base(filesystem: Any) -> str | None:
    """``""`` for a local filesystem, the base directory of a local sub-tree, else ``None``."""
    try:
        from pyarrow import fs as pafs
    except Exception:
        return None
    if isinstance(filesystem, pafs.LocalFileSystem):
        return ""
    if isinstance(filesystem, pafs.SubTreeFileSystem):
        inner = _fs_base(filesystem.base_fs)
        if inner is None:
            return None
        return os.path.join(inner, filesystem.base_path) if inner else filesystem.base_path
    return None


def arrow_path(source: Any, filesystem: Any = None) -> str | None:
    """The local file a pyarrow call names, or ``None`` (file object, buffer, remote URI)."""
    if isinstance(source, str) and source.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            return None
        source = unquote(parts.path)
    path = local_path(source, allow_bytes=False)
    if path is None:
        return None
    if filesystem is None:
        return path
    base = _fs_base(filesystem)
    if base is None:
        return None
    return os.path.join(base, path.lstrip("/")) if base else path


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


# -- recording -------------------------------------------------------------------------------


def _read(path: str | None) -> None:
    rec = recorder()
    if rec is not None and path is not None:
        rec.read(path)


def _before_write(path: str | None, append: bool = False) -> None:
    """About to create (truncate) or append to ``path``: a read-then-overwrite keeps its input."""
    rec = recorder()
    if rec is not None and path is not None:
        rec.write_event(path, append=append, keeps=append)


def _written(path: str | None, append: bool = False, finished: bool = True) -> None:
    rec = recorder()
    if rec is not None and path is not None:
        rec.write(path, append=append)
        if finished:
            rec.closed(path)


def _finished(path: str | None) -> None:
    rec = recorder()
    if rec is not None and path is not None:
        rec.closed(path)


def _reader(index: int, name: str, fs_name: str | None = None) -> Any:
    """A wrapper for a function reading the file named by its argument ``index``/``name``."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)
        with guarded(f"pyarrow {getattr(wrapped, '__name__', name)}"):
            if recorder() is not None:
                fs = kwargs.get(fs_name) if fs_name else None
                _read(arrow_path(_arg(args, kwargs, index, name), fs))
        return result

    return wrapper


def _writer(index: int, name: str) -> Any:
    """A wrapper for a function writing (and closing) the file named by its argument."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        path = None
        with guarded(f"pyarrow {getattr(wrapped, '__name__', name)}"):
            if recorder() is not None:
                path = arrow_path(_arg(args, kwargs, index, name))
                _before_write(path)
        result = wrapped(*args, **kwargs)
        with guarded(f"pyarrow {getattr(wrapped, '__name__', name)}"):
            _written(path)
        return result

    return wrapper


def _read_dataset(dataset: Any, source: Any, filesystem: Any) -> None:
    """Every file a ``FileSystemDataset`` (or a union of them) lists, and the folders listed."""
    rec = recorder()
    if rec is None:
        return
    children = getattr(dataset, "children", None)
    if children is not None and not hasattr(dataset, "files"):
        for child in children:
            _read_dataset(child, None, None)
        return
    if not hasattr(dataset, "files"):  # an InMemoryDataset (a table): no file behind it
        return
    base = _fs_base(getattr(dataset, "filesystem", None))
    if base is None:
        return
    files = [os.path.join(base, f.lstrip("/")) if base else f for f in dataset.files]
    for f in files:
        rec.read(f)
    sources = source if isinstance(source, (list, tuple)) else [source]
    for s in sources:
        root = arrow_path(s, filesystem) if s is not None else None
        if root is None or not os.path.isdir(root):
            continue
        # the folders walked to find the files: a file added to any of them changes the dataset
        top = os.path.abspath(root)
        folders = {top}
        for f in files:
            d = os.path.dirname(os.path.abspath(f))
            while d.startswith(top + os.sep) and d not in folders:
                folders.add(d)
                d = os.path.dirname(d)
        for d in sorted(folders):
            rec.read_dir(d)


# -- pyarrow.parquet -------------------------------------------------------------------------


def _parquet_file_init(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    with guarded("pyarrow.parquet.ParquetFile"):
        if recorder() is not None:
            _read(arrow_path(_arg(args, kwargs, 0, "source"), kwargs.get("filesystem")))
    return result


def _parquet_dataset_init(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    with guarded("pyarrow.parquet.ParquetDataset"):
        if recorder() is not None:
            _read_dataset(getattr(instance, "_dataset", instance),
                          _arg(args, kwargs, 0, "path_or_paths"),
                          _arg(args, kwargs, 1, "filesystem"))
    return result


def _parquet_writer_init(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    path = None
    with guarded("pyarrow.parquet.ParquetWriter"):
        if recorder() is not None:
            path = arrow_path(_arg(args, kwargs, 0, "where"), _arg(args, kwargs, 2, "filesystem"))
            _before_write(path)
    result = wrapped(*args, **kwargs)
    with guarded("pyarrow.parquet.ParquetWriter"):
        if path is not None:
            _written(path, finished=False)
            setattr(instance, _OUT, path)
    return result


def _close_output(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``close`` of a writer that recorded its file: finished once the original returned."""
    result = wrapped(*args, **kwargs)
    with guarded("pyarrow writer close"):
        path = instance.__dict__.pop(_OUT, None) if hasattr(instance, "__dict__") else None
        _finished(path)
    return result


def patch_parquet(module: Any) -> None:
    """Wrap ``ParquetFile``, ``ParquetDataset`` and ``ParquetWriter`` (``module`` is ``pyarrow.parquet``)."""
    core = getattr(module, "core", module)
    wrap_function_wrapper(core, "ParquetFile.__init__", _parquet_file_init)
    wrap_function_wrapper(core, "ParquetDataset.__init__", _parquet_dataset_init)
    wrap_function_wrapper(core, "ParquetWriter.__init__", _parquet_writer_init)
    wrap_function_wrapper(core, "ParquetWriter.close", _close_output)


# -- pyarrow.dataset -------------------------------------------------------------------------


def _dataset(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    with guarded("pyarrow.dataset.dataset"):
        if recorder() is not None:
            _read_dataset(result, _arg(args, kwargs, 0, "source"), kwargs.get("filesystem"))
    return result


def _write_dataset(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if recorder() is None:
        return wrapped(*args, **kwargs)
    base: str | None = None
    written: list[str] = []
    lock = threading.Lock()
    with guarded("pyarrow.dataset.write_dataset"):
        filesystem = kwargs.get("filesystem")
        given = _arg(args, kwargs, 1, "base_dir")
        if arrow_path(given, filesystem) is not None:
            base = "" if filesystem is None else _fs_base(filesystem)
            theirs = kwargs.get("file_visitor")

            def visitor(written_file: Any) -> None:
                # called from Arrow's writer threads: only collect, record after the call
                with lock:
                    written.append(written_file.path)
                if theirs is not None:
                    theirs(written_file)

            kwargs = {**kwargs, "file_visitor": visitor}
    result = wrapped(*args, **kwargs)
    with guarded("pyarrow.dataset.write_dataset"):
        if base is not None:
            rec = recorder()
            for f in written:
                path = os.path.join(base, f.lstrip("/")) if base else f
                _written(path)
                if rec is not None:  # read back wholesale: a sidecar there would be a "part"
                    rec.dataset_part(path)
    return result


def patch_dataset(module: Any) -> None:
    """Wrap ``pyarrow.dataset.dataset`` and ``write_dataset`` (``pq.write_to_dataset`` uses it)."""
    wrap_function_wrapper(module, "dataset", _dataset)
    wrap_function_wrapper(module, "write_dataset", _write_dataset)


# -- pyarrow.feather, pyarrow.csv, pyarrow.json ----------------------------------------------


def patch_feather(module: Any) -> None:
    """Wrap the Feather readers and ``write_feather`` (``module`` is ``pyarrow.feather``)."""
    for name in ("read_table", "read_feather", "_read_table_internal"):
        if hasattr(module, name):
            wrap_function_wrapper(module, name, _reader(0, "source"))
    wrap_function_wrapper(module, "write_feather", _writer(1, "dest"))


def patch_csv(module: Any) -> None:
    """Wrap ``read_csv``, ``open_csv``, ``write_csv`` and ``CSVWriter`` (``module`` is ``pyarrow.csv``)."""
    for name in ("read_csv", "open_csv"):
        wrap_function_wrapper(module, name, _reader(0, "input_file"))
    wrap_function_wrapper(module, "write_csv", _writer(1, "output_file"))
    if getattr(module.CSVWriter, "_sharklib_original", None) is None:
        module.CSVWriter = _writer_class(module.CSVWriter, "sink")


def patch_json(module: Any) -> None:
    """Wrap ``read_json`` and ``open_json`` (``module`` is ``pyarrow.json``)."""
    for name in ("read_json", "open_json"):
        if hasattr(module, name):
            wrap_function_wrapper(module, name, _reader(0, "input_file"))


def _writer_class(original: type, sink: str) -> type:
    """A subclass of a Cython writer type (opened in ``__init__``) that records its file.

    Its metaclass answers ``isinstance``/``issubclass`` as ``original`` would, so writers
    made before the patch or by pyarrow itself still count.
    """

    class _Meta(type(original)):  # type: ignore[misc]
        def __instancecheck__(cls, obj: Any) -> bool:
            return isinstance(obj, original)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, original)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        path = None
        with guarded(f"pyarrow {original.__name__}"):
            if recorder() is not None:
                path = arrow_path(_arg(args, kwargs, 0, sink))
                _before_write(path)
        original.__init__(self, *args, **kwargs)  # type: ignore[misc]
        with guarded(f"pyarrow {original.__name__}"):
            if path is not None:
                _written(path, finished=False)
                self.__dict__[_OUT] = path

    def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original.close(self, *args, **kwargs)  # type: ignore[attr-defined]
        with guarded(f"pyarrow {original.__name__}.close"):
            _finished(self.__dict__.pop(_OUT, None))
        return result

    namespace = {"__init__": __init__, "close": close, "_sharklib_original": original,
                 "__module__": original.__module__, "__qualname__": original.__qualname__,
                 "__doc__": original.__doc__}
    return _Meta(original.__name__, (original,), namespace)


# -- pyarrow.ipc -----------------------------------------------------------------------------


def _ipc_reader_init(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    with guarded("pyarrow.ipc reader"):
        if recorder() is not None:
            _read(arrow_path(_arg(args, kwargs, 0, "source")))
    return result


def _ipc_writer_init(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    path = None
    with guarded("pyarrow.ipc writer"):
        if recorder() is not None:
            path = arrow_path(_arg(args, kwargs, 0, "sink"))
            _before_write(path)
    result = wrapped(*args, **kwargs)
    with guarded("pyarrow.ipc writer"):
        if path is not None:
            _written(path, finished=False)
            setattr(instance, _OUT, path)
    return result


def patch_ipc(module: Any) -> None:
    """Wrap the IPC reader and writer classes (``module`` is ``pyarrow.ipc``)."""
    for name in ("RecordBatchStreamReader", "RecordBatchFileReader"):
        wrap_function_wrapper(module, f"{name}.__init__", _ipc_reader_init)
    for name in ("RecordBatchStreamWriter", "RecordBatchFileWriter"):
        wrap_function_wrapper(module, f"{name}.__init__", _ipc_writer_init)
        wrap_function_wrapper(module, f"{name}.close", _close_output)


# -- pyarrow: OSFile, memory maps, streams ---------------------------------------------------

_OSFILE_MODES = {"r": "read", "rb": "read", "w": "create", "wb": "create", "a": "append",
                 "ab": "append"}


def _opened_native(how: str | None, path: str | None, stream: Any) -> None:
    """A NativeFile was opened on ``path``: read, or written until the stream is closed."""
    if path is None or how is None:
        return
    rec = recorder()
    if rec is None:
        return
    if how == "read":
        rec.read(path)
        return
    if how == "update":
        rec.prior(path)
    rec.write(path, append=how in ("append", "update"))
    rec.track(stream, path)


def _osfile_class(original: type) -> type:
    """``pyarrow.OSFile`` recording its path: the type opens in ``__cinit__``, so in ``__new__``."""

    class _Meta(type(original)):  # type: ignore[misc]
        def __instancecheck__(cls, obj: Any) -> bool:
            return isinstance(obj, original)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, original)

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        path = how = None
        with guarded("pyarrow.OSFile"):
            if recorder() is not None:
                path = arrow_path(_arg(args, kwargs, 0, "path"))
                how = _OSFILE_MODES.get(str(_arg(args, kwargs, 1, "mode") or "r"))
                if path is not None and how in ("create", "append"):
                    _before_write(path, append=how == "append")
        stream = original.__new__(cls, *args, **kwargs)  # type: ignore[call-overload]
        with guarded("pyarrow.OSFile"):
            _opened_native(how, path, stream)
        return stream

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        pass  # opened by __cinit__ already

    namespace = {"__new__": __new__, "__init__": __init__, "__slots__": (),
                 "_sharklib_original": original,
                 "__module__": original.__module__, "__qualname__": original.__qualname__,
                 "__doc__": original.__doc__}
    return _Meta(original.__name__, (original,), namespace)


def _stream(direction: str) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        path = None
        with guarded(f"pyarrow.{direction}_stream"):
            if recorder() is not None:
                path = arrow_path(_arg(args, kwargs, 0, "source"))
                if direction == "output":
                    _before_write(path)
        stream = wrapped(*args, **kwargs)
        with guarded(f"pyarrow.{direction}_stream"):
            _opened_native("read" if direction == "input" else "create", path, stream)
        return stream

    return wrapper


def _memory_map(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    mapped = wrapped(*args, **kwargs)
    with guarded("pyarrow.memory_map"):
        if recorder() is not None:
            mode = str(_arg(args, kwargs, 1, "mode") or "r")
            _opened_native("read" if mode in ("r", "rb") else "update",
                           arrow_path(_arg(args, kwargs, 0, "path")), mapped)
    return mapped


def _create_memory_map(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    path = None
    with guarded("pyarrow.create_memory_map"):
        if recorder() is not None:
            path = arrow_path(_arg(args, kwargs, 0, "path"))
            _before_write(path)
    mapped = wrapped(*args, **kwargs)
    with guarded("pyarrow.create_memory_map"):
        _opened_native("create", path, mapped)
    return mapped


def patch_lib(module: Any) -> None:
    """Wrap ``pyarrow``'s path-taking file functions and ``OSFile`` (``module`` is ``pyarrow``)."""
    wrap_function_wrapper(module, "memory_map", _memory_map)
    wrap_function_wrapper(module, "create_memory_map", _create_memory_map)
    wrap_function_wrapper(module, "input_stream", _stream("input"))
    wrap_function_wrapper(module, "output_stream", _stream("output"))
    if getattr(module.OSFile, "_sharklib_original", None) is None:
        module.OSFile = _osfile_class(module.OSFile)
