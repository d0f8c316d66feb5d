"""Markdown pipelines: a literate document is the pipeline.

Fenced blocks with Shark info strings do the work (``shark-run:ENV``,
``shark-build:ENV``, ``shark-import``, ``shark-publish``), YAML front matter
holds inputs and ``%{VAR}`` template variables, and every stage goes through
the one runner, so every stage is captured, attested and reused.
"""

from __future__ import annotations

from sharklib._lazy import lazy_attributes

TYPE_CHECKING = False

_WHERE = {"PinResult": "pin", "pin_document": "pin", "Pipeline": "run",
          "PipelineReport": "run", "load_pipeline": "run", "run_pipeline": "run"}

__all__ = ["PinResult", "Pipeline", "PipelineReport", "load_pipeline", "pin_document", "run_pipeline"]

if TYPE_CHECKING:
    from sharklib.pipeline.pin import PinResult, pin_document
    from sharklib.pipeline.run import Pipeline, PipelineReport, load_pipeline, run_pipeline


# loaded on first use: re-checking an unchanged pipeline need not import pinning
__getattr__ = lazy_attributes(__name__, _WHERE)
