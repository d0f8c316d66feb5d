"""The bundled example, run the way a user would run it.

``sharklib demo`` copies the examples into a fresh directory, runs the
three-script Python pipeline under ``python -m sharklib run`` (twice: the
second time everything is reused), runs the literate Markdown method with
``sharklib pipeline run``, and ends by saying where the manifests are and how
to look at them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

PY_STEPS: list[list[str]] = [
    ["simulate.py", "data"],
    ["aggregate.py", "data"],
    ["report.py", "data", "report.md"],
]


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _run(argv: list[str], cwd: Path) -> int:
    _say(f"$ {' '.join(argv)}")
    # the method's stages say "python": make that the interpreter sharklib is installed in
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return subprocess.call(argv, cwd=cwd, env=env)


def run_demo(target: Path) -> int:
    """Run both examples in ``target`` (recreated); returns a non-zero status on failure."""
    if not EXAMPLES.is_dir():
        sys.stderr.write(f"sharklib demo: error: examples not found at {EXAMPLES} "
                         "(the demo needs a source checkout)\n")
        return 2
    if target.exists():
        shutil.rmtree(target)
    py_dir = target / "python-pipeline"
    md_dir = target / "method"
    shutil.copytree(EXAMPLES / "python-pipeline", py_dir)
    shutil.copytree(EXAMPLES / "method", md_dir)
    sharklib = [sys.executable, "-m", "sharklib"]

    # The first pass is not called "every step executes": after an earlier demo (or with a
    # shared cache) its steps are reused too, and sharklib's own line says which happened.
    for attempt in ("run 1", "run 2: the same commands again, nothing is recomputed"):
        _say(f"\n== Python pipeline, {attempt} ==")
        t0 = time.perf_counter()
        for step in PY_STEPS:
            if _run([*sharklib, "run", *step], py_dir):
                return 1
        _say(f"({time.perf_counter() - t0:.2f} s)")

    _say("\n== Literate Markdown pipeline (examples/method/method.md) ==")
    if _run([*sharklib, "pipeline", "run", "method.md"], md_dir):
        return 1

    sidecars = sorted(p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p
                      for p in target.rglob("*.intoto.jsonl"))
    _say(f"\n== {len(sidecars)} signed manifests (sidecars) were written ==")
    for s in sidecars[:12]:
        _say(f"  {s}")
    if len(sidecars) > 12:
        _say(f"  ... and {len(sidecars) - 12} more")
    report = py_dir / "report.md"
    rel = report.relative_to(Path.cwd()) if report.is_relative_to(Path.cwd()) else report
    _say("\nLook at them (after `source .venv/bin/activate`):")
    _say(f"  sharklib show {rel}              # the lineage as a tree")
    _say(f"  sharklib verify {rel}            # signatures and digests of the whole lineage")
    _say(f"  sharklib why {rel}               # inputs, code, environment it depends on")
    _say(f"  sharklib graph {rel} --format html -o lineage.html")
    _say(f"  sharklib show {md_dir.relative_to(Path.cwd()) if md_dir.is_relative_to(Path.cwd()) else md_dir}/results/report.md")
    return 0
