"""httpx: hash each response body, sync or async, as the program consumes it.

Every way httpx hands out a body ends in ``iter_bytes`` (decoded bytes:
``read``, ``iter_text``, ``iter_lines``) or ``iter_raw`` (bytes as they came off
the connection); the async client mirrors them as ``aiter_bytes``/``aiter_raw``.
Both are wrapped. While ``iter_bytes`` is running it counts the decoded bytes
and the inner ``iter_raw`` stays silent, so the digest is always of what the
program received and no byte counts twice; a body already read into
``.content`` is served from memory and not counted again. Responses to HEAD
requests and redirect hops are not recorded.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import wrapt

from sharklib.capture.libs.body_digest import BodyDigest
from sharklib.capture.libs.recording import recorder, warn

#: response -> its digest; keyed weakly so a dropped response takes its entry with it
_bodies: weakref.WeakKeyDictionary[Any, _Tap] = weakref.WeakKeyDictionary()


class _Tap:
    __slots__ = ("body", "decoding")

    def __init__(self, body: BodyDigest) -> None:
        self.body = body
        #: True while iter_bytes counts decoded bytes (iter_raw beneath it must not count)
        self.decoding = False


def _tap(response: Any) -> _Tap | None:
    try:
        tap = _bodies.get(response)
        if tap is not None:
            return tap
        if recorder() is None or response.has_redirect_location:
            return None
        request = response.request
        if request.method.upper() == "HEAD":
            return None
        tap = _Tap(BodyDigest(str(request.url), response.status_code, response.headers,
                              request.method, owner=response))
        _bodies[response] = tap
        return tap
    except Exception as exc:
        warn("httpx download", exc)
        return None


def _iter_bytes(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Iterator[bytes]:
    if hasattr(instance, "_content"):
        return wrapped(*args, **kwargs)
    return _count_decoded(wrapped(*args, **kwargs), _tap(instance))


def _count_decoded(chunks: Iterator[bytes], tap: _Tap | None) -> Iterator[bytes]:
    if tap is None:
        yield from chunks
        return
    tap.decoding = True
    try:
        for chunk in chunks:
            tap.body.feed(chunk)
            yield chunk
    finally:
        tap.decoding = False
    tap.body.finish()


def _iter_raw(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Iterator[bytes]:
    return _count_raw(wrapped(*args, **kwargs), _tap(instance))


def _count_raw(chunks: Iterator[bytes], tap: _Tap | None) -> Iterator[bytes]:
    for chunk in chunks:
        if tap is not None and not tap.decoding:
            tap.body.feed(chunk)
        yield chunk
    if tap is not None and not tap.decoding:
        tap.body.finish()


def _aiter_bytes(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> AsyncIterator[bytes]:
    if hasattr(instance, "_content"):
        return wrapped(*args, **kwargs)
    return _acount_decoded(wrapped(*args, **kwargs), _tap(instance))


async def _acount_decoded(chunks: AsyncIterator[bytes], tap: _Tap | None) -> AsyncIterator[bytes]:
    if tap is not None:
        tap.decoding = True
    try:
        async for chunk in chunks:
            if tap is not None:
                tap.body.feed(chunk)
            yield chunk
    finally:
        if tap is not None:
            tap.decoding = False
    if tap is not None:
        tap.body.finish()


def _aiter_raw(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> AsyncIterator[bytes]:
    return _acount_raw(wrapped(*args, **kwargs), _tap(instance))


async def _acount_raw(chunks: AsyncIterator[bytes], tap: _Tap | None) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        if tap is not None and not tap.decoding:
            tap.body.feed(chunk)
        yield chunk
    if tap is not None and not tap.decoding:
        tap.body.finish()


def _finish(instance: Any) -> None:
    tap = _bodies.get(instance)
    if tap is not None and not tap.decoding:
        tap.body.finish()


def _close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    try:
        return wrapped(*args, **kwargs)
    finally:
        _finish(instance)


async def _aclose(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _finish(instance)


def patch(module: Any) -> None:
    """Wrap ``httpx.Response``'s byte iterators and close methods (``module`` is ``httpx._models``)."""
    for name, wrapper in (("iter_bytes", _iter_bytes), ("iter_raw", _iter_raw),
                          ("aiter_bytes", _aiter_bytes), ("aiter_raw", _aiter_raw),
                          ("close", _close), ("aclose", _aclose)):
        wrapt.wrap_function_wrapper(module, f"Response.{name}", wrapper)
