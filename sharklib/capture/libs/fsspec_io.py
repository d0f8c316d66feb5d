"""fsspec: remote reads and writes, recorded by URL with a digest of the bytes moved.

``AbstractFileSystem.open`` is the door every ``fsspec.open``, ``fs.open``
and library built on them (pandas, xarray, dask) goes through. For a remote
filesystem the binary file it returns is handed back inside
:class:`RemoteFile`, which feeds a digest as bytes are read or written. A read
is recorded as a download (``method`` ``GET``) of ``protocol://path``; a write
as one with ``method`` ``PUT`` (the recorder has no remote outputs yet). When
the program reads sequentially from the start the digest is of the bytes read
(the whole object when read to the end); if it seeks anywhere but the start,
the bytes read are no single prefix and ``sha256`` is left out (the ETag, when
the backend reports one, still identifies the object). Over HTTP(S) the ETag
and Last-Modified that ``HTTPFileSystem`` fetched to size the file (its
``_info``, patched by :func:`patch_http`) or got with a streamed GET are
recorded, so an fsspec download is revalidated and reused like a ``requests``
one instead of making its run never reusable. Compression applied by
``open(compression=...)`` sits *outside* the counting proxy, so the digest is
of the stored bytes. Local paths (``file://``) are opened with the builtin
``open`` inside fsspec, which the audit hook already records under the same
canonical path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import wrapt

from sharklib.capture.libs.body_digest import BodyDigest, FinishingProxy
from sharklib.capture.libs.recording import guarded, recorder

_LOCAL = {"file", "local"}


#: URL -> the validators HTTPFileSystem._info last saw for it (bounded: see _remember)
_http_validators: dict[str, dict[str, str]] = {}
_HTTP_VALIDATORS_KEPT = 256
_VALIDATOR_NAMES = (("ETag", "ETag"), ("etag", "ETag"), ("LastModified", "Last-Modified"),
                    ("last_modified", "Last-Modified"), ("Last-Modified", "Last-Modified"))


def _validators(found: Any) -> dict[str, str]:
    """ETag / Last-Modified out of a details dict or a response's headers mapping."""
    out: dict[str, str] = {}
    if found is None:
        return out
    for key, name in _VALIDATOR_NAMES:
        try:
            value = found.get(key)
        except Exception:
            return out
        if value is not None and name not in out:
            out[name] = str(value)
    return out


def _remember(url: str, info: Any) -> None:
    found = _validators(info) if isinstance(info, dict) else {}
    if found:
        if len(_http_validators) >= _HTTP_VALIDATORS_KEPT:
            _http_validators.pop(next(iter(_http_validators)))
        _http_validators[url] = found
    else:
        _http_validators.pop(url, None)


class RemoteFile(FinishingProxy):
    """A file of a remote filesystem whose bytes are counted as the program moves them."""

    def __init__(self, f: Any, body: BodyDigest) -> None:
        super().__init__(f, body)
        self._self_pos = 0

    def _self_read(self, data: Any) -> None:
        try:
            self._self_body.feed(data)
            self._self_pos += len(data)
        except Exception:
            pass

    def read(self, *args: Any, **kwargs: Any) -> Any:
        data = self.__wrapped__.read(*args, **kwargs)
        self._self_read(data)
        return data

    def read1(self, *args: Any, **kwargs: Any) -> Any:
        data = self.__wrapped__.read1(*args, **kwargs)
        self._self_read(data)
        return data

    def readinto(self, b: Any) -> Any:
        n = self.__wrapped__.readinto(b)
        if n:
            self._self_read(memoryview(b)[:n])
        return n

    def readline(self, *args: Any, **kwargs: Any) -> Any:
        data = self.__wrapped__.readline(*args, **kwargs)
        self._self_read(data)
        return data

    def readlines(self, *args: Any, **kwargs: Any) -> Any:
        lines = self.__wrapped__.readlines(*args, **kwargs)
        for line in lines:
            self._self_read(line)
        return lines

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def write(self, data: Any) -> Any:
        n = self.__wrapped__.write(data)
        try:
            view = memoryview(data).cast("B")
            self._self_body.feed(view if n is None else view[:n])
            self._self_pos += len(view) if n is None else n
        except Exception:
            pass
        return n

    def seek(self, *args: Any, **kwargs: Any) -> Any:
        pos = self.__wrapped__.seek(*args, **kwargs)
        try:
            where = pos if isinstance(pos, int) else self.__wrapped__.tell()
            if where != self._self_pos:
                if where == 0:
                    self._self_body.restart()
                    self._self_body.exact = True
                else:
                    self._self_body.exact = False
                self._self_pos = where
        except Exception:
            pass
        return pos





def _is_local(fs: Any) -> bool:
    protocol = fs.protocol
    protos = (protocol,) if isinstance(protocol, str) else tuple(protocol)
    return bool(_LOCAL.intersection(protos))


def _open(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    path = args[0] if args else kwargs.get("path")
    mode = args[1] if len(args) > 1 else kwargs.get("mode", "rb")
    try:
        wanted = (isinstance(mode, str) and "b" in mode and recorder() is not None
                  and not _is_local(instance))
    except Exception:
        wanted = False
    if not wanted:
        return wrapped(*args, **kwargs)
    # Open without compression, count the stored bytes, then compress as fsspec would.
    kwargs = dict(kwargs)
    if len(args) > 4:
        compression = args[4]
        args = (*args[:4], None, *args[5:])
    else:
        compression = kwargs.pop("compression", None)
    stripped = instance._strip_protocol(path)
    f = wrapped(*args, **kwargs)
    result = f
    with guarded("fsspec file"):
        url = instance.unstrip_protocol(stripped)
        headers: dict[str, Any] = {}
        if "r" in mode:
            details = getattr(f, "details", None)
            headers = _validators(details) if isinstance(details, dict) else {}
            if not headers:  # HTTPStreamFile: the GET's own response
                headers = _validators(getattr(getattr(f, "r", None), "headers", None))
            if not headers:  # HTTPFile: what sizing the file (HEAD) returned
                headers = dict(_http_validators.get(stripped, {}))
        body = BodyDigest(url, None, headers, "GET" if "r" in mode else "PUT")
        result = RemoteFile(f, body)
        import weakref

        weakref.finalize(result, body.finish)
    if compression is not None:
        from fsspec.compression import compr
        from fsspec.core import get_compression

        result = compr[get_compression(stripped, compression)](result, mode=mode[0])
    return result


async def _http_info(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    info = await wrapped(*args, **kwargs)
    with guarded("fsspec http info"):
        url = args[0] if args else kwargs.get("url")
        if isinstance(url, str) and recorder() is not None:
            _remember(url, info)
    return info


def patch_http(module: Any) -> None:
    """Wrap ``HTTPFileSystem._info`` (``module`` is ``fsspec.implementations.http``).

    ``HTTPFile`` keeps only the size of the HEAD response that sized it; the
    ETag and Last-Modified it also carried are what makes the download
    revalidatable, so they are kept here for :func:`_open` to record.
    """
    wrapt.wrap_function_wrapper(module, "HTTPFileSystem._info", _http_info)


def patch(module: Any) -> None:
    """Wrap ``fsspec.spec.AbstractFileSystem.open`` (``module`` is ``fsspec.spec``)."""
    wrapt.wrap_function_wrapper(module, "AbstractFileSystem.open", _open)
