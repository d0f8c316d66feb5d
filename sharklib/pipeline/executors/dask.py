"""Dask executors: an existing cluster (``--scheduler tcp://H:P``) or a LocalCluster.

The plan and the DAG stay on the client; each submitted task is one leaf job
(command, working directory, environment tag and overrides) that calls the
runner on the worker. Workers must see the same files as the client: a shared
filesystem, or the shared fsspec cache store so outputs are restored from it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sharklib.config import ENV_DASK_TIMEOUT
from sharklib.errors import SharkError
from sharklib.pipeline.leaf import LeafJob, LeafResult, run_leaf


class DaskPool:
    def __init__(self, scheduler: str | None = None, workers: int = 2,
                 fn: Callable[[LeafJob], LeafResult] = run_leaf) -> None:
        self._fn = fn
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            from sharklib.extras import missing_extra

            raise missing_extra("distributed", "the dask executor") from None
        self._cluster: Any = None
        try:
            if scheduler:
                timeout = os.environ.get(ENV_DASK_TIMEOUT, "20s")
                self._client = Client(scheduler, timeout=timeout)
            else:
                self._cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1,
                                             processes=True, dashboard_address=None)
                self._client = Client(self._cluster)
        except (OSError, TimeoutError) as exc:
            if self._cluster is not None:
                self._cluster.close()
            raise SharkError(f"cannot reach the Dask scheduler: {exc}", scheduler) from None
        # The scheduler queues tasks itself: hand it every ready stage at once.
        self.slots = 1 << 30
        from distributed import as_completed

        self._done = as_completed([], with_results=False)

    def submit(self, job: LeafJob) -> Any:
        return self.submit_many([job])[0]

    def submit_many(self, jobs: list[LeafJob]) -> list[Any]:
        if self._cluster is not None:
            # our own LocalCluster's workers live only as long as this run: they may keep a
            # tracer and caches open across stages (a user's long-lived cluster is left alone)
            jobs = [replace(j, worker=True) for j in jobs]
        # Keys name tasks on the scheduler, which may be shared by other clients and runs: they
        # must never repeat (an ``id()`` can, across processes), or a run could be handed
        # another run's task
        keys = [f"sharklib-stage-{j.index}-{uuid.uuid4().hex}" for j in jobs]
        futs = self._client.map(self._fn, jobs, key=keys, pure=False)
        self._done.update(futs)
        return list(futs)

    def wait(self, futures: set[Any]) -> set[Any]:
        """Everything that finished since the last call (at least one), in one batch."""
        return {f for f in self._done.next_batch(block=True) if f in futures}

    def result(self, future: Any, job: LeafJob) -> LeafResult:
        try:
            res: LeafResult = future.result()
            return res
        except Exception as exc:
            return LeafResult(index=job.index, exit_status=125,
                              message=f"dask task failed: {exc}", stderr_tail=str(exc))

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
