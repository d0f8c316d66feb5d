"""Executors run leaf jobs in DAG order; the scheduling loop is shared.

An executor is a small pool: ``submit_many(jobs)`` (one call per batch of
ready stages, so a Dask client sends one message, not one per stage),
``wait(futures)`` (return the finished ones), ``result(future)``, ``slots`` (how many jobs to keep in flight)
and ``close()``. :func:`schedule` holds everything else: dependency counting,
stopping the dependants of a failed stage while independent stages go on, and
progress callbacks. Only ready stages are ever submitted, so a worker never
waits on another stage.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from sharklib.pipeline.leaf import LeafJob, LeafResult


class Pool(Protocol):
    slots: int

    def submit(self, job: LeafJob) -> Any: ...

    def submit_many(self, jobs: list[LeafJob]) -> list[Any]: ...

    def wait(self, futures: set[Any]) -> set[Any]: ...

    def result(self, future: Any, job: LeafJob) -> LeafResult: ...

    def close(self) -> None: ...


def schedule(jobs: dict[int, LeafJob], deps: dict[int, set[int]], pool: Pool,
             on_start: Callable[[int], None] | None = None,
             on_finish: Callable[[LeafResult], None] | None = None) -> tuple[dict[int, LeafResult], set[int]]:
    """Run ``jobs`` (stage index -> job) honouring ``deps``; return results and skipped stages.

    Dependencies on stages that are not in ``jobs`` count as satisfied (they were
    reused without running). A stage that exits non-zero stops all its dependants.
    """
    waiting: dict[int, int] = {}
    dependants: dict[int, list[int]] = {}
    for i in jobs:
        n = 0
        for d in deps.get(i, ()):
            if d in jobs:
                n += 1
                dependants.setdefault(d, []).append(i)
        waiting[i] = n
    ready = deque(sorted(i for i, n in waiting.items() if n == 0))
    results: dict[int, LeafResult] = {}
    skipped: set[int] = set()
    inflight: dict[Any, int] = {}

    def skip_all(start: Iterable[int]) -> None:
        stack = list(start)
        while stack:
            k = stack.pop()
            if k in skipped:
                continue
            skipped.add(k)
            stack.extend(dependants.get(k, ()))

    while ready or inflight:
        batch: list[int] = []
        while ready and len(inflight) + len(batch) < pool.slots:
            batch.append(ready.popleft())
        if batch:
            for i in batch:
                if on_start:
                    on_start(i)
            for fut, i in zip(pool.submit_many([jobs[i] for i in batch]), batch, strict=True):
                inflight[fut] = i
        if not inflight:
            break
        for fut in pool.wait(set(inflight)):
            i = inflight.pop(fut)
            res = pool.result(fut, jobs[i])
            results[i] = res
            if on_finish:
                on_finish(res)
            if res.exit_status != 0:
                skip_all(dependants.get(i, ()))
                continue
            for k in dependants.get(i, ()):
                waiting[k] -= 1
                if waiting[k] == 0 and k not in skipped:
                    ready.append(k)
    return results, skipped
