"""Objects kept alive by something other than an indexed run: gc roots.

``sharklib cache gc`` deletes every object no indexed run names. Some holders of
objects are not runs: a ``sharklib shell`` session keeps the content each
mutation replaced or made, so that ``:undo``/``:checkout`` can put it back
long after the run that made it was collected (or when no run made it at all:
the bytes a file held before a command changed it). Such a holder registers a
*root file* in the cache's ``roots/`` directory:

    roots/NAME.roots     first line ``owner ABSOLUTE-PATH``, then one sha256 a line

The file is appended to as the holder stores objects (one short write, never
rewritten), and lives as long as its owner path exists: when the owner is
gone (a deleted session, a removed workspace) the root file is stale, gc removes
it, and the objects it named become collectable like any other unreferenced
object. A torn last line (a holder killed mid-append) is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

_SHA = re.compile(r"[0-9a-f]{64}")


def root_file(cache_dir: str | os.PathLike[str], owner: str) -> Path:
    """Where the root file of ``owner`` lives in the cache at ``cache_dir``."""
    tag = hashlib.sha256(os.fsencode(os.path.abspath(owner))).hexdigest()[:32]
    return Path(cache_dir) / "roots" / f"{tag}.roots"


def add_roots(cache_dir: str | os.PathLike[str], owner: str, digests: Iterable[str]) -> None:
    """Keep ``digests`` alive for as long as ``owner`` exists (call under the cache's shared lock,
    after storing the objects, so gc never sees an object stored and not yet rooted)."""
    shas = [d for d in digests if d and _SHA.fullmatch(d)]
    if not shas:
        return
    path = root_file(cache_dir, owner)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644)
    try:
        head = b"" if os.fstat(fd).st_size else \
            b"owner " + os.fsencode(os.path.abspath(owner)) + b"\n"
        os.write(fd, head + "".join(f"{s}\n" for s in shas).encode())
    finally:
        os.close(fd)


def drop_roots(cache_dir: str | os.PathLike[str], owner: str) -> None:
    """Forget ``owner``'s roots (its objects become collectable)."""
    with contextlib.suppress(FileNotFoundError):
        root_file(cache_dir, owner).unlink()


def live_objects(cache_dir: str | os.PathLike[str], *, prune: bool = True) -> set[str]:
    """Every object a live root file names; stale root files (owner gone) are removed when
    ``prune`` (gc holds the exclusive lock then, so no holder is appending)."""
    keep: set[str] = set()
    base = Path(cache_dir) / "roots"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return keep
    for name in names:
        if not name.endswith(".roots"):
            continue
        path = base / name
        if path.is_symlink() or not path.is_file():
            continue
        try:
            lines = path.read_bytes().split(b"\n")
        except OSError:
            continue
        owner = os.fsdecode(lines[0][len(b"owner "):]) if lines[0].startswith(b"owner ") else ""
        if not owner or not os.path.exists(owner):
            if prune:
                with contextlib.suppress(OSError):
                    path.unlink()
            continue
        for line in lines[1:]:
            text = line.decode("ascii", "replace").strip()
            if _SHA.fullmatch(text):
                keep.add(text)
    return keep
