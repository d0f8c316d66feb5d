"""A download's digest, computed from the bytes as they pass to the program.

Each patched HTTP client hands every chunk it gives the program to one
:class:`BodyDigest`; nothing is buffered and nothing is read twice. The
download is reported to the recorder exactly once: when the body reaches its
end, when the program closes the response, when the response is garbage
collected, or at interpreter exit for a body left half-read. ``size`` and
``sha256`` then describe the bytes the program actually received, which for a
partially consumed body is the prefix it read.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from typing import Any, Protocol

import wrapt

from sharklib.capture.libs.recording import recorder, warn

_pending: set[BodyDigest] = set()
_lock = threading.Lock()
_exit_hook = False


class Headers(Protocol):
    """Response headers as each client library has them: a dict, ``http.client``'s
    ``HTTPMessage`` (not a Mapping), requests' and httpx's case-insensitive maps."""

    def get(self, name: str, /) -> object: ...


class BodyDigest:
    """Running sha256 and size of one response body, plus what identifies the resource."""

    __slots__ = ("__weakref__", "_h", "done", "etag", "exact", "last_modified", "method",
                 "saved_to", "size", "status", "url")

    def __init__(self, url: str, status: int | None, headers: Headers | None,
                 method: str = "GET", owner: object | None = None,
                 saved_to: str | None = None) -> None:
        import hashlib

        self.url = url
        #: the file the body was saved to, when the saving call names it (``urlretrieve``)
        self.saved_to = saved_to
        self.status = status
        self.method = (method or "GET").upper()
        self.etag = _header(headers, "ETag")
        self.last_modified = _header(headers, "Last-Modified")
        self._h = hashlib.sha256()
        self.size = 0
        self.done = False
        #: False once the program skipped around: the bytes read are then no single prefix
        self.exact = True
        with _lock:
            _pending.add(self)
            _ensure_exit_hook()
        if owner is not None:
            weakref.finalize(owner, self.finish)

    def feed(self, data: Any) -> None:
        """Count bytes the program received (bytes, bytearray or memoryview)."""
        if not self.done and data:
            self._h.update(data)
            self.size += len(data)

    def restart(self) -> None:
        """The program went back to the start: count the body afresh."""
        import hashlib

        self._h = hashlib.sha256()
        self.size = 0

    def finish(self) -> None:
        """Report the download once; later calls do nothing."""
        if self.done:
            return
        self.done = True
        with _lock:
            _pending.discard(self)
        try:
            rec = recorder()
            if rec is None:
                return
            from sharklib.model import Download

            rec.download(Download(url=self.url, sha256=self._h.hexdigest() if self.exact else None,
                                  size=self.size,
                                  etag=self.etag, last_modified=self.last_modified,
                                  status=self.status, method=self.method,
                                  saved_to=self.saved_to))
        except Exception as exc:
            warn(f"download record for {self.url}", exc)


def _header(headers: Headers | None, name: str) -> str | None:
    if headers is None:
        return None
    try:
        value = headers.get(name)
    except Exception:
        return None
    return None if value is None else str(value)


def _ensure_exit_hook() -> None:
    """Finish half-read bodies at exit; registered on first use, so after the recorder's own
    exit hook and therefore run before it (atexit runs last-registered first)."""
    global _exit_hook
    if not _exit_hook:
        _exit_hook = True
        atexit.register(finish_all)


def finish_all() -> None:
    """Report every download still open (a body the program never read to the end)."""
    with _lock:
        open_ = list(_pending)
    for tap in open_:
        tap.finish()


class FinishingProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """A proxy of a response or file whose :class:`BodyDigest` finishes when it is closed.

    The three streaming wrappers (requests' raw body, urllib's response, an
    fsspec file) share this: entering returns the proxy (so reads keep being
    counted), leaving or closing finishes the digest after the real close.
    """

    def __init__(self, wrapped: Any, body: BodyDigest) -> None:
        super().__init__(wrapped)
        self._self_body = body

    def __enter__(self) -> Any:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc)
        finally:
            self._self_body.finish()

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_body.finish()
