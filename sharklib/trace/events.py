"""What a traced process tree did, as one ordered stream of events.

Both backends (eBPF and strace) decode into these few types so that
:mod:`sharklib.trace.assemble` turns either stream into the same Runs. Paths
are absolute ``str`` with undecodable bytes kept by ``os.fsdecode``
(surrogateescape), so newlines, tabs and invalid UTF-8 survive to the Run.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["fork", "exec", "exit", "open", "rename", "link", "symlink", "unlink", "rmdir",
               "truncate", "chdir", "connect"]

#: how a file was opened: read only, write only, or both
Mode = Literal["r", "w", "rw"]


@dataclass(slots=True)
class Event:
    """One thing a traced process did; only the fields its ``kind`` needs are set.

    ``path``: the file (open, unlink, truncate, rmdir), the source (rename,
    link), the link target as written (symlink), the new cwd (chdir), the
    executable as the caller named it (exec). ``path2``: the destination
    (rename, link, symlink) or the file the kernel finally ran (exec).
    ``status`` is the wait status for exit, the parent pid for fork.
    """

    kind: Kind
    pid: int
    path: str = ""
    path2: str = ""
    mode: Mode = "r"
    regular: bool = True
    argv: list[str] = field(default_factory=list)
    cwd: str = ""
    status: int = 0
    address: str = ""


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
    proto = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}.get(sock_type, "inet")
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
