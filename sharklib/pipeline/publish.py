"""``shark-publish``: copy final results, with their sidecars, out of the workspace.

A published file travels with its ``.intoto.jsonl`` sidecar, so what leaves the
project is verifiable offline. Copies are atomic (temporary file in the target
directory, then ``os.replace``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sharklib.attest.naming import sidecar_path
from sharklib.errors import PipelineError
from sharklib.pipeline.containment import contained
from sharklib.pipeline.stages import Publish


def _copy_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        shutil.copymode(src, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def publish(items: list[Publish], docdir: Path, doc: Path) -> list[str]:
    """Copy every item; return the destination paths written.

    Checked again here, after the stages ran (one of them may have planted a symlink since
    the plan): every file read and every file written resolves inside the document's
    directory (:func:`~sharklib.pipeline.containment.contained`).
    """
    written: list[str] = []
    for item in items:
        src = (docdir / item.source).absolute()
        dest = (docdir / item.dest).absolute()
        if item.dest.endswith("/") or dest.is_dir():
            dest = dest / src.name
        if not src.exists():
            raise PipelineError(f"nothing to publish: {item.source} does not exist", doc, item.line)
        contained(docdir, item.source, "publish source", doc, item.line)
        contained(docdir, str(dest), "publish destination", doc, item.line)
        if src.is_dir():
            files = [p for p in src.rglob("*") if p.is_file()]
            for f in files:
                target = dest / f.relative_to(src)
                contained(docdir, str(f), "publish source", doc, item.line)
                contained(docdir, str(target), "publish destination", doc, item.line)
                _copy_file(f, target)
            written.append(str(dest))
            continue
        _copy_file(src, dest)
        sidecar = Path(sidecar_path(src))
        if sidecar.exists():
            _copy_file(sidecar, Path(sidecar_path(dest)))
        written.append(str(dest))
    return written
