"""Inspect or mutate: what a command did to the workspace, read from its record.

Nothing is walked: the traced runs name every file the command's process tree
wrote, renamed or removed (and every file it read); a reused command names the
outputs the cache restored. A command is a *mutation* when any of those paths
lies in the workspace (sharklib's own files, ``.sharklib/`` and sidecars,
aside); everything it wrote elsewhere is listed as outside.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

from sharklib.attest.naming import SUFFIX


@dataclass
class Effect:
    """What one command did, in workspace-relative paths."""

    written: dict[str, str | None] = field(default_factory=dict)  # path -> sha256 (None: deleted)
    sizes: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)  # read before (path -> sha256)
    #: written files the command read before it finished writing them (``sed -i``, ``sort -o f
    #: f``): they existed before the command, even when a new inode now holds them
    reread: set[str] = field(default_factory=set)
    outside: list[str] = field(default_factory=list)
    downloads: list[dict[str, Any]] = field(default_factory=list)
    python: str = ""
    distributions: dict[str, str] = field(default_factory=dict)

    @property
    def mutates(self) -> bool:
        return bool(self.written)


def inside(path: str, workspace: str) -> str | None:
    """``path`` relative to ``workspace``, or None outside it (or in sharklib's own files)."""
    rel = os.path.relpath(path, workspace)
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        return None
    if rel == ".sharklib" or rel.startswith(".sharklib" + os.sep) or rel.endswith(SUFFIX) \
            or rel == ".":
        return None
    return rel


def inherited_streams() -> set[str]:
    """The files this process's stdout/stderr go to: a command's writes there are not its outputs."""
    paths = set()
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            paths.add(os.readlink(f"/proc/self/fd/{fd}"))
    return paths


def from_runs(runs: list[Any], workspace: str, streams: set[str]) -> Effect:
    """The effect of a traced (or Python-captured) command."""
    eff = Effect()
    produced: set[str] = set()
    for run in sorted(runs, key=lambda r: r.started):
        for out in run.outputs:
            if out.stream and out.path in streams:
                continue
            rel = inside(out.path, workspace)
            if rel is None:
                if os.path.relpath(out.path, workspace).startswith(".."):
                    eff.outside.append(out.path)
                continue
            eff.written[rel] = out.sha256
            eff.sizes[rel] = out.size
            produced.add(rel)
            read = out.inputs if out.inputs is not None else [a.path for a in run.inputs]
            if out.path in read:
                eff.reread.add(rel)
        for path in run.removed:
            rel = inside(path, workspace)
            if rel is not None and not os.path.lexists(path):
                eff.written[rel] = None
        script = run.code.script if run.code.script and not run.code.inline else None
        for art in [*run.inputs, *([script] if script else []), *run.code.modules]:
            if art is None or art.path.endswith("/") or os.path.basename(art.path).startswith("<"):
                continue
            rel = inside(art.path, workspace)
            if rel is not None and rel not in produced and art.sha256:
                eff.inputs.setdefault(rel, art.sha256)
        for d in run.downloads:
            eff.downloads.append({"url": d.url, "sha256": d.sha256, "saved_to": d.saved_to})
        if run.environment.python_version and not eff.python:
            eff.python = run.environment.python_version
        eff.distributions.update(run.environment.distributions or {})
    # a file made and then removed again within the command is no change; one that existed
    # before (the tracer lists it as removed) and is gone now is a deletion
    removed = {inside(p, workspace) for run in runs for p in run.removed}
    for rel in [r for r, sha in eff.written.items() if sha is not None]:
        if not os.path.lexists(os.path.join(workspace, rel)):
            if rel in removed:
                eff.written[rel] = None
            else:
                del eff.written[rel]
    eff.outside = sorted(set(eff.outside))
    return eff


def from_restored(paths: list[str], workspace: str, digests: dict[str, tuple[str, int]]) -> Effect:
    """The effect of a reused command: the outputs the cache put (back) in place."""
    eff = Effect()
    for path in paths:
        rel = inside(path, workspace)
        if rel is None or path not in digests:
            continue
        eff.written[rel] = digests[path][0]
        eff.sizes[rel] = digests[path][1]
    return eff
