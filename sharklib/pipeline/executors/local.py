"""The local pool: ``-j N`` stages at once on this machine.

Each stage is already its own process (the runner starts the command); what
runs in the pool is sharklib's own work around it: reuse check, tracing,
hashing, signing, recording. For a handful of stages threads are enough (no
start-up). For many stages that work is the bottleneck and Python threads
share one interpreter lock, so the pool is made of N worker *processes*
(spawned: the scheduler has threads, which ``fork`` must not copy), each
keeping its tracer and caches open for all its stages.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

from sharklib.config import ENV_LOCAL_POOL
from sharklib.pipeline.leaf import LeafJob, LeafResult, run_leaf

PoolKind = Literal["threads", "processes"]
PROCESSES_FROM = 100  # stages to run: below this, starting worker processes costs more than it saves


def forced_pool() -> PoolKind | None:
    """``SHARKLIB_LOCAL_POOL``, checked: a misspelt value would silently pick the pool by size."""
    forced = os.environ.get(ENV_LOCAL_POOL, "").strip().lower()
    if not forced:
        return None
    if forced not in ("threads", "processes"):
        from sharklib.errors import PipelineError

        raise PipelineError(f"{ENV_LOCAL_POOL}={forced!r} is neither 'threads' nor 'processes'")
    return forced  # type: ignore[return-value]


def pool_kind(stages: int, workers: int) -> PoolKind:
    """Threads for small runs and ``-j 1``; processes otherwise (``SHARKLIB_LOCAL_POOL`` overrides)."""
    forced = forced_pool()
    if forced is not None:
        return forced
    return "processes" if workers > 1 and stages >= PROCESSES_FROM else "threads"


def _ignore(_signum: int, _frame: object) -> None:
    pass


def _worker_started() -> None:
    # Ctrl-C reaches the whole process group: the stage commands and the scheduler decide what
    # stops, not each worker. A handler, not SIG_IGN: an ignored signal would stay ignored in
    # the commands the worker starts (exec keeps SIG_IGN), and they must stay interruptible.
    signal.signal(signal.SIGINT, _ignore)


class LocalPool:
    def __init__(self, jobs: int, fn: Callable[[LeafJob], LeafResult] = run_leaf,
                 kind: PoolKind = "threads") -> None:
        workers = max(1, jobs)
        # One job queued behind each running one keeps every worker busy between completions.
        self.slots = workers * 2
        self.kind = kind
        self._fn = fn
        self._ex: cf.Executor
        if kind == "processes":
            self._ex = cf.ProcessPoolExecutor(max_workers=workers,
                                              mp_context=multiprocessing.get_context("spawn"),
                                              initializer=_worker_started)
        else:
            self._ex = cf.ThreadPoolExecutor(max_workers=workers,
                                             thread_name_prefix="sharklib-stage")

    def _job(self, job: LeafJob) -> LeafJob:
        return replace(job, worker=True) if self.kind == "processes" else job

    def submit(self, job: LeafJob) -> cf.Future[LeafResult]:
        return self._ex.submit(self._fn, self._job(job))

    def submit_many(self, jobs: list[LeafJob]) -> list[cf.Future[LeafResult]]:
        return [self._ex.submit(self._fn, self._job(j)) for j in jobs]

    def wait(self, futures: set[Any]) -> set[Any]:
        done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return done

    def result(self, future: Any, job: LeafJob) -> LeafResult:
        try:
            res: LeafResult = future.result()
            return res
        except Exception as exc:  # incl. a worker process that died (BrokenProcessPool)
            return LeafResult(index=job.index, exit_status=125, message=f"sharklib failed: {exc}",
                              stderr_tail=str(exc))

    def close(self) -> None:
        # after an interrupt or a failure nothing queued may still start
        self._ex.shutdown(wait=True, cancel_futures=True)
