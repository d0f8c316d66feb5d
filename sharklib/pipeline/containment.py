"""Declarative blocks read and write only inside the document's directory.

A ``shark-run`` line is a shell command and may do what a shell may; the
declarative blocks are sharklib's own reads and writes on the document's
behalf, and a document is something one downloads and runs. Hostile testing
found ``shark-publish`` writing to ``../x`` and absolute paths, an import
destination checked lexically writing through a symlinked directory, and
``file:`` imports copying ``/etc/passwd`` or the signing key into the project.

One function, :func:`contained`, decides for every block (imports: destination
and ``file:`` source; publish: source and destination; ``shark-build``:
``find_links``), at plan time and again when the bytes move (a stage may have
planted a symlink since). Paths are resolved through symlinks (``realpath``)
before they are compared. A ``file:`` source or ``find_links`` directory may
lie under a directory the user names with ``--allow-outside PATH``; writes
never go outside.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sharklib.errors import PipelineError


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def resolve(root: str | os.PathLike[str], path: str) -> str:
    """``path`` (relative to ``root``, or absolute) with every existing symlink resolved."""
    return os.path.realpath(os.path.join(os.fspath(root), os.path.expanduser(path)))


def contained(root: str | os.PathLike[str], path: str, what: str, doc: Path | None = None,
              line: int | None = None, allow: Iterable[str] = ()) -> str:
    """The resolved ``path``; a one-line :class:`PipelineError` naming ``what`` and the line
    when it is outside ``root`` (resolved) and outside every ``allow`` directory."""
    real_root = os.path.realpath(os.fspath(root))
    real = resolve(root, path)
    if _under(real, real_root):
        return real
    for extra in allow:
        if _under(real, os.path.realpath(extra)):
            return real
    shown = path if real == os.path.normpath(os.path.join(os.fspath(root), path)) \
        else f"{path} (resolves to {real})"
    hint = " (pass --allow-outside DIR to read from DIR)" \
        if what in ("file source", "find_links directory") else ""
    raise PipelineError(f"{what} {shown} is outside the document's directory{hint}", doc, line)


def check_document(docdir: str, doc: Path, imports: Iterable[tuple[int, str, str]],
                   publishes: Iterable[tuple[int, str, str]],
                   find_links: Iterable[tuple[int, str]], allow: Iterable[str] = ()) -> None:
    """Every declarative block of a document, before anything runs."""
    allowed = list(allow)
    for line, source, dest in imports:
        contained(docdir, dest, "import destination", doc, line)
        if source.startswith("file:"):
            contained(docdir, file_source_path(source), "file source", doc, line, allowed)
    for line, source, dest in publishes:
        contained(docdir, source, "publish source", doc, line)
        contained(docdir, dest, "publish destination", doc, line)
    for line, link in find_links:
        contained(docdir, link, "find_links directory", doc, line, allowed)


def file_source_path(source: str) -> str:
    """The path of a ``file:PATH`` / ``file://PATH`` import source."""
    return source[len("file://"):] if source.startswith("file://") else source[len("file:"):]
