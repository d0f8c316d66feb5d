"""The data model: Run, Artifact, Output, Download, the run key and the provenance mapping.

No I/O lives here; everything else in sharklib produces or consumes these types.
Names are loaded on first use (PEP 562) so that computing a run key at the start
of a captured script does not pay for the whole model.
"""

from __future__ import annotations

from sharklib._lazy import lazy_attributes

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False

_WHERE = {
    "PAYLOAD_TYPE": "provenance", "PREDICATE_TYPE": "provenance", "STATEMENT_TYPE": "provenance",
    "MAX_SUBJECTS": "provenance", "narrowed": "provenance",
    "run_to_statement": "provenance", "statement_subjects": "provenance",
    "statement_to_run": "provenance",
    "ABSENT_SHA256": "run", "Artifact": "run", "CodeIdentity": "run", "Download": "run",
    "Environment": "run", "redact_url": "redact",
    "Exec": "run", "GitInfo": "run", "Output": "run", "Run": "run",
    "RunKeyParts": "runkey", "canonical_json": "runkey", "run_key_parts": "runkey",
}

__all__ = [
    "ABSENT_SHA256",
    "MAX_SUBJECTS",
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
    "narrowed",
    "redact_url",
    "run_key_parts",
    "run_to_statement",
    "statement_subjects",
    "statement_to_run",
]

if TYPE_CHECKING:
    from sharklib.model.provenance import (
        MAX_SUBJECTS,
        PAYLOAD_TYPE,
        PREDICATE_TYPE,
        STATEMENT_TYPE,
        narrowed,
        run_to_statement,
        statement_subjects,
        statement_to_run,
    )
    from sharklib.model.redact import redact_url
    from sharklib.model.run import (
        ABSENT_SHA256,
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


__getattr__ = lazy_attributes(__name__, _WHERE)
