"""The local pool: ``-j N`` stages at once on this machine.

Each stage is already its own process (the runner starts the command), so the
pool is made of threads that wait on those processes: no pickling, no extra
interpreter per stage.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import Any

from sharklib.pipeline.leaf import LeafJob, LeafResult, run_leaf


class LocalPool:
    def __init__(self, jobs: int, fn: Callable[[LeafJob], LeafResult] = run_leaf) -> None:
        workers = max(1, jobs)
        # One job queued behind each running one keeps every worker busy between completions.
        self.slots = workers * 2
        self._fn = fn
        self._ex = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sharklib-stage")

    def submit(self, job: LeafJob) -> cf.Future[LeafResult]:
        return self._ex.submit(self._fn, job)

    def submit_many(self, jobs: list[LeafJob]) -> list[cf.Future[LeafResult]]:
        return [self._ex.submit(self._fn, j) for j in jobs]

    def wait(self, futures: set[Any]) -> set[Any]:
        done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return done

    def result(self, future: Any, job: LeafJob) -> LeafResult:
        try:
            res: LeafResult = future.result()
            return res
        except Exception as exc:
            return LeafResult(index=job.index, exit_status=125, message=f"sharklib failed: {exc}",
                              stderr_tail=str(exc))

    def close(self) -> None:
        self._ex.shutdown(wait=True)
