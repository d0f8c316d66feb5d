"""A re-run of an unchanged pipeline executes nothing, and stays exact when something changes.

The real CLI, runner and Python capture; the plan comes from the index's reuse facts and the
stat signatures kept in them (see sharklib.runner.planner.plan_commands).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from pipekit import Cli, write


def _counts(out: str) -> tuple[int, int]:
    m = re.search(r"(\d+) ran, (\d+) reused", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def _project(project: Path) -> None:
    old = time.time() - 60  # outside the racy window, so signatures are kept at once
    for n in "abc":
        write(project / "raw" / f"{n}.txt", n * 3)
        os.utime(project / "raw" / f"{n}.txt", (old, old))
    write(project / "step.py", "import sys\nprint(open(sys.argv[1]).read().upper())\n")
    write(project / "gather.py", "import os, sys\nd = sys.argv[1]\n"
          "print(''.join(open(os.path.join(d, n)).read() for n in sorted(os.listdir(d))\n"
          "              if n.endswith('.txt')))\n")
    write(project / "m.md", "```shark-run:host\npython step.py raw/* > up/%{stem}.txt\n"
          "python gather.py up > all.txt\n```\n")
    for name in ("step.py", "gather.py", "m.md"):
        os.utime(project / name, (old, old))


def test_touch_edit_and_delete_on_a_re_run(project: Path, cli: Cli) -> None:
    _project(project)
    assert _counts(cli("run", "m.md", check=True).stdout) == (4, 0)
    assert _counts(cli("run", "m.md", check=True).stdout) == (0, 4)
    assert _counts(cli("run", "m.md", check=True).stdout) == (0, 4)  # with signatures kept

    os.utime(project / "raw" / "a.txt")  # touch: new times, same bytes
    assert _counts(cli("run", "m.md", check=True).stdout) == (0, 4)

    st = (project / "raw" / "b.txt").stat()
    (project / "raw" / "b.txt").write_text("xyz")  # same size, mtime put back
    os.utime(project / "raw" / "b.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    plan = cli("plan", "m.md", check=True).stdout
    assert "input raw/b.txt changed (recorded " in plan and "2 to run, 2 to reuse" in plan
    assert _counts(cli("run", "m.md", check=True).stdout) == (2, 2)
    assert (project / "all.txt").read_text() == "AAA\nXYZ\nCCC\n\n"

    (project / "up" / "c.txt").unlink()  # a deleted result is restored, nothing recomputed
    assert _counts(cli("run", "m.md", check=True).stdout) == (0, 4)
    assert (project / "up" / "c.txt").read_text() == "CCC\n"


def test_a_failed_stage_is_never_reused(project: Path, cli: Cli) -> None:
    _project(project)
    write(project / "step.py", "import sys\nraise SystemExit(3)\n")
    assert cli("run", "m.md").returncode == 1
    proc = cli("run", "m.md")
    assert proc.returncode == 1 and "3 failed" in proc.stdout


def test_an_unchanged_pipeline_reports_in_plain_lines_without_rich(project: Path, cli: Cli) -> None:
    """The whole re-check is ~0.1 s at 1,000 stages; importing rich alone used to be 40 ms of it."""
    _project(project)
    cli("run", "m.md", check=True)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "sharklib", "pipeline", "run", "m.md"],
                          cwd=project, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("4 stage(s): 0 to run, 4 to reuse (saves "), proc.stdout
    assert _counts(proc.stdout) == (0, 4) and len(proc.stdout.splitlines()) == 2, proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "sharklib.pipeline.run" in imported
    assert not {m for m in imported if m == "rich" or m.startswith("rich.")}
    # the table is still one command away, and a run with work to do still draws it
    assert "┃ line" in cli("plan", "m.md", check=True).stdout
    write(project / "raw" / "d.txt", "d")
    assert "┃ line" in cli("run", "m.md", check=True).stdout
