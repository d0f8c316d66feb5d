"""Markdown pipelines: a literate document is the pipeline.

Fenced blocks with Shark info strings do the work (``shark-run:ENV``,
``shark-build:ENV``, ``shark-import``, ``shark-publish``), YAML front matter
holds inputs and ``%{VAR}`` template variables, and every stage goes through
the one runner, so every stage is captured, attested and reused.
"""

from sharklib.pipeline.pin import PinResult, pin_document
from sharklib.pipeline.run import Pipeline, PipelineReport, load_pipeline, run_pipeline

__all__ = ["PinResult", "Pipeline", "PipelineReport", "load_pipeline", "pin_document", "run_pipeline"]
