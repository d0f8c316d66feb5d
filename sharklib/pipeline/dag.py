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
from sharklib.pipeline.bulk import paused_gc
from sharklib.pipeline.stages import Stage


def _ancestors(p: str, stop: str) -> Iterable[str]:
    """Parent directories of normalised absolute ``p``, nearest first, up to ``stop`` or ``/``."""
    while True:
        p = p.rpartition("/")[0] or "/"
        yield p
        if p == stop or p == "/":
            return


def _parent(p: str) -> str:
    return p.rpartition("/")[0] or "/"


def _rel(p: str, root: str) -> str:
    return p[len(root) + 1:] if p.startswith(root + "/") else p


def _norm(p: str) -> str:
    """``os.path.normpath`` where it could change ``p`` (it is the hot spot of large maps)."""
    if p.startswith("/") and "//" not in p and "/." not in p and not p.endswith("/"):
        return p
    return os.path.normpath(p)


_UNSET = -2


def _collision(p: str, first: Stage, second: Stage, docdir: str) -> str:
    """Two copies of one map write ``p``: advice that fits why they collide."""
    assert first.item is not None and second.item is not None
    name = os.path.basename(second.item)
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    if "%{stem}" in second.display and stem in os.path.basename(p):
        # inputs that differ only in their extension (raw/a.csv, raw/a.tsv)
        return (f"map inputs {first.item} and {second.item} both write {_rel(p, docdir)}: "
                "name the output with %{basename}, which keeps the extension")
    return (f"every stage of this map writes {_rel(p, docdir)}: name each output after its "
            "input with %{stem} or %{basename}, or gather by naming the directory without '*'")


def link(stages: list[Stage], docdir: str, doc: Path,
         remembered: dict[str, dict[str, list[str]]] | None = None,
         observed: dict[int, tuple[list[str], list[str]]] | None = None) -> list[int]:
    """Fill ``deps`` of every stage; return a topological order of stage indexes (see
    :func:`_link`)."""
    with paused_gc():
        return _link(stages, docdir, doc, remembered, observed)


def _link(stages: list[Stage], docdir: str, doc: Path,
          remembered: dict[str, dict[str, list[str]]] | None,
          observed: dict[int, tuple[list[str], list[str]]] | None) -> list[int]:
    """Fill ``deps`` of every stage; return a topological order of stage indexes.

    ``remembered`` maps stage signature to ``{"writes": [...], "inputs": [...]}`` (paths
    relative to ``docdir`` or absolute); ``observed`` maps stage index to
    ``(inputs, outputs)`` reported by the runner's planner.

    Work per path is kept constant however large a map is: the directories a
    claim lies under are walked once per *directory* written into, not once per
    file, and "which stage writes an ancestor of this read" is answered once per
    directory read from.
    """
    remembered = remembered or {}
    observed = observed or {}
    prefix = docdir if docdir.endswith("/") else docdir + "/"
    writers: dict[str, int] = {}
    # stages writing directly into each directory; every ancestor (up to docdir) of such a
    # directory is in ``under_dirs``: the directories that hold written paths
    parent_writers: dict[str, set[int]] = {}
    under_dirs: set[str] = set()

    def claim(p: str, s: Stage, explicit: bool) -> bool:
        other = writers.get(p)
        if other is not None and other != s.index:
            if not explicit:
                return False
            o = stages[other]
            if o.line == s.line and s.item:
                raise PipelineError(_collision(p, o, s, docdir), doc, s.line)
            raise PipelineError(f"two stages write {_rel(p, docdir)}: line {o.line} and line {s.line}",
                                doc, s.line)
        writers[p] = s.index
        parent = p.rpartition("/")[0] or "/"
        got = parent_writers.get(parent)
        if got is None:
            parent_writers[parent] = {s.index}
            under_dirs.update(_ancestors(p, docdir))
        else:
            got.add(s.index)
        return True

    for s in stages:
        for w in s.writes:
            claim(w, s, True)
    # every stage's reads, with those remembered and observed: each looked up once below
    all_reads: dict[int, set[str]] = {}
    if remembered or observed:
        for s in stages:
            mem = remembered.get(s.signature) if remembered else None
            obs = observed.get(s.index)
            if mem is None and obs is None:
                continue
            writes = s.writes
            # remembered writes, then observed ones (a path in writes is claimed and normal)
            if mem:
                for p in mem["writes"]:
                    w = p if p.startswith("/") else prefix + p
                    if w not in writes:
                        w = _norm(w)
                        if w not in writes and claim(w, s, False):
                            writes.add(w)
            if obs:
                for w in obs[1]:
                    if w not in writes:
                        w = _norm(w)
                        if w not in writes and claim(w, s, False):
                            writes.add(w)
            reads = s.reads
            extra: set[str] | None = None  # s.reads still grows below: a copy holds the extra
            if mem:
                for p in mem["inputs"]:
                    r = _norm(p if p.startswith("/") else prefix + p)
                    if r not in reads:
                        if extra is None:
                            extra = set(reads)
                        extra.add(r)
            if obs:
                for r in obs[0]:
                    if r not in reads:
                        if extra is None:
                            extra = set(reads)
                        extra.add(r)
            if extra is not None:
                all_reads[s.index] = extra

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
            writer = writers.get(m)
            if writer is not None:
                if writer != s.index:
                    s.reads.add(m)
            elif m in under_dirs or kind(m) == 2:
                s.dirs.add(m)
            elif kind(m) == 1 or inside_written(m):
                s.reads.add(m)
            else:
                claim(m, s, False)
                s.writes.add(m)
        for m in s.shared:
            if m in under_dirs or (m not in writers and kind(m) == 2):
                s.dirs.add(m)
            elif writers.get(m, s.index) != s.index:
                s.reads.add(m)
        for m in s.bare:  # a plain word: only a directory stages write into, or a file they write
            if m in under_dirs:
                s.dirs.add(m)
            elif writers.get(m, s.index) != s.index:
                s.reads.add(m)

    under: dict[str, set[int]] | None = None  # directory -> every stage writing below it
    nearest: dict[str, int | None] = {}  # directory -> the stage writing it or its nearest ancestor
    for s in stages:
        deps: set[int] = set()
        extra = all_reads.get(s.index)
        for r in (s.reads if extra is None else extra.union(s.reads)):
            writer = writers.get(r)
            if writer is None:
                parent = _parent(r)
                got_w = nearest.get(parent, _UNSET)
                if got_w == _UNSET:
                    got_w = next((x for a in _ancestors(r, docdir)
                                  if (x := writers.get(a)) is not None), None)
                    nearest[parent] = got_w
                writer = got_w
            if writer is not None:
                deps.add(writer)
        if s.dirs:
            if under is None:
                under = _gather(parent_writers, docdir)
            for d in s.dirs:
                deps.update(under.get(d, ()))
                writer = writers.get(d)
                if writer is not None:
                    deps.add(writer)
        deps.discard(s.index)
        s.deps = deps
    return _order(stages, doc)


def _gather(parent_writers: dict[str, set[int]], docdir: str) -> dict[str, set[int]]:
    """Directory -> every stage writing anywhere below it (up to ``docdir``)."""
    under: dict[str, set[int]] = {}
    for parent, ws in parent_writers.items():
        a = parent
        while True:
            got = under.get(a)
            if got is None:
                under[a] = set(ws)
            else:
                got |= ws
            if a == docdir or a == "/":
                break
            a = _parent(a)
    return under


def _order(stages: list[Stage], doc: Path) -> list[int]:
    """A topological order (Kahn); on a cycle, an error naming the lines involved."""
    dependants: list[list[int]] = [[] for _ in stages]
    waiting = [0] * len(stages)
    ready = []
    for s in stages:
        n = len(s.deps)
        waiting[s.index] = n
        if n == 0:
            ready.append(s.index)
        for d in s.deps:
            dependants[d].append(s.index)
    order: list[int] = []
    while ready:
        order.extend(ready)
        nxt = []
        for i in ready:
            for j in dependants[i]:
                waiting[j] -= 1
                if waiting[j] == 0:
                    nxt.append(j)
        ready = nxt
    if len(order) == len(stages):
        return order
    sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
    for s in stages:
        sorter.add(s.index, *s.deps)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        lines = " -> ".join(f"line {stages[i].line}" for i in reversed(cycle))
        raise PipelineError(f"stages form a cycle: {lines}", doc, stages[cycle[0]].line) from None
    raise PipelineError("stages form a cycle", doc)  # unreachable: Kahn and graphlib agree
