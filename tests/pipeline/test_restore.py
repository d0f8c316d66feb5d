"""A reused stage's outputs are the reused run's: restored when they differ, not merely present.

Real documents, the real CLI, runner and capture (every stage is a single Python command, so
it is recorded for reuse with or without the native tracer).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pipekit import Cli, write

STEP = ("import sys\n"
        "n = int(open(sys.argv[1]).read())\n"
        "print('start', flush=True)\n"
        "if n < 0:\n"
        "    sys.exit('refusing a negative count')\n"
        "print(n * 10)\n")
COPY = "import sys\nprint(open(sys.argv[1]).read().upper(), end='')\n"
DOC = ("```shark-run:host\n"
       "python step.py data/x.txt > mid/y.txt\n"
       "python shout.py mid/y.txt > results/z.txt\n"
       "```\n")


def _counts(out: str) -> tuple[int, int]:
    m = re.search(r"(\d+) ran, (\d+) reused", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def _project(project: Path, n: int) -> None:
    write(project / "step.py", STEP)
    write(project / "shout.py", COPY)
    write(project / "m.md", DOC)
    write(project / "data" / "x.txt", f"{n}\n")


def test_reverted_input_restores_the_earlier_runs_outputs(project: Path, cli: Cli) -> None:
    _project(project, 1)
    cli("run", "m.md", check=True)
    assert (project / "results" / "z.txt").read_text() == "START\n10\n"
    write(project / "data" / "x.txt", "5\n")
    cli("run", "m.md", check=True)
    assert (project / "results" / "z.txt").read_text() == "START\n50\n"

    write(project / "data" / "x.txt", "1\n")  # back to the first run's input
    proc = cli("run", "m.md", check=True)
    assert _counts(proc.stdout) == (0, 2), proc.stdout
    assert (project / "mid" / "y.txt").read_text() == "start\n10\n", "not the second run's output"
    assert (project / "results" / "z.txt").read_text() == "START\n10\n"
    assert _counts(cli("run", "m.md", check=True).stdout) == (0, 2)


def test_output_truncated_by_a_failed_run_is_restored(project: Path, cli: Cli) -> None:
    _project(project, 1)
    cli("run", "m.md", check=True)
    write(project / "data" / "x.txt", "-1\n")
    proc = cli("run", "m.md")
    assert proc.returncode == 1, proc.stdout
    assert (project / "mid" / "y.txt").read_text() == "start\n", "the shell truncated it"

    write(project / "data" / "x.txt", "1\n")
    proc = cli("run", "m.md", check=True)
    assert _counts(proc.stdout) == (0, 2), proc.stdout
    assert (project / "mid" / "y.txt").read_text() == "start\n10\n"
    assert (project / "results" / "z.txt").read_text() == "START\n10\n", \
        "the consumer read the restored file, not the truncated one"


def test_hand_edited_intermediate_is_restored(project: Path, cli: Cli) -> None:
    _project(project, 2)
    cli("run", "m.md", check=True)
    assert _counts(cli("run", "m.md", check=True).stdout) == (0, 2)
    (project / "mid" / "y.txt").write_text("start\n999\n")
    proc = cli("run", "m.md", check=True)
    assert _counts(proc.stdout) == (0, 2), proc.stdout
    assert (project / "mid" / "y.txt").read_text() == "start\n20\n"
    assert (project / "results" / "z.txt").read_text() == "START\n20\n"


def test_another_program_first_on_path_re_plans_the_stage(project: Path, cli: Cli,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    write(project / "data" / "x.txt", "1\n")
    write(project / "m.md", "```shark-run:host\n"
          "python -c 'import sys; print(sys.prefix)' > out/ver.txt\n"
          "awk '{print $1 * 10}' data/x.txt > out/y.txt\n```\n")
    cli("run", "m.md", check=True)
    prefix = (project / "out" / "ver.txt").read_text()
    assert (project / "out" / "y.txt").read_text() == "10\n"

    other = project / "otherbin"
    for name in ("python", "awk"):
        write(other / name, f"#!/bin/sh\necho other-{name}\n").chmod(0o755)
    here = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{other}{os.pathsep}{here}")
    proc = cli("run", "m.md", check=True)
    assert _counts(proc.stdout) == (2, 0), proc.stdout
    assert (project / "out" / "ver.txt").read_text() == "other-python\n"
    assert (project / "out" / "y.txt").read_text() == "other-awk\n"

    monkeypatch.setenv("PATH", here)  # the first programs again: the first runs' results
    proc = cli("run", "m.md", check=True)
    assert sum(_counts(proc.stdout)) == 2, proc.stdout
    assert (project / "out" / "ver.txt").read_text() == prefix
    assert (project / "out" / "y.txt").read_text() == "10\n"
    proc = cli("run", "m.md", check=True)
    assert _counts(proc.stdout) == (0, 2), "keys are stable from run to run"
