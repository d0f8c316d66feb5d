"""The lines ``sharklib trace`` prints on stderr after the command finished."""

from __future__ import annotations

import os
import stat

from rich.console import Console

from sharklib.errors import printable
from sharklib.trace.session import TraceResult


def _stderr_is_output(result: TraceResult) -> bool:
    """Printing into a redirected stderr file would change an output after it was signed."""
    try:
        return stat.S_ISREG(os.fstat(2).st_mode)
    except OSError:
        return False


def report(result: TraceResult, quiet: bool = False) -> None:
    """Errors always; the summary unless quiet or stderr is itself a recorded output."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    for msg in result.messages:
        prefix = "" if msg.startswith(("warning:", "not cached:")) else "error: "
        console.print(printable(f"sharklib: {prefix}{msg}"), markup=False)
    if quiet or _stderr_is_output(result) or not result.runs:
        return
    outputs = sum(len(r.outputs) for r in result.runs)
    inputs = len({a.path for r in result.runs for a in r.inputs})
    warnings = [w for r in result.runs for w in r.warnings]
    console.print(
        f"sharklib: traced ({result.backend}) {len(result.runs)} run(s), {inputs} input(s), "
        f"{outputs} output(s), {len(result.sidecars)} sidecar(s) signed; "
        f"exit {result.exit_status}", markup=False)
    for w in dict.fromkeys(warnings):
        console.print(printable(f"sharklib: warning: {w}"), markup=False)
