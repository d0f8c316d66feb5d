"""sqlite3: the database file is opened by the SQLite C library, never through ``open``.

``sqlite3.connect`` is wrapped: an existing database file is an input from the
moment it is connected. Whether it was also *written* is decided cheaply,
without parsing SQL: the connection is created through a subclass of its
factory (``sqlite3.Connection`` unless the program passed its own) whose
``commit`` and ``close`` compare ``total_changes`` and the file's size and
mtime with what they were at connect; at interpreter exit the same check runs
for connections still open (``with conn:`` commits without calling
``commit``). A written database is an output, reported finished when closed.
Its content at connect (or its absence) is an input, digested then: a database
updated in place is its old content plus the run's changes, so a run is reused
only over the same old content.
``:memory:`` and ``mode=memory`` URIs are not files.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import sqlite3
import threading
import weakref
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sharklib.capture.libs.recording import guarded, local_path, recorder


class _State:
    __slots__ = ("existed", "path", "stat", "written")

    def __init__(self, path: str, existed: bool, stat: tuple[int, int] | None) -> None:
        self.path = path
        self.existed = existed
        self.stat = stat
        self.written = False


#: live tracked connections -> what was known at connect
_states: weakref.WeakKeyDictionary[Any, _State] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_factories: dict[type, type] = {}
_exit_hook = False


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _check(conn: Any, state: _State, closing: bool) -> None:
    """Record the database as written if this connection changed it."""
    rec = recorder()
    if rec is None:
        return
    if not state.written:
        try:
            changed = conn.total_changes > 0
        except sqlite3.ProgrammingError:
            changed = False
        if changed or _stat(state.path) != state.stat:
            state.written = True
            rec.write(state.path, append=state.existed)
    if closing and state.written:
        rec.closed(state.path)


def tracked_factory(base: type[sqlite3.Connection]) -> type[sqlite3.Connection]:
    """A subclass of the connection factory ``base`` that notices its writes."""
    cls = _factories.get(base)
    if cls is not None:
        return cls

    def commit(self: Any) -> Any:
        result = base.commit(self)
        state = _states.get(self)
        if state is not None:
            with guarded("sqlite3 commit"):
                _check(self, state, closing=False)
        return result

    def close(self: Any) -> Any:
        state = _states.get(self)
        if state is not None:
            with contextlib.suppress(Exception):
                state.written = state.written or self.total_changes > 0
        result = base.close(self)
        if state is not None:
            with guarded("sqlite3 close"):
                _check(self, state, closing=True)
                _states.pop(self, None)
        return result

    cls = type(base.__name__, (base,), {"commit": commit, "close": close,
                                         "__module__": base.__module__,
                                         "__qualname__": base.__qualname__})
    _factories[base] = cls
    return cls


def _database(database: Any, uri: bool) -> str | None:
    """The local file a ``connect`` call opens, or ``None`` (memory, a URL we cannot read)."""
    if uri and isinstance(database, str | bytes):
        text = os.fsdecode(database)
        if text.startswith("file:"):
            parts = urlsplit(text)
            if parse_qs(parts.query).get("mode") == ["memory"]:
                return None
            path = unquote(parts.path)
            return path if path and path != ":memory:" else None
    return local_path(database)


def _read_only(database: Any, uri: bool) -> bool:
    """A ``file:…?mode=ro`` (or ``immutable=1``) URI: the connection cannot write."""
    if not (uri and isinstance(database, str | bytes)):
        return False
    query = parse_qs(urlsplit(os.fsdecode(database)).query)
    return query.get("mode") == ["ro"] or query.get("immutable") == ["1"]


def _connect(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    rec = recorder()
    if rec is None:
        return wrapped(*args, **kwargs)
    state: _State | None = None
    with guarded("sqlite3.connect"):
        database = args[0] if args else kwargs.get("database")
        uri = bool(kwargs.get("uri", args[7] if len(args) > 7 else False))
        path = _database(database, uri)
        if path is not None:
            state = _State(path, os.path.exists(path), _stat(path))
            if len(args) <= 5:  # a positional factory cannot be swapped: reads only
                kwargs = dict(kwargs)
                kwargs["factory"] = tracked_factory(kwargs.get("factory") or sqlite3.Connection)
        if path is not None and not _read_only(database, uri):
            # a database written in place ends up as its old content plus the changes: that
            # content (or its absence) is an input, taken before SQLite touches the file
            rec.prior(path)
    conn = wrapped(*args, **kwargs)
    if state is not None:
        with guarded("sqlite3.connect"):
            if state.existed:
                rec.read(state.path)
            if len(args) > 5:
                return conn
            if state.stat is None:
                state.stat = _stat(state.path)
                rec.write(state.path)
                state.written = True
            with _lock:
                _states[conn] = state
                _ensure_exit_hook()
    return conn


def _ensure_exit_hook() -> None:
    global _exit_hook
    if not _exit_hook:
        _exit_hook = True
        atexit.register(check_open)


def check_open() -> None:
    """Record databases written by connections the program never closed."""
    with _lock:
        items = list(_states.items())
    for conn, state in items:
        with guarded("sqlite3 at exit"):
            _check(conn, state, closing=False)


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def connect(*args: Any, **kwargs: Any) -> Any:
        return _connect(original, None, args, kwargs)

    connect.__wrapped__ = original
    return connect


def patch(module: Any) -> None:
    """Wrap ``sqlite3.connect`` (in ``sqlite3`` and ``sqlite3.dbapi2``).

    A plain function wrapper, not ``wrapt``: sharklib's own stat cache and run
    index import sqlite3 in every captured process, and importing ``wrapt``
    (which pulls in ``asyncio``) would cost each of them ~35 ms of start-up.
    """
    from sqlite3 import dbapi2

    if getattr(module.connect, "__wrapped__", None) is None:
        module.connect = _wrap(module.connect)
    if dbapi2.connect is not module.connect and getattr(dbapi2.connect, "__wrapped__", None) is None:
        dbapi2.connect = _wrap(dbapi2.connect)
