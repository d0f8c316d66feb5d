"""The lines ``sharklib trace`` prints on stderr after the command finished.

Plain writes, not rich: the user waits for this module to load after the
command ended, and importing rich's console cost ~60-180 ms there (quiet and
loaded machine) for lines that use no markup, colour or wrapping. Every line
goes through :func:`~sharklib.errors.printable` (file names may hold terminal
escapes), and rich's ``:emoji:`` replacement no longer rewrites file names.
"""

from __future__ import annotations

import os
import stat
import sys

from sharklib.errors import printable
from sharklib.trace.session import TraceResult


def _stderr_is_output(result: TraceResult) -> bool:
    """Printing into a redirected stderr file would change an output after it was signed."""
    try:
        return stat.S_ISREG(os.fstat(2).st_mode)
    except OSError:
        return False


def _say(line: str) -> None:
    try:
        sys.stderr.write(printable(line) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed or gone: nothing to say it on
        pass


def report(result: TraceResult, quiet: bool = False) -> None:
    """Errors always; the summary unless quiet or stderr is itself a recorded output."""
    for msg in result.messages:
        prefix = "" if msg.startswith(("warning:", "not cached:")) else "error: "
        _say(f"sharklib: {prefix}{msg}")
    if quiet or _stderr_is_output(result) or not result.runs:
        return
    outputs = sum(len(r.outputs) for r in result.runs)
    inputs = len({a.path for r in result.runs for a in r.inputs})
    warnings = [w for r in result.runs for w in r.warnings]
    _say(f"sharklib: traced ({result.backend}) {len(result.runs)} run(s), {inputs} input(s), "
         f"{outputs} output(s), {len(result.sidecars)} sidecar(s) signed; "
         f"exit {result.exit_status}")
    for w in dict.fromkeys(warnings):
        _say(f"sharklib: warning: {w}")
