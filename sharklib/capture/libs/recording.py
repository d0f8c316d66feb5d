"""What every library patch shares: reach the recorder, never hurt the host program.

A patch runs inside someone else's program, so its own work is wrapped in
:func:`guarded`: a failure there becomes one ``sharklib: warning:`` line and
the library call goes on untouched. Paths given to C libraries come in more
shapes than ``open()`` sees (``file://`` URLs, GDAL ``/vsizip/`` paths, URLs of
remote stores, in-memory names), so :func:`local_path` keeps only those that
name a file on this machine, and :func:`dataset_files` adds the companion files
of multi-file formats (a shapefile is five files).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sharklib.capture.recorder import Recorder

OpenMode = Literal["read", "create", "update"]

#: Companion files that belong to a dataset named by its main file.
COMPANIONS = {
    ".shp": (".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp.xml"),
    ".tab": (".dat", ".map", ".id", ".ind"),
}
#: GDAL virtual file systems whose path ends in (or passes through) a local file.
_VSI_LOCAL = ("/vsizip/", "/vsigzip/", "/vsitar/", "/vsi7z/", "/vsirar/", "/vsisubfile/")


def wrap_each(module: Any, table: list[tuple[str, Any]]) -> list[tuple[Any, str, Any]]:
    """Wrap every ``name`` of ``table`` that ``module`` has; return those it did not have yet.

    A library's releases differ (a method added in one, a class renamed or defined late in
    another): a symbol that is not there is skipped for that symbol alone, silently, and every
    other wrapper applies.
    """
    import wrapt

    missing = []
    for name, wrapper in table:
        owner = module
        for part in name.split(".")[:-1]:
            owner = getattr(owner, part, None)
        if owner is None or not hasattr(owner, name.rsplit(".", 1)[-1]):
            missing.append((module, name, wrapper))
            continue
        wrapt.wrap_function_wrapper(module, name, wrapper)
    return missing


def recorder() -> Recorder | None:
    """The current recorder, or ``None`` when capture is off (every patch then passes through)."""
    try:
        from sharklib.capture.recorder import current

        return current()
    except Exception:
        return None


def warn(what: str, exc: BaseException) -> None:
    """One warning line for an internal failure; never raises."""
    try:
        from sharklib.common.safety import describe, warn_once

        warn_once(f"{what}: {describe(exc)}")
    except Exception:
        pass


@contextlib.contextmanager
def guarded(what: str) -> Iterator[None]:
    """Run sharklib's part of a patch; any exception becomes one warning, never the caller's."""
    try:
        yield
    except Exception as exc:
        warn(what, exc)


def local_path(obj: Any, allow_bytes: bool = True) -> str | None:
    """The local file an argument names, or ``None`` (a URL, an in-memory name, a file object).

    Relative paths are returned as given: the recorder resolves them against
    the working directory at the time of the call.
    """
    if isinstance(obj, bytes):
        if not allow_bytes:
            return None
        obj = os.fsdecode(obj)
    elif not isinstance(obj, str):
        if not isinstance(obj, os.PathLike):
            return None
        obj = os.fspath(obj)
        if isinstance(obj, bytes):
            obj = os.fsdecode(obj)
    text: str = obj
    if not text or text == ":memory:":
        return None
    if text.startswith("file://"):
        return text[len("file://"):] or None
    if text.startswith("/vsi"):
        return _vsi_container(text)
    if "://" in text:
        return None
    return text


def _vsi_container(text: str) -> str | None:
    """The local archive behind ``/vsizip/dir/a.zip/inner.shp``; ``None`` for /vsimem, /vsicurl..."""
    for prefix in _VSI_LOCAL:
        if text.startswith(prefix):
            rest = text[len(prefix):]
            if rest.startswith("{"):
                rest = rest[1:].split("}", 1)[0]
            candidate = rest
            while candidate and candidate not in ("/", "."):
                if os.path.isfile(candidate):
                    return candidate
                candidate = os.path.dirname(candidate)
            return None
    return None


def dataset_files(path: str) -> list[str]:
    """``path`` plus the companion files of its format that exist beside it."""
    files = [path]
    stem, ext = os.path.splitext(path)
    for suffix in COMPANIONS.get(ext.lower(), ()):
        for candidate in (stem + suffix, stem + suffix.upper()):
            if candidate not in files and os.path.exists(candidate):
                files.append(candidate)
    return files


def record_open(rec: Recorder, paths: Iterable[str], mode: OpenMode) -> None:
    """Tell the recorder that a library opened these files to read, create or update."""
    for p in paths:
        if mode == "read":
            rec.read(p)
        elif mode == "create":
            rec.write(p)
        else:  # updated in place: its content before is an input (a reuse must match it)
            rec.prior(p)
            rec.write(p, append=True)


def record_finished(rec: Recorder, path: str, mode: OpenMode) -> None:
    """A dataset written through ``path`` was closed: its files may be hashed now.

    Companion files appear only while the library writes (a shapefile's
    ``.dbf``), so they are looked up here, after the fact.
    """
    files = dataset_files(path)
    for extra in files[1:]:
        rec.write(extra, append=mode == "update")
    for p in files:
        rec.closed(p)


#: code flags of ``async def`` functions and async generators: their wrapper must stay one
_ASYNC_FLAGS = 0x80 | 0x100 | 0x200


def wrap_function_wrapper(module: Any, name: str, wrapper: Any) -> None:
    """``wrapt.wrap_function_wrapper(module, name, wrapper)``, without importing ``wrapt``.

    ``wrapper(wrapped, instance, args, kwargs)`` is called as wrapt calls it. Importing
    ``wrapt`` 2.x brings ``asyncio``, ``ssl`` and ``importlib.metadata`` (~35 ms of
    imports on this machine, measured with ``-X importtime``), and pandas imports pyarrow in
    every script, so a patch of a plain function or of an instance method (``Class.meth``:
    a Python function, or a method of an extension type) is a small function instead.
    Anything else (a ``staticmethod``, ``classmethod``, an ``async def``) goes to wrapt.
    """
    path, _, attr = name.rpartition(".")
    parent = module
    for part in path.split(".") if path else ():
        parent = getattr(parent, part)
    on_class = isinstance(parent, type)
    original = getattr(parent, attr)
    raw = parent.__dict__.get(attr, original) if on_class else original
    code = getattr(raw, "__code__", None)
    plain = callable(raw) and not isinstance(raw, (staticmethod, classmethod, type)) and \
        not (code is not None and code.co_flags & _ASYNC_FLAGS) and \
        (not on_class or hasattr(raw, "__get__"))  # a builtin function on a class binds no self
    if not plain:
        import wrapt

        wrapt.wrap_function_wrapper(module, name, wrapper)
        return
    if on_class:
        def method(self: Any, /, *args: Any, **kwargs: Any) -> Any:
            return wrapper(original.__get__(self, type(self)), self, args, kwargs)

        made = method
    else:
        def function(*args: Any, **kwargs: Any) -> Any:
            return wrapper(original, None, args, kwargs)

        made = function
    for field in ("__module__", "__name__", "__qualname__", "__doc__"):
        with contextlib.suppress(AttributeError, TypeError):
            setattr(made, field, getattr(original, field))
    made.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(parent, attr, made)
