"""The two count lines every pipeline run ends with, as plain text.

Kept apart from :mod:`sharklib.pipeline.progress` (rich) so that an unchanged
pipeline can report itself without importing rich at all.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING

from sharklib.config import ENV_REPORT, flag

if TYPE_CHECKING:
    from sharklib.pipeline.plan import StagePlan
    from sharklib.pipeline.run import PipelineReport


def plan_counts(plans: list[StagePlan]) -> str:
    c = Counter(p.action for p in plans)
    saved = sum(p.saved_seconds for p in plans if p.action == "reuse")
    return f"{len(plans)} stage(s): {c['run']} to run, {c['reuse']} to reuse (saves {saved:.1f}s)"


def summary_line(report: PipelineReport) -> str:
    saved = f"saved {report.saved_seconds:.1f}s"
    if flag(ENV_REPORT):
        from sharklib.model.energy import EnergyModel, saving_text

        saved += f" {saving_text(report.saved_seconds, EnergyModel.from_environ(os.environ))}"
    return (f"{report.stages} stage(s): {report.ran} ran, {report.reused} reused, "
            f"{len(report.failures)} failed, {report.skipped} not run (upstream failed); "
            f"{saved}; took {report.wall_seconds:.1f}s")
