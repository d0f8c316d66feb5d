"""requests: hash each response body as the program consumes it.

``HTTPAdapter.build_response`` is where a urllib3 response becomes a
``requests.Response``; its ``raw`` is replaced by :class:`RawBody`, a
transparent proxy that feeds a :class:`BodyDigest` from every way requests or
the program pulls bytes: ``stream()`` (what ``iter_content``/``.content`` use),
``read``/``read1``/``readinto`` (``shutil.copyfileobj(r.raw, f)``) and line
iteration. The real urllib3 object calls its *own* ``read`` internally, never
the proxy's, so no byte is counted twice. Redirect hops (3xx with a
``Location``) and HEAD requests carry no data and are not recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import wrapt

from sharklib.capture.libs.body_digest import BodyDigest, FinishingProxy
from sharklib.capture.libs.recording import guarded, recorder


class RawBody(FinishingProxy):
    """A urllib3 response whose bytes are counted on the way to the program."""

    def _self_after(self, data: Any, eof: bool) -> None:
        body = self._self_body
        try:
            body.feed(data)
            if eof or self.__wrapped__.closed:
                body.finish()
        except Exception:
            pass

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        data = self.__wrapped__.read(amt, *args, **kwargs)
        self._self_after(data, amt is None or (not data and amt != 0))
        return data

    def read1(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        data = self.__wrapped__.read1(amt, *args, **kwargs)
        self._self_after(data, not data and amt != 0)
        return data

    def readinto(self, b: Any) -> int:
        n = self.__wrapped__.readinto(b)
        self._self_after(memoryview(b)[:n] if n else b"", n == 0 and len(b) > 0)
        return n

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        feed = self._self_body.feed
        for chunk in self.__wrapped__.stream(*args, **kwargs):
            feed(chunk)
            yield chunk
        self._self_body.finish()

    def read_chunked(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        feed = self._self_body.feed
        for chunk in self.__wrapped__.read_chunked(*args, **kwargs):
            feed(chunk)
            yield chunk
        self._self_body.finish()

    def __iter__(self) -> Iterator[bytes]:
        feed = self._self_body.feed
        for line in self.__wrapped__:
            feed(line)
            yield line
        self._self_body.finish()





def _build_response(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    response = wrapped(*args, **kwargs)
    with guarded("requests download"):
        raw = response.raw
        request = response.request
        method = getattr(request, "method", None) or "GET"
        if (recorder() is not None and raw is not None and not isinstance(raw, RawBody)
                and not response.is_redirect and method.upper() != "HEAD"):
            body = BodyDigest(str(response.url), response.status_code, response.headers,
                              method, owner=response)
            response.raw = RawBody(raw, body)
    return response


def patch(module: Any) -> None:
    """Wrap ``requests.adapters.HTTPAdapter.build_response`` (``module`` is ``requests.adapters``)."""
    wrapt.wrap_function_wrapper(module, "HTTPAdapter.build_response", _build_response)
