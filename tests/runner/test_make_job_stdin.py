"""Under ``sharklib env -- make -jN`` a step is reused the next time, whichever job got stdin.

GNU make hands its own standard input to one running job at a time and to every other
job a pipe it closed the write end of. With make's input on ``/dev/null`` (CI, cron,
pytest) the job that happened to hold it was keyed by ``/dev/null`` and the others
without standard input; when the next run handed it to another job, steps of an
unchanged Makefile ran again instead of being restored (the rare ``make -j2`` reuse
miss). Here which job holds it is not left to timing: make starts the first
prerequisite first and it gets make's input, and that step waits until the other has
started (its line in the count file, which sharklib does not record), so both run at
once; the second run lists them the other way round.
Each step reads its standard input too: nothing, either way.
Executions are counted through a side effect (stepcount).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stepcount import executed, step_env

STEP = """\
import os, sys, time
with open(os.environ["COUNT_FILE"], "a") as fh:
    fh.write(sys.argv[1] + "\\n")
if len(sys.argv) > 3:  # the other step runs meanwhile, on make's closed pipe
    for _ in range(2400):
        if sys.argv[3] in open(os.environ["COUNT_FILE"]).read().split():
            break
        time.sleep(0.05)
extra = sys.stdin.read()  # make's input (/dev/null) or its closed pipe: nothing either way
open(sys.argv[2], "w").write(open(sys.argv[1]).read().upper() + extra)
"""


def _makefile(first: str, second: str) -> str:
    return (f"all: {first} {second}\n"
            "A.txt: a.txt step.py\n\t$(PY) step.py a.txt A.txt b.txt\n"
            "B.txt: b.txt step.py\n\t$(PY) step.py b.txt B.txt\n")


def _make(project: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sharklib", "env", "--", "make", "-B", "-j2", f"PY={sys.executable}"],
        cwd=project, env=step_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("order", [("A.txt", "B.txt"), ("B.txt", "A.txt")])
def test_steps_of_make_j_are_reused_when_another_job_holds_make_stdin(
        tmp_path: Path, order: tuple[str, str]) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed (scripts/apt-packages.txt lists it)")
    (tmp_path / ".git").mkdir()
    (tmp_path / "step.py").write_text(STEP)
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "b.txt").write_text("b\n")
    old = time.time() - 60
    for p in tmp_path.iterdir():
        os.utime(p, (old, old))
    (tmp_path / "Makefile").write_text(_makefile(*order))
    _make(tmp_path)
    assert executed() == ["a.txt", "b.txt"]
    (tmp_path / "Makefile").write_text(_makefile(*reversed(order)))
    _make(tmp_path)
    assert executed() == []
    assert (tmp_path / "A.txt").read_text() == "A\n" and (tmp_path / "B.txt").read_text() == "B\n"
