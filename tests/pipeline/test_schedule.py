"""The shared scheduling loop: dependency order, failures stop dependants only."""

from __future__ import annotations

import threading

from sharklib.pipeline.executors import schedule
from sharklib.pipeline.executors.local import LocalPool
from sharklib.pipeline.leaf import LeafJob, LeafResult


def test_order_failure_and_independent_work() -> None:
    done: list[int] = []
    lock = threading.Lock()

    def leaf(job: LeafJob) -> LeafResult:
        with lock:
            done.append(job.index)
        return LeafResult(index=job.index, exit_status=7 if job.command == "fail" else 0)

    # 0 -> 1 -> 2 ; 3 fails -> 4 -> 5 ; 6 independent ; 7 depends on 0 and 3
    cmds = ["ok", "ok", "ok", "fail", "ok", "ok", "ok", "ok"]
    deps = {1: {0}, 2: {1}, 4: {3}, 5: {4}, 7: {0, 3}}
    jobs = {i: LeafJob(index=i, command=c, cwd="/", env_tag="host") for i, c in enumerate(cmds)}
    pool = LocalPool(2, fn=leaf)
    try:
        started: list[int] = []
        results, skipped = schedule(jobs, deps, pool, on_start=started.append)
    finally:
        pool.close()
    assert skipped == {4, 5, 7}
    assert set(results) == {0, 1, 2, 3, 6}
    assert results[3].exit_status == 7
    assert done.index(0) < done.index(1) < done.index(2)
    assert sorted(started) == sorted(results)


def test_dependencies_outside_the_job_set_count_as_done() -> None:
    jobs = {5: LeafJob(index=5, command="ok", cwd="/", env_tag="host")}
    pool = LocalPool(1, fn=lambda j: LeafResult(index=j.index, exit_status=0))
    try:
        results, skipped = schedule(jobs, {5: {1, 2}}, pool)
    finally:
        pool.close()
    assert set(results) == {5} and not skipped
