"""The data model: Run, Artifact, Output, Download, the run key and the provenance mapping.

No I/O lives here; everything else in sharklib produces or consumes these types.
"""

from sharklib.model.provenance import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    run_to_statement,
    statement_to_run,
)
from sharklib.model.run import (
    Artifact,
    CodeIdentity,
    Download,
    Environment,
    Exec,
    GitInfo,
    Output,
    Run,
)
from sharklib.model.runkey import RunKeyParts, canonical_json, run_key_parts

__all__ = [
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Artifact",
    "CodeIdentity",
    "Download",
    "Environment",
    "Exec",
    "GitInfo",
    "Output",
    "Run",
    "RunKeyParts",
    "canonical_json",
    "run_key_parts",
    "run_to_statement",
    "statement_to_run",
]
