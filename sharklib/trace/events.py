"""What a traced process tree did, as one ordered stream of events.

Both backends (eBPF and strace) decode into these few types so that
:mod:`sharklib.trace.assemble` turns either stream into the same Runs. Paths
are absolute ``str`` with undecodable bytes kept by ``os.fsdecode``
(surrogateescape), so newlines, tabs and invalid UTF-8 survive to the Run.
"""

from __future__ import annotations

import os
import struct

from sharklib.config import BOOKKEEPING_MARK

# Neither ``typing`` nor ``dataclasses`` at run time: ``sharklib trace`` imports this module
# before it can start loading the BPF programs, and those imports cost ~10 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    Kind = Literal["fork", "exec", "exit", "open", "rename", "link", "symlink", "unlink",
                   "rmdir", "truncate", "chdir", "connect"]

    #: how a file was opened: read only, write only, both, appending (``O_APPEND``); or
    #: keeping what the file held (an open that neither created nor truncated it): write-only
    #: (``k``), or read-write, an update whose old content the program may read (``u``)
    Mode = Literal["r", "w", "rw", "a", "k", "u"]

#: Put into the command line of a process sharklib starts for its own records (``git -c
#: sharklib.bookkeeping=true status``, run at a captured script's exit): the tracer leaves such a
#: process and its descendants out, so the git metadata it reads never shows up as a step's data.
#: A ``-c`` setting because it reaches the tracer in the ``exec`` event of both backends and
#: changes nothing about what ``git`` does.


def is_bookkeeping(argv: list[str]) -> bool:
    """True for the command line of a process sharklib ran for its own records."""
    return len(argv) >= 3 and argv[1] == "-c" and argv[2] == BOOKKEEPING_MARK


_FIELDS = ("kind", "pid", "path", "path2", "mode", "regular", "argv", "cwd", "status", "address")


class Event:
    """One thing a traced process did; only the fields its ``kind`` needs are set.

    ``path``: the file (open, unlink, truncate, rmdir), the source (rename,
    link), the link target as written (symlink), the new cwd (chdir), the
    executable as the caller named it (exec). ``path2``: the destination
    (rename, link, symlink) or the file the kernel finally ran (exec).
    ``status`` is the wait status for exit, the parent pid for fork.
    """

    __slots__ = _FIELDS

    def __init__(self, kind: Kind, pid: int, path: str = "", path2: str = "", mode: Mode = "r",
                 regular: bool = True, argv: list[str] | None = None, cwd: str = "",
                 status: int = 0, address: str = "") -> None:
        self.kind = kind
        self.pid = pid
        self.path = path
        self.path2 = path2
        self.mode = mode
        self.regular = regular
        self.argv: list[str] = argv if argv is not None else []
        self.cwd = cwd
        self.status = status
        self.address = address

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaced

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in _FIELDS)
        return f"Event({shown})"


def join_path(base: str, name: str) -> str:
    """``name`` made absolute against ``base`` and normalised (symlinks not resolved)."""
    if not name:
        return base
    full = name if name.startswith("/") else os.path.join(base or "/", name)
    return os.path.normpath(full) if full != "/" else "/"


def decode_sockaddr(raw: bytes, sock_type: int = 0) -> str:
    """A connect() address as ``tcp:host:port``, ``udp:[v6]:port`` or ``unix:/path``."""
    import socket

    if len(raw) < 2:
        return "unknown"
    family = struct.unpack_from("<H", raw)[0]
    protocols: dict[int, str] = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}
    proto = protocols.get(sock_type, "inet")
    if family == socket.AF_INET and len(raw) >= 8:
        port = struct.unpack_from(">H", raw, 2)[0]
        return f"{proto}:{socket.inet_ntop(socket.AF_INET, raw[4:8])}:{port}"
    if family == socket.AF_INET6 and len(raw) >= 24:
        port = struct.unpack_from(">H", raw, 2)[0]
        return f"{proto}6:[{socket.inet_ntop(socket.AF_INET6, raw[8:24])}]:{port}"
    if family == socket.AF_UNIX:
        body = raw[2:]
        if body[:1] == b"\0":
            return "unix:@" + body[1:].split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
        return "unix:" + os.fsdecode(body.split(b"\0", 1)[0])
    return f"family{family}"
