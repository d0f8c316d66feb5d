"""The local pool: ``-j N`` stages at once on this machine.

Each stage is already its own process (the runner starts the command), so the
pool is made of threads that wait on those processes: no pickling, no extra
interpreter per stage.
"""

from __future__ import annotations

import concurrent.futures as cf
from typing import Any

from sharklib.pipeline.leaf import LeafJob, LeafResult, run_leaf


class LocalPool:
    def __init__(self, jobs: int) -> None:
        self.slots = max(1, jobs)
        self._ex = cf.ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="sharklib-stage")

    def submit(self, job: LeafJob) -> cf.Future[LeafResult]:
        return self._ex.submit(run_leaf, job)

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
