"""urllib: hash each HTTP(S) response body as the program reads it.

``OpenerDirector.open`` (what ``urllib.request.urlopen`` and ``urlretrieve``
call) returns an ``http.client.HTTPResponse``; it is handed back inside
:class:`ResponseBody`, a transparent proxy counting every byte the program
reads (``read``, ``read1``, ``readinto``, ``readline(s)``, iteration). The
real response reads through its own methods, so nothing is counted twice. The
redirect handler re-enters ``open`` and the inner, final response is the one
wrapped. ``file:``, ``data:`` and ``ftp:`` responses are not HTTP downloads
(a ``file:`` URL is a local read the audit hook already sees).
"""

from __future__ import annotations

import http.client
import os
import threading
from collections.abc import Iterator
from typing import Any

import wrapt

from sharklib.capture.libs.body_digest import BodyDigest, FinishingProxy
from sharklib.capture.libs.recording import guarded, recorder

#: the file ``urlretrieve`` is saving to in this thread, so its download can name it
_saving = threading.local()


class ResponseBody(FinishingProxy):
    """An ``http.client.HTTPResponse`` whose bytes are counted on the way to the program."""

    def _self_after(self, data: Any) -> None:
        body = self._self_body
        try:
            body.feed(data)
            if self.__wrapped__.isclosed():
                body.finish()
        except Exception:
            pass

    def read(self, amt: int | None = None) -> bytes:
        data = self.__wrapped__.read(amt)
        self._self_after(data)
        return data

    def read1(self, n: int = -1) -> bytes:
        data = self.__wrapped__.read1(n)
        self._self_after(data)
        return data

    def readinto(self, b: Any) -> int:
        n = self.__wrapped__.readinto(b)
        self._self_after(memoryview(b)[:n] if n else b"")
        return n

    def readinto1(self, b: Any) -> int:
        n = self.__wrapped__.readinto1(b)
        self._self_after(memoryview(b)[:n] if n else b"")
        return n

    def readline(self, limit: int = -1) -> bytes:
        data = self.__wrapped__.readline(limit)
        self._self_after(data)
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = self.__wrapped__.readlines(hint)
        for line in lines:
            self._self_body.feed(line)
        self._self_after(b"")
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line





def _method(args: Any, kwargs: Any) -> str:
    fullurl = args[0] if args else kwargs.get("fullurl")
    if hasattr(fullurl, "get_method"):
        return str(fullurl.get_method())
    data = args[1] if len(args) > 1 else kwargs.get("data")
    return "POST" if data is not None else "GET"


def _open(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    response = wrapped(*args, **kwargs)
    with guarded("urllib download"):
        if (isinstance(response, http.client.HTTPResponse) and not isinstance(response, ResponseBody)
                and recorder() is not None):
            method = _method(args, kwargs)
            if method.upper() != "HEAD":
                url = response.geturl() if hasattr(response, "geturl") else ""
                saved_to = getattr(_saving, "path", None)
                body = BodyDigest(str(url), response.status, response.headers, method,
                                  saved_to=saved_to)
                proxy = ResponseBody(response, body)
                import weakref

                weakref.finalize(proxy, body.finish)
                return proxy
    return response


def _urlretrieve(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``urlretrieve(url, filename)`` says where the body goes: the download names that file."""
    previous = getattr(_saving, "path", None)
    try:
        filename = args[1] if len(args) > 1 else kwargs.get("filename")
        _saving.path = os.path.abspath(os.fsdecode(filename)) if filename is not None else None
    except Exception:
        _saving.path = None
    try:
        return wrapped(*args, **kwargs)
    finally:
        _saving.path = previous


def patch(module: Any) -> None:
    """Wrap ``urllib.request.OpenerDirector.open`` and ``urlretrieve``."""
    wrapt.wrap_function_wrapper(module, "OpenerDirector.open", _open)
    wrapt.wrap_function_wrapper(module, "urlretrieve", _urlretrieve)
