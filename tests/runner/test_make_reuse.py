"""An unmodified Makefile pipeline under ``sharklib env``: each Python step is short-circuited
before its body runs when it is provably done (issue: frugal re-execution, item 2).

``make -B`` makes make invoke every recipe every time, so what is counted is sharklib's own
decision: a step that was reused prints one "sharklib: reused" line and does not execute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

MAKEFILE = """\
PY ?= python
all: report.txt
c1.csv: in1.txt count.py helper.py
\t$(PY) count.py in1.txt > c1.csv
c2.csv: in2.txt count.py helper.py
\t$(PY) count.py in2.txt > c2.csv
total.csv: c1.csv c2.csv merge.py
\t$(PY) merge.py c1.csv c2.csv total.csv
report.txt: total.csv report.py
\t$(PY) report.py total.csv report.txt
"""

SCRIPTS = {
    "helper.py": "def words(line):\n    return len(line.split())\n",
    "count.py": ("import sys\nfrom helper import words\n"
                 "n = sum(words(l) for l in open(sys.argv[1]))\nprint(f'{sys.argv[1]},{n}')\n"),
    "merge.py": ("import sys\nrows = [open(p).read().strip() for p in sys.argv[1:-1]]\n"
                 "open(sys.argv[-1], 'w').write('\\n'.join(rows) + '\\n')\n"),
    "report.py": ("import sys\ntotal = sum(int(l.split(',')[1]) for l in open(sys.argv[1]))\n"
                  "open(sys.argv[2], 'w').write(f'total words: {total}\\n')\n"),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed (scripts/apt-packages.txt lists it)")
    (tmp_path / ".git").mkdir()
    (tmp_path / "Makefile").write_text(MAKEFILE)
    for name, text in SCRIPTS.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "in1.txt").write_text("a b c\nd e\n")
    (tmp_path / "in2.txt").write_text("one two\n")
    old = time.time() - 60
    for p in tmp_path.iterdir():
        if p.is_file():
            os.utime(p, (old, old))
    return tmp_path


def make(project: Path) -> tuple[int, int]:
    """Run ``sharklib env -- make -B``; (steps executed, steps reused)."""
    proc = subprocess.run(
        [sys.executable, "-m", "sharklib", "env", "--", "make", "-B", f"PY={sys.executable}"],
        cwd=project, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    invoked = sum(1 for line in proc.stdout.splitlines() if line.startswith(sys.executable))
    reused = proc.stderr.count("sharklib: reused run")
    assert "warning" not in proc.stderr, proc.stderr
    return invoked - reused, reused


def test_makefile_pipeline_reuses_exactly_what_is_done(project: Path) -> None:
    assert make(project) == (4, 0)
    assert (project / "report.txt").read_text() == "total words: 7\n"
    assert (project / "report.txt.intoto.jsonl").exists()

    assert make(project) == (0, 4)  # no-op re-run: no script body executes

    os.utime(project / "in1.txt")  # touch alone never re-runs anything
    assert make(project) == (0, 4)

    (project / "in2.txt").write_text("one two three\n")  # one input edited: its dependants
    assert make(project) == (3, 1)
    assert (project / "report.txt").read_text() == "total words: 8\n"

    # the shared helper edited without changing results: exactly the steps that imported it
    (project / "helper.py").write_text(SCRIPTS["helper.py"] + "# reviewed\n")
    assert make(project) == (2, 2)

    (project / "report.txt").unlink()  # a deleted result is restored, not recomputed
    assert make(project) == (0, 4)
    assert (project / "report.txt").read_text() == "total words: 8\n"


def test_stdout_redirect_step_is_restored(project: Path) -> None:
    make(project)
    (project / "c1.csv").unlink()
    executed, reused = make(project)
    assert executed == 0 and reused == 4
    assert (project / "c1.csv").read_text() == "in1.txt,5\n"


def test_a_reused_step_replays_only_its_own_part_of_a_shared_log(project: Path) -> None:
    # `make > build.log`: every recipe line make echoes and every step's stdout land in one file.
    # A reused step must replay what it printed, not the whole log as it was when it finished.
    (project / "step.py").write_text("print('from the step')\nopen('made.txt', 'w').write('x')\n")

    def logged() -> tuple[str, str]:
        with open(project / "build.log", "w") as log:
            proc = subprocess.run(
                [sys.executable, "-m", "sharklib", "env", "--", "sh", "-c",
                 f"echo start; {sys.executable} step.py; echo end"],
                cwd=project, stdout=log, stderr=subprocess.PIPE, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return (project / "build.log").read_text(), proc.stderr

    assert logged()[0] == "start\nfrom the step\nend\n"
    log, err = logged()
    assert "sharklib: reused run" in err, err
    assert log == "start\nfrom the step\nend\n"
