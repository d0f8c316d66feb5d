"""Helpers for the tracer tests (imported by name; conftest puts this directory on sys.path)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from sharklib.model import Run
from sharklib.trace import TraceResult, trace_command


def run_traced(argv: Sequence[str], backend: str, cwd: Path, **kw: object) -> TraceResult:
    """Trace with stdio to /dev/null unless the test passes its own."""
    kw.setdefault("stdout", subprocess.DEVNULL)
    kw.setdefault("stderr", subprocess.DEVNULL)
    return trace_command(list(argv), backend, cwd=str(cwd), **kw)  # type: ignore[arg-type]


def root(result: TraceResult) -> Run:
    r = [x for x in result.runs if x.parent is None]
    assert len(r) == 1, [x.argv for x in result.runs]
    return r[0]


def inputs(run: Run, under: Path) -> set[str]:
    """Input paths under ``under``, relative to it."""
    base = str(under) + os.sep
    return {a.path[len(base):] for a in run.inputs if a.path.startswith(base)}


def outputs(run: Run, under: Path) -> set[str]:
    base = str(under) + os.sep
    return {o.path[len(base):] for o in run.outputs if o.path.startswith(base)}


def exec_paths(run: Run) -> list[str]:
    return [e.path for e in run.execs]
