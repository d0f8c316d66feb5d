"""The two count lines every pipeline run ends with, as plain text.

Kept apart from :mod:`sharklib.pipeline.progress` (rich) so that an unchanged
pipeline can report itself without importing rich at all.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sharklib.pipeline.plan import StagePlan
    from sharklib.pipeline.run import PipelineReport


def plan_counts(plans: list[StagePlan]) -> str:
    c = Counter(p.action for p in plans)
    saved = sum(p.saved_seconds for p in plans if p.action == "reuse")
    return f"{len(plans)} stage(s): {c['run']} to run, {c['reuse']} to reuse (saves {saved:.1f}s)"


def summary_line(report: PipelineReport) -> str:
    return (f"{report.stages} stage(s): {report.ran} ran, {report.reused} reused, "
            f"{len(report.failures)} failed, {report.skipped} not run (upstream failed); "
            f"saved {report.saved_seconds:.1f}s; took {report.wall_seconds:.1f}s")
