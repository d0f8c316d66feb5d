"""The plan: for each stage, *reuse* (which run, how much time it saves) or *run* (why).

The decision comes from the runner (:func:`sharklib.runner.plan_command`, an
in-process lookup: no process is started to decide reuse). Where the runner
cannot tell yet, every stage is planned to run with the reason "no reuse
information". A stage whose upstream runs is planned to run too — its inputs
are about to be rebuilt — though the runner may still reuse it if the rebuilt
bytes turn out identical.
"""

from __future__ import annotations

import os
from typing import Literal

from sharklib.pipeline.bulk import paused_gc
from sharklib.pipeline.stages import Stage
from sharklib.pipeline.state import Placed, in_place
from sharklib.runner.planner import Plan

Action = Literal["reuse", "run"]

#: A stage's plan is the runner's :class:`~sharklib.runner.planner.Plan` itself (``action``
#: ``reuse`` or ``run``, ``skip`` filled in by :func:`propagate`): one object per stage,
#: not a copy of each of 10,000 of them.
StagePlan = Plan


def planner_available() -> bool:
    import sharklib.runner

    return hasattr(sharklib.runner, "plan_command")


def plan_stage(command: str, cwd: str, env_tag: str, rerun: bool) -> StagePlan:
    """Ask the runner whether ``command`` can be reused; never raises."""
    if rerun:
        return StagePlan(action="run", reason="--rerun")
    import sharklib.runner

    planner = getattr(sharklib.runner, "plan_command", None)
    if planner is None:
        return StagePlan(action="run", reason="no reuse information")
    try:
        p = planner(command, shell=True, cwd=cwd, env_tag=env_tag)
    except Exception as exc:
        return StagePlan(action="run", reason=f"planner failed: {exc}")
    action: Action = "reuse" if p.action == "reuse" else "run"
    return StagePlan(action, reason=str(p.reason or ""), run_id=getattr(p, "run_id", None),
                     saved_seconds=float(getattr(p, "saved_seconds", 0.0) or 0.0),
                     inputs=[str(x) for x in (getattr(p, "inputs", None) or [])],
                     outputs=[str(x) for x in (getattr(p, "outputs", None) or [])])


def plan_stages(specs: list[tuple[str, str, str, str | None]], rerun: bool) -> list[StagePlan]:
    """Plans for many ``(command, cwd, env_tag, PATH)`` at once (one index query for the pipeline).

    ``PATH`` is the one the stage will run with (None: this process's): the
    programs found through it are part of the run key.
    """
    if rerun:
        return [StagePlan(action="run", reason="--rerun") for _ in specs]
    import sharklib.runner

    batch = getattr(sharklib.runner, "plan_commands", None)
    if batch is None:
        return [plan_stage(c, cwd, tag, rerun) for c, cwd, tag, _ in specs]
    with paused_gc():
        try:
            return batch([sharklib.runner.StageSpec(c, cwd, True, tag, path)
                          for c, cwd, tag, path in specs])
        except Exception as exc:
            return [StagePlan(action="run", reason=f"planner failed: {exc}") for _ in specs]


def propagate(stages: list[Stage], order: list[int], plans: list[StagePlan],
              placed: dict[str, Placed] | None = None) -> None:
    """Upstream work makes downstream plans *run*; mark what can be skipped outright.

    ``skip`` is the fast path of a no-op re-run: a stage the runner would reuse,
    whose upstream stages are all skipped too and whose outputs on disk are still
    the very files the reused run left there (``placed``, by stat signature), is not
    handed to any executor at all. Outputs merely existing is not enough: they may
    be another run's (an input changed and was changed back), half-written by an
    interrupted or failed run, or edited by hand. Such a stage goes to the runner,
    which restores the outputs that differ (or runs it, if it cannot).
    """
    placed = placed or {}
    for i in order:
        s, p = stages[i], plans[i]
        if p.action == "reuse":
            busy = [d for d in s.deps if plans[d].action == "run"]
            if busy:
                p.action = "run"
                p.reason = f"input from line {stages[min(busy)].line} is rebuilt first"
        if p.action == "reuse" and all(plans[d].skip for d in s.deps):
            on_disk = p.on_disk
            p.skip = (all(map(os.path.exists, p.outputs)) if on_disk is None else on_disk) \
                and in_place(placed.get(s.signature), p.run_id, p.outputs)
        else:
            p.skip = False
