"""Dask executors: an existing cluster (``--scheduler tcp://H:P``) or a LocalCluster.

The plan and the DAG stay on the client; each submitted task is one leaf job
(command, working directory, environment tag and overrides) that calls the
runner on the worker. Workers must see the same files as the client: a shared
filesystem, or the shared fsspec cache store so outputs are restored from it.
"""

from __future__ import annotations

import os
from typing import Any

from sharklib.errors import SharkError
from sharklib.pipeline.leaf import LeafJob, LeafResult, run_leaf


class DaskPool:
    def __init__(self, scheduler: str | None = None, workers: int = 2) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise SharkError("the dask executor needs 'distributed' (pip install sharklib[dask])") from None
        self._cluster: Any = None
        try:
            if scheduler:
                timeout = os.environ.get("SHARKLIB_DASK_TIMEOUT", "20s")
                self._client = Client(scheduler, timeout=timeout)
            else:
                self._cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1,
                                             processes=True, dashboard_address=None)
                self._client = Client(self._cluster)
        except (OSError, TimeoutError) as exc:
            if self._cluster is not None:
                self._cluster.close()
            raise SharkError(f"cannot reach the Dask scheduler: {exc}", scheduler) from None
        threads = sum(self._client.nthreads().values()) or 1
        self.slots = max(1, threads * 2)

    def submit(self, job: LeafJob) -> Any:
        return self._client.submit(run_leaf, job, pure=False, key=f"sharklib-stage-{job.index}-{id(job):x}")

    def wait(self, futures: set[Any]) -> set[Any]:
        from distributed import wait

        done, _ = wait(list(futures), return_when="FIRST_COMPLETED")
        return set(done)

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
