"""Link stages into a DAG: who writes each path, who reads it.

Resolution order, so the graph is the same on the first run and the tenth:
1. explicit writes (redirections, ``-o``, declared map outputs, import
   destinations) — two stages writing one path is an error;
2. writes remembered from earlier runs (declared or observed by capture);
3. mentions, in document order: a path some stage writes is a read; a
   directory that holds written paths is a gather (reduce) over all of them;
   an existing file is a read; a path nobody writes and that does not exist is
   written by the first stage that mentions it — except a path every copy of a
   map mentions, which is only ever read;
4. reads observed by capture in earlier runs (undeclared reads count).
A cycle is an error naming the lines involved.
"""

from __future__ import annotations

import graphlib
import os
from collections.abc import Iterable
from pathlib import Path

from sharklib.errors import PipelineError
from sharklib.pipeline.stages import Stage


def _ancestors(p: str, stop: str) -> Iterable[str]:
    """Parent directories of normalised absolute ``p``, nearest first, up to ``stop`` or ``/``."""
    while True:
        p = p.rpartition("/")[0] or "/"
        yield p
        if p == stop or p == "/":
            return


def _rel(p: str, root: str) -> str:
    return p[len(root) + 1:] if p.startswith(root + "/") else p


def link(stages: list[Stage], docdir: str, doc: Path,
         remembered: dict[str, dict[str, list[str]]] | None = None,
         observed: dict[int, tuple[list[str], list[str]]] | None = None) -> list[int]:
    """Fill ``deps`` of every stage; return a topological order of stage indexes.

    ``remembered`` maps stage signature to ``{"writes": [...], "inputs": [...]}`` (paths
    relative to ``docdir`` or absolute); ``observed`` maps stage index to
    ``(inputs, outputs)`` reported by the runner's planner.
    """
    remembered = remembered or {}
    observed = observed or {}
    writers: dict[str, int] = {}
    under: dict[str, set[int]] = {}

    def claim(p: str, s: Stage, explicit: bool) -> bool:
        other = writers.get(p)
        if other is not None and other != s.index:
            if not explicit:
                return False
            o = stages[other]
            if o.line == s.line and s.item:
                raise PipelineError(f"every stage of this map writes {_rel(p, docdir)}: name each "
                                    "output after its input with %{stem} or %{basename}, or gather by "
                                    "naming the directory without '*'", doc, s.line)
            raise PipelineError(f"two stages write {_rel(p, docdir)}: line {o.line} and line {s.line}",
                                doc, s.line)
        writers[p] = s.index
        for a in _ancestors(p, docdir):
            under.setdefault(a, set()).add(s.index)
        return True

    for s in stages:
        for w in s.writes:
            claim(w, s, True)
    extra_inputs: dict[int, list[str]] = {}
    for s in stages:
        mem = remembered.get(s.signature)
        obs = observed.get(s.index)
        later_writes = [os.path.join(docdir, p) for p in mem["writes"]] if mem else []
        if obs:
            later_writes += obs[1]
        for w in later_writes:
            w = os.path.normpath(w)
            if w not in s.writes and claim(w, s, False):
                s.writes.add(w)
        ins = [os.path.normpath(os.path.join(docdir, p)) for p in mem["inputs"]] if mem else []
        if obs:
            ins += obs[0]
        if ins:
            extra_inputs[s.index] = ins

    exists: dict[str, int] = {}

    def kind(p: str) -> int:
        k = exists.get(p)
        if k is None:
            k = 2 if os.path.isdir(p) else (1 if os.path.exists(p) else 0)
            exists[p] = k
        return k

    def inside_written(p: str) -> bool:
        return any(writers.get(a, s.index) != s.index for a in _ancestors(p, docdir))

    for s in stages:
        for m in s.mentions:
            w = writers.get(m)
            if w is not None:
                if w != s.index:
                    s.reads.add(m)
            elif m in under or kind(m) == 2:
                s.dirs.add(m)
            elif kind(m) == 1 or inside_written(m):
                s.reads.add(m)
            else:
                claim(m, s, False)
                s.writes.add(m)
        for m in s.shared:
            if m in under or (m not in writers and kind(m) == 2):
                s.dirs.add(m)
            elif writers.get(m, s.index) != s.index:
                s.reads.add(m)
        for m in s.bare:  # a plain word: only a directory stages write into, or a file they write
            if m in under:
                s.dirs.add(m)
            elif writers.get(m, s.index) != s.index:
                s.reads.add(m)

    sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
    for s in stages:
        deps: set[int] = set()
        for r in list(s.reads) + extra_inputs.get(s.index, []):
            w = writers.get(r)
            if w is None:
                for a in _ancestors(r, docdir):
                    w = writers.get(a)
                    if w is not None:
                        break
            if w is not None:
                deps.add(w)
        for d in s.dirs:
            deps.update(under.get(d, ()))
            w = writers.get(d)
            if w is not None:
                deps.add(w)
        deps.discard(s.index)
        s.deps = deps
        sorter.add(s.index, *deps)
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        lines = " -> ".join(f"line {stages[i].line}" for i in reversed(cycle))
        raise PipelineError(f"stages form a cycle: {lines}", doc, stages[cycle[0]].line) from None
